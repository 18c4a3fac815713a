"""Reconciliation diff: applying it to what a station holds yields exactly what should be in force there, touches
nothing that is not ours, and sends nothing the station already holds as it should."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Directive, OcppVersion, StationCapabilities
from gateway.reconcile import Item, Key, clear_command, diff, held_der, item_of, number_of
from mappings import OcppCommand, map_directive
from mappings.decisions import PROFILE_SLOTS
from protocols.ocpp.simulator.der_store import DerStore, report_payloads

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
MAX_NUMBER = 12


def _der(number: int, kind: str, value: int) -> OcppCommand:
    setting = {"priority": 1, "startTime": "2026-06-01T12:00:00Z", "duration": 60, "curveData": [{"x": value}]}
    payload = {"isDefault": False, "controlId": f"g{number}-{kind}", "controlType": kind, "curve": setting}
    return OcppCommand("SetDERControl", payload, ("curve",))


def _profile(number: int, slot: int, limit: int) -> OcppCommand:
    profile = {"id": number * PROFILE_SLOTS + slot, "stackLevel": 1, "chargingSchedule": [{"limit": limit}]}
    return OcppCommand("SetChargingProfile", {"evseId": 0, "chargingProfile": profile}, ("import_limit_w",))


commands = st.one_of(
    st.builds(_der, st.integers(1, MAX_NUMBER), st.sampled_from(["VoltVar", "VoltWatt"]), st.integers(0, 3)),
    st.builds(_profile, st.integers(1, MAX_NUMBER), st.sampled_from([0, 1]), st.integers(0, 3)),
)
foreign = st.one_of(
    st.builds(lambda i: Item("der", f"local-{i}", "{}"), st.integers(0, 5)),
    st.builds(lambda i: Item("profile", str(i), "[]"), st.integers(0, PROFILE_SLOTS - 1)),  # number 0: not ours
    st.builds(lambda n: Item("profile", str(n * PROFILE_SLOTS + 7), "[]"), st.integers(1, MAX_NUMBER)),  # slot 7
    st.builds(lambda n: Item("der", f"g{n}-VoltVar", "{}"), st.integers(MAX_NUMBER + 1, 99)),  # unknown number
)


def _apply(held: list[Item], plan_send: list[tuple[str, OcppCommand]], clears: list[Item]) -> dict[Key, str]:
    state = {item.key: item.body for item in held}
    for _, command in plan_send:
        item = item_of(command)
        assert item is not None
        state[item.key] = item.body
    for item in clears:
        del state[item.key]
    return state


@given(
    desired=st.lists(commands, max_size=8, unique_by=lambda c: item_of(c).key),  # type: ignore[union-attr]
    stale=st.lists(commands, max_size=8),
    others=st.lists(foreign, max_size=4),
    keep=st.frozensets(st.integers(1, MAX_NUMBER)),
    held_fraction=st.integers(0, 8),
)
def test_applying_the_diff_gives_exactly_what_should_be_in_force(
    desired: list[OcppCommand], stale: list[OcppCommand], others: list[Item], keep: frozenset[int], held_fraction: int
) -> None:
    wanted = [(f"d{number_of(item_of(c))}", c) for c in desired]  # type: ignore[arg-type]
    # The station holds some of what is wanted, some stale versions and leftovers of ours, and foreign items.
    held_map: dict[Key, Item] = {}
    for c in [*stale, *desired[:held_fraction]]:
        item = item_of(c)
        assert item is not None
        held_map[item.key] = item
    for item in others:
        held_map.setdefault(item.key, item)
    held = list(held_map.values())
    plan = diff(wanted, held, ours=range(1, MAX_NUMBER + 1), keep=keep)
    after = _apply(held, plan.send, plan.clear)
    wanted_items = {i.key: i for i in (item_of(c) for _, c in wanted) if i is not None}
    for key, item in wanted_items.items():
        assert after[key] == item.body
    for item in held:
        number = number_of(item)
        if item.key in wanted_items:
            continue
        if number is None or number > MAX_NUMBER or number in keep:
            assert after[item.key] == item.body  # not ours, or left alone on purpose
        else:
            assert item.key not in after  # ours and unwanted: cleared
    # Least: nothing is sent that the station already holds as it should.
    for _, command in plan.send:
        item = item_of(command)
        assert item is not None
        assert held_map.get(item.key) != item
    held_directives = {d for d, c in wanted if all(held_map.get(i.key) == i for i in [item_of(c)] if i is not None)}
    assert set(plan.held) <= held_directives


def test_what_a_21_station_reports_matches_what_was_sent() -> None:
    """The SetDERControl payloads a station stores come back in ReportDERControl as the same items."""
    caps = StationCapabilities(version=OcppVersion.V21, der_modes=frozenset({"VoltVar", "FixedPFAbsorb"}))
    directive = Directive.model_validate(
        {
            "start": T0.isoformat(),
            "duration_s": 600,
            "controls": {
                "fixed_pf_absorb": {"displacement": 0.95, "absorbing_vars": True},
                "curves": [
                    {
                        "kind": "volt_var",
                        "x_unit": "pct_v_nominal",
                        "y_unit": "pct_max_var",
                        "points": [{"x": 92, "y": -30}, {"x": 108, "y": 30}],
                    }
                ],
            },
        }
    )
    result = map_directive(directive, caps, number=3, now=T0)
    store = DerStore(caps.der_modes)
    for command in result.commands:
        assert store.set(command.payload, T0).status == "Accepted"
    reported = held_der(report_payloads(list(store), 1))
    plan = diff([("d", c) for c in result.commands], reported, ours=range(1, 4))
    assert (plan.send, plan.clear, plan.held) == ([], [], ["d"])
    # The directive gone, the same report means: clear both, by id.
    plan = diff([], reported, ours=range(1, 4))
    clears = [clear_command(i, OcppVersion.V21).payload for i in plan.clear]
    assert sorted(c["controlId"] for c in clears) == ["g3-FixedPFAbsorb", "g3-VoltVar"]
