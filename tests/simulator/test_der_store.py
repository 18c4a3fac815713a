"""The pure DER store against OCPP 2.1 R04 (requirement ids in the test names), plus Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import OcppVersion
from mappings.naming import DER_CONTROL_TYPES as CONTROL_TYPES
from protocols.ocpp.schemas import validate
from protocols.ocpp.simulator.der_store import DerStore, StartStop, format_time, report_payloads

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ALL = frozenset(CONTROL_TYPES)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(
    control_id: str,
    control_type: str = "VoltVar",
    priority: int = 1,
    *,
    default: bool = False,
    start: float | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """A schema-valid SetDERControlRequest with the field that matches `control_type`."""
    setting: dict[str, Any]
    if control_type == "FixedVar":
        setting = {"priority": priority, "setpoint": 10.0, "unit": "PctMaxVar"}
    elif control_type == "EnterService":
        setting = {"priority": priority, "highVoltage": 110, "lowVoltage": 90, "highFreq": 50.2, "lowFreq": 49.8}
    else:
        setting = {"priority": priority, "yUnit": "PctMaxVar", "curveData": [{"x": 100.0, "y": 0.0}]}
    if start is not None:
        setting["startTime"] = format_time(at(start))
    if duration is not None:
        setting["duration"] = duration
    field = {"FixedVar": "fixedVar", "EnterService": "enterService"}.get(control_type, "curve")
    payload = {"isDefault": default, "controlId": control_id, "controlType": control_type, field: setting}
    validate(OcppVersion.V21, "SetDERControl", payload)
    return payload


def set_ok(store: DerStore, payload: dict[str, Any], now: float = 0) -> tuple[str, ...]:
    result = store.set(payload, at(now))
    validate(OcppVersion.V21, "SetDERControl", result.payload(), response=True)
    assert result.status == "Accepted"
    return result.superseded_ids


def test_r04_fr_01_unsupported_type_is_not_supported() -> None:
    store = DerStore({"VoltVar"})
    assert store.set(request("a", "FreqWatt"), T0).status == "NotSupported"


def test_r04_fr_17_mismatched_or_extra_field_is_rejected() -> None:
    store = DerStore(ALL)
    wrong = request("a", "VoltVar")
    wrong["fixedVar"] = wrong.pop("curve")
    assert store.set(wrong, T0).status == "Rejected"
    both = request("b", "FixedVar")
    both["curve"] = request("c")["curve"]
    assert store.set(both, T0).status == "Rejected"
    assert not store.controls


def test_r04_fr_13_default_with_start_or_duration_is_rejected() -> None:
    store = DerStore(ALL)
    assert store.set(request("a", default=True, start=10), T0).status == "Rejected"
    assert store.set(request("b", default=True, duration=10), T0).status == "Rejected"


def test_r04_fr_15_scheduled_enter_service_is_rejected() -> None:
    store = DerStore(ALL)
    assert store.set(request("a", "EnterService"), T0).status == "Rejected"
    assert set_ok(store, request("b", "EnterService", default=True)) == ()


def test_r04_fr_02_03_a_better_default_supersedes_and_a_worse_one_is_superseded() -> None:
    store = DerStore(ALL)
    assert set_ok(store, request("d1", priority=5, default=True)) == ()
    assert set_ok(store, request("d2", priority=1, default=True)) == ("d1",)
    assert set_ok(store, request("d3", priority=9, default=True)) == ("d3",)
    assert store.in_effect("VoltVar", T0) is store.controls["d2"]
    assert [c.control_id for c in store if c.superseded] == ["d1", "d3"]


def test_r04_fr_04_a_new_default_does_not_disturb_the_active_scheduled_control() -> None:
    store = DerStore(ALL)
    set_ok(store, request("s", start=0, duration=100))
    store.advance(at(1))
    set_ok(store, request("d", priority=0, default=True), now=1)
    assert store.in_effect("VoltVar", at(2)) is store.controls["s"]


def test_r04_fr_06_a_pending_control_is_superseded_at_once_even_by_a_later_one() -> None:
    store = DerStore(ALL)
    set_ok(store, request("old", priority=5, start=100, duration=100))
    assert set_ok(store, request("new", priority=1, start=150, duration=100)) == ("old",)
    events = store.advance(at(300))
    assert [(e.control_id, e.started) for e in events] == [("new", True), ("new", False)]


def test_controls_that_do_not_overlap_both_run() -> None:
    store = DerStore(ALL)
    set_ok(store, request("first", start=10, duration=10))
    assert set_ok(store, request("second", priority=0, start=20, duration=10)) == ()
    events = store.advance(at(30))
    assert [(e.control_id, e.started, e.timestamp) for e in events] == [
        ("first", True, at(10)),
        ("first", False, at(20)),
        ("second", True, at(20)),
        ("second", False, at(30)),
    ]


def test_r04_fr_07_21_an_active_control_runs_until_the_better_one_starts() -> None:
    store = DerStore(ALL)
    set_ok(store, request("a", priority=5, start=0, duration=1000))
    assert store.advance(at(10)) == [StartStop("a", True, at(0))]
    assert set_ok(store, request("b", priority=1, start=100, duration=50), now=10) == ()
    assert store.active("VoltVar", at(99)) is store.controls["a"]
    assert store.advance(at(100)) == [StartStop("b", True, at(100), ("a",))]
    assert store.controls["a"].superseded
    assert store.advance(at(150)) == [StartStop("b", False, at(150))]
    assert store.active("VoltVar", at(151)) is None  # a was superseded: it never runs again (R04.FR.09)


def test_r04_fr_08_a_worse_control_than_the_active_one_is_superseded_at_once() -> None:
    store = DerStore(ALL)
    set_ok(store, request("a", priority=1, start=0, duration=100))
    store.advance(at(1))
    assert set_ok(store, request("b", priority=5, start=50, duration=10), now=1) == ("b",)
    assert [e.control_id for e in store.advance(at(200))] == ["a"]


def test_r04_fr_10_11_20_22_start_end_delete_and_fall_back_to_the_default() -> None:
    store = DerStore(ALL)
    set_ok(store, request("d", priority=3, default=True))
    set_ok(store, request("s", priority=3, start=60, duration=60))
    assert store.next_event() == at(60)
    assert store.advance(at(59)) == []
    assert store.in_effect("VoltVar", at(59)) is store.controls["d"]
    assert store.advance(at(60)) == [StartStop("s", True, at(60))]
    assert store.in_effect("VoltVar", at(61)) is store.controls["s"]
    assert store.advance(at(120)) == [StartStop("s", False, at(120))]
    assert "s" not in store.controls
    assert store.in_effect("VoltVar", at(121)) is store.controls["d"]
    assert store.next_event() is None


def test_a_control_received_after_its_end_never_runs() -> None:
    store = DerStore(ALL)
    set_ok(store, request("late", start=0, duration=10), now=20)
    assert store.advance(at(20)) == []
    assert not store.controls


def test_r04_fr_30_36_get_filters_and_statuses() -> None:
    store = DerStore({"VoltVar", "FixedVar"})
    set_ok(store, request("d", default=True))
    set_ok(store, request("s", start=10))
    set_ok(store, request("v", "FixedVar", start=10))
    assert store.get(None, "WattPF", None) == ("NotSupported", [])
    assert store.get(None, None, "nope") == ("NotFound", [])
    assert [c.control_id for c in store.get(None, None, None)[1]] == ["d", "s", "v"]
    assert [c.control_id for c in store.get(False, "VoltVar", None)[1]] == ["s"]
    assert [c.control_id for c in store.get(True, None, None)[1]] == ["d"]


def test_r04_fr_41_46_clear_statuses() -> None:
    store = DerStore({"VoltVar", "FixedVar"})
    set_ok(store, request("d", default=True))
    set_ok(store, request("s", start=10))
    assert store.clear(True, "WattPF", None) == "NotSupported"  # R04.FR.43
    assert store.clear(True, "FixedVar", None) == "NotFound"  # R04.FR.41
    assert store.clear(True, None, "s") == "NotFound"  # R04.FR.42: s is not a default
    assert store.clear(False, None, "s") == "Accepted"  # R04.FR.46
    assert store.clear(False, None, None) == "Accepted"  # R04.FR.44, even with nothing left
    assert store.clear(True, "VoltVar", None) == "Accepted"  # R04.FR.45
    assert not store.controls


def test_report_is_chunked_with_tbc_and_valid() -> None:
    store = DerStore(ALL)
    for i in range(30):
        set_ok(store, request(f"c{i}", priority=i, start=10 * i, duration=5))
    set_ok(store, request("es", "EnterService", default=True))
    set_ok(store, request("fv", "FixedVar", default=True))
    messages = report_payloads(list(store), request_id=7)
    for message in messages:
        validate(OcppVersion.V21, "ReportDERControl", message)
    assert [m.get("tbc", False) for m in messages] == [True, False]
    assert {m["requestId"] for m in messages} == {7}
    assert messages[1]["enterService"] == [{"id": "es", "enterService": store.controls["es"].setting}]


_operation = st.one_of(
    st.tuples(
        st.just("set"),
        st.sampled_from(["VoltVar", "FixedVar"]),
        st.integers(0, 3),
        st.booleans(),
        st.integers(0, 200),
        st.one_of(st.none(), st.integers(1, 120)),
    ),
    st.tuples(st.just("clear"), st.sampled_from(["VoltVar", "FixedVar"]), st.booleans()),
    st.tuples(st.just("wait"), st.integers(0, 60)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_operation, max_size=25))
def test_property_one_active_per_type_and_superseded_never_runs(operations: list[tuple[Any, ...]]) -> None:
    store = DerStore(ALL)
    now = 0
    ever_superseded: set[str] = set()
    started: set[str] = set()
    for n, op in enumerate(operations):
        events = store.advance(at(now))
        if op[0] == "set":
            _, control_type, priority, default, start, duration = op
            payload = request(
                f"c{n}",
                control_type,
                priority,
                default=default,
                start=None if default else now + start - 50,
                duration=None if default else duration,
            )
            result = store.set(payload, at(now))
            validate(OcppVersion.V21, "SetDERControl", result.payload(), response=True)
        elif op[0] == "clear":
            store.clear(op[2], op[1], None)
        else:
            now += op[1]
        events += store.advance(at(now))
        for event in events:
            validate(OcppVersion.V21, "NotifyDERStartStop", event.payload())
            if event.started:
                assert event.control_id not in ever_superseded, "a superseded control started"
                started.add(event.control_id)
            else:
                assert event.control_id in started, "a control ended that never started"
        ever_superseded |= {c.control_id for c in store if c.superseded}
        for control_type in ("VoltVar", "FixedVar"):
            active = [c for c in store if c.control_type == control_type and c.active_at(at(now))]
            assert len(active) <= 1, f"two active {control_type} controls at {now}: {active}"
            defaults = [c for c in store if c.control_type == control_type and c.is_default and not c.superseded]
            assert len(defaults) <= 1
