"""Pure translation: every payload type -> the expected directive (or a precise, audited refusal)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import CurveKind, CurveUnit, OperationMode, Price, Target, TargetScope
from protocols.openadr3.normalize import Normalized, directive_prefix, normalize_event
from protocols.openadr3.policy import CurveSpec, NormalizeConfig, PricePolicy, PriceTier
from protocols.openadr3.wire import Event, Program, WireError, decode_body, parse, parse_duration

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CONFIG = NormalizeConfig(
    reference_import_w=100_000,
    targets={"group-1": Target(scope=TargetScope.GROUP, ids=["site-a"])},
    curves={"*": CurveSpec(kind=CurveKind.VOLT_VAR, x_unit=CurveUnit.VOLT_PCT, y_unit=CurveUnit.PCT_MAX_VAR,
                           y_scale=100)},
    price=PricePolicy(tiers=[PriceTier(at_or_above_per_kwh=0.30, import_fraction=0.5)]),
)  # fmt: skip


def run(payload_type: str, values: list[Any], units: str | None = None, **extra: Any) -> Normalized:
    config = extra.pop("config", CONFIG)
    descriptors = [{"payloadType": payload_type, "units": units, "currency": extra.pop("currency", None)}]
    event = parse(Event, {
        "id": "ev1", "programID": "p1", "payloadDescriptors": descriptors,
        "intervalPeriod": {"start": "2025-06-01T13:00:00Z", "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": payload_type, "values": values}]}], **extra,
    })  # fmt: skip
    program = parse(Program, {"id": "p1", "programName": "flex"})
    return normalize_event(event, program, config, NOW, server="http://vtn")


@pytest.mark.parametrize(
    ("payload_type", "values", "units", "field", "expected"),
    [
        ("IMPORT_CAPACITY_LIMIT", [7.5], "KW", "import_limit_w", 7500),
        ("IMPORT_CAPACITY_LIMIT", [7.5], None, "import_limit_w", 7500),
        ("IMPORT_CAPACITY_LIMIT", [7500], "W", "import_limit_w", 7500),
        ("EXPORT_CAPACITY_LIMIT", [2], "KW", "export_limit_w", 2000),
        ("DISPATCH_SETPOINT", [3], "KW", "active_power_setpoint_w", 3000),
        ("DISPATCH_SETPOINT_RELATIVE", [10], "KW", "import_limit_w", 30_000),  # baseline 40 kW - 10 kW
        ("CONTROL_SETPOINT", [-4], "KW", "active_power_setpoint_w", -4000),
        ("CONTROL_SETPOINT", ["charging_only"], None, "operation_mode", OperationMode.CHARGING_ONLY),
        ("SIMPLE", [1], None, "import_limit_w", 75_000),
        ("SIMPLE", [3], None, "import_limit_w", 0),
        ("ALERT_GRID_EMERGENCY", ["grid at risk"], None, "import_limit_w", 0),
        ("ALERT_FLEX_ALERT", ["shift load"], None, "import_limit_w", 50_000),
        ("PRICE", [0.12], "KWH", "price", Price(per_kwh=0.12, currency="USD")),
        ("EXPORT_PRICE", [80], "MWH", "price", Price(per_kwh=0.08, currency="USD", export=True)),
    ],
)
def test_payload_to_control(payload_type: str, values: list[Any], units: str | None, field: str, expected: Any) -> None:
    event = parse(Event, {
        "id": "ev1", "programID": "p1", "targets": ["group-1"],
        "payloadDescriptors": [{"payloadType": payload_type, "units": units}],
        "intervalPeriod": {"start": "2025-06-01T13:00:00Z", "duration": "PT1H", "randomizeStart": "PT5M"},
        "intervals": [{"id": 0, "payloads": [{"type": payload_type, "values": values}]}], "priority": 2,
    })  # fmt: skip
    result = normalize_event(event, None, CONFIG, NOW, server="http://vtn", baseline_w=40_000)
    assert result.rejected == ()
    (directive,) = result.directives
    assert getattr(directive.controls, field) == expected
    assert directive.id == f"{directive_prefix('ev1')}0.0"
    assert directive.start == NOW + timedelta(hours=1)
    assert directive.duration_s == 3600
    assert directive.randomize_start_s == 300
    assert directive.priority == 2
    assert directive.target == Target(scope=TargetScope.GROUP, ids=["site-a"])
    assert directive.source.signal_id == "ev1"


def test_price_tier_also_limits_import_and_multi_values_split_the_interval() -> None:
    result = run("PRICE", [0.10, 0.35, 0.20], "KWH", currency="EUR")
    assert [d.controls.price.per_kwh for d in result.directives if d.controls.price] == [0.10, 0.35, 0.20]
    assert [d.controls.import_limit_w for d in result.directives] == [None, 50_000, None]
    assert [d.duration_s for d in result.directives] == [1200, 1200, 1200]
    assert result.directives[1].start == NOW + timedelta(hours=1, minutes=20)
    assert {d.controls.price.currency for d in result.directives if d.controls.price} == {"EUR"}


def test_curve_uses_the_program_configuration() -> None:
    points = [{"x": 90, "y": 0.3}, {"x": 100, "y": 0}, {"x": 110, "y": -0.3}]
    (directive,) = run("CURVE", points).directives
    (curve,) = directive.controls.curves
    assert curve.kind is CurveKind.VOLT_VAR
    assert [(p.x, p.y) for p in curve.points] == [(90, 30), (100, 0), (110, -30)]
    nested = run("CURVE", [points])  # the 3.1 enumeration's shape: one array of points
    assert len(nested.directives) == 1


@pytest.mark.parametrize(
    ("payload_type", "values", "units", "code", "words"),
    [
        ("CHARGE_STATE_SETPOINT", [80], "PERCENT", "unsupported_control", "state-of-charge"),
        ("GHG", [400], None, "unknown_payload_type", "'GHG'"),
        ("ALERT_FIRE", ["fire"], None, "alert_noted", "audited"),
        ("IMPORT_CAPACITY_LIMIT", [5], "KWH", "unsupported_units", "'KWH' are not a power unit"),
        ("IMPORT_CAPACITY_LIMIT", [-5], "KW", "invalid_payload", "below 0"),
        ("IMPORT_CAPACITY_LIMIT", [1, 2], "KW", "invalid_payload", "expected 1 value"),
        ("IMPORT_CAPACITY_LIMIT", ["x"], "KW", "invalid_payload", "expected a number"),
        ("IMPORT_CAPACITY_LIMIT", [20_000], "KW", "invalid_value", "less than or equal to 10000000"),
        ("SIMPLE", [4], None, "invalid_payload", "not one of 0-3"),
        ("CONTROL_SETPOINT", ["warp"], None, "unsupported_value", "not a configured operation mode"),
        ("DISPATCH_SETPOINT_RELATIVE", [1], "KW", "no_baseline", "baseline"),
    ],
)
def test_unusable_payloads_are_rejected_precisely(
    payload_type: str, values: list[Any], units: str | None, code: str, words: str
) -> None:
    result = run(payload_type, values, units)
    assert result.directives == ()
    (rejected,) = result.rejected
    assert rejected.code == code
    assert words in rejected.reason


def test_simple_level_zero_and_unconfigured_reference() -> None:
    assert run("SIMPLE", [0]) == Normalized((), ())
    bare = run("SIMPLE", [2], config=NormalizeConfig())
    assert [r.code for r in bare.rejected] == ["not_configured"]


def test_timing_do_it_now_follow_on_and_past_intervals() -> None:
    event = parse(Event, {
        "id": "ev2", "programID": "p1", "intervalPeriod": {"start": "0001-01-01", "duration": "PT30M"},
        "intervals": [
            {"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]},
            {"id": 1, "payloads": [{"type": "SIMPLE", "values": [2]}]},
            {"id": 2, "intervalPeriod": {"start": "2025-06-01T10:00:00Z", "duration": "PT1H"},
             "payloads": [{"type": "SIMPLE", "values": [3]}]},
        ],
    })  # fmt: skip
    directives = normalize_event(event, None, CONFIG, NOW, server="s").directives
    assert [(d.start, d.duration_s) for d in directives] == [(None, 1800), (NOW + timedelta(minutes=30), 1800)]
    period = {"start": "0001-01-01", "duration": "P9999Y"}
    simple = [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [3]}]}]
    forever = parse(Event, {"id": "ev3", "programID": "p", "intervalPeriod": period, "intervals": simple})
    (d,) = normalize_event(forever, None, CONFIG, NOW, server="s").directives
    assert (d.start, d.duration_s) == (None, None)


def test_targets_3_0_1_values_unknown_and_mixed() -> None:
    base = {"id": "e", "programID": "p", "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}]}
    old_style = parse(Event, {**base, "targets": [{"type": "GROUP", "values": ["group-1"]}]})
    assert normalize_event(old_style, None, CONFIG, NOW, server="s").directives[0].target.ids == ["site-a"]
    unknown = normalize_event(parse(Event, {**base, "targets": ["nobody"]}), None, CONFIG, NOW, server="s")
    assert [r.code for r in unknown.rejected] == ["unknown_target"]
    assert unknown.directives == ()


def test_snake_case_and_double_encoded_event() -> None:
    inner = {"id": "e9", "program_id": "p", "interval_period": {"start": "2025-06-01T13:00:00Z"}, "intervals": []}
    raw = json.dumps(json.dumps(inner)).encode()
    event = parse(Event, decode_body(raw))
    assert (event.program_id, event.interval_period and event.interval_period.start) == ("p", NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{", "body is not JSON"),
        (b'{"id": "e", "intervals": []}', "programID: Field required"),
        (b'{"id": "e", "programID": "p", "intervals": [{"id": "x", "payloads": []}]}', "intervals.0.id"),
        (b'{"id": "e", "programID": "p", "intervalPeriod": {"duration": "1h"}}', "not an ISO 8601 duration"),
        (b'{"id": "e", "programID": "p", "intervalPeriod": {"start": "yesterday"}}', "not an RFC 3339"),
        (b'{"id": "e", "programID": "p", "priority": -1}', "priority"),
        (b" " * 2_000_000, "exceeds the limit"),
    ],
)
def test_bad_events_fail_with_located_errors(raw: bytes, words: str) -> None:
    with pytest.raises(WireError, match=words.replace("(", r"\(")):
        parse(Event, decode_body(raw))


# -- properties -----------------------------------------------------------------------------------------------------

durations = st.builds(
    lambda d, h, m, s: (f"P{d}DT{h}H{m}M{s}S", d * 86_400 + h * 3600 + m * 60 + s),
    st.integers(0, 400), st.integers(0, 48), st.integers(0, 90), st.integers(0, 90),
)  # fmt: skip


@given(durations)
def test_duration_parse_property(case: tuple[str, int]) -> None:
    text, seconds = case
    assert parse_duration(text) == seconds


payload = st.one_of(
    st.builds(lambda v: {"type": "IMPORT_CAPACITY_LIMIT", "values": [v]}, st.floats(-10, 20_000, allow_nan=False)),
    st.builds(lambda v: {"type": "SIMPLE", "values": [v]}, st.integers(-2, 5)),
    st.builds(lambda v: {"type": "PRICE", "values": v}, st.lists(st.floats(-1, 5, allow_nan=False), max_size=4)),
    st.builds(lambda t: {"type": t, "values": ["x"]}, st.sampled_from(["ALERT_WIND", "OLS", "CURVE", "X_PRIVATE"])),
)


@given(
    st.lists(st.lists(payload, min_size=1, max_size=3), min_size=1, max_size=5),
    st.integers(-7200, 7200),
    st.sampled_from(["PT15M", "PT1H", "PT0S", "P9999Y"]),
)
def test_normalization_never_raises_and_accounts_for_every_payload(
    intervals: list[list[dict[str, Any]]], offset_s: int, duration: str
) -> None:
    start = (NOW + timedelta(seconds=offset_s)).isoformat()
    body = {"id": "e", "programID": "p", "intervalPeriod": {"start": start, "duration": duration},
            "intervals": [{"id": i, "payloads": p} for i, p in enumerate(intervals)]}  # fmt: skip
    result = normalize_event(parse(Event, body), None, CONFIG, NOW, server="s")
    ids = [d.id for d in result.directives]
    assert len(ids) == len(set(ids))
    for d in result.directives:
        assert d.id.startswith(directive_prefix("e"))
        end = d.end(NOW)
        assert end is None or end > NOW  # nothing that has already ended
