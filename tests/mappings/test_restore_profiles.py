"""The restore ramp as a charging profile: the curtailment's own profile (same id) with the ramp appended."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Controls, OcppVersion, OperationMode, RateUnit, StationCapabilities
from gateway.schedule.restore import restore_plan
from mappings import OcppCommand, map_directive
from mappings.restore_profiles import RESTORE_NOTE, curtailed_limit_w, noted_until, with_restore
from protocols.ocpp.schemas import validate
from tests.mappings.samples import NOW, directive, v21


def _caps(version: OcppVersion, unit: RateUnit, periods: int = 24) -> StationCapabilities:
    if version is OcppVersion.V21:
        return v21(rate_units=frozenset({unit}), periods_per_schedule=periods)
    return StationCapabilities(version=version, rate_units=frozenset({unit}), periods_per_schedule=periods)


def _curtailment(caps: StationCapabilities, limit_w: float) -> OcppCommand:
    d = directive(Controls(import_limit_w=limit_w))
    command = next(c for c in map_directive(d, caps, number=3, now=NOW).commands if c.action == "SetChargingProfile")
    return command


def _parts(command: OcppCommand) -> tuple[dict[str, object], dict[str, object], list[dict[str, float]]]:
    profile = command.payload.get("chargingProfile") or command.payload["csChargingProfiles"]
    schedule = profile["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    return profile, schedule, schedule["chargingSchedulePeriod"]


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from(list(OcppVersion)),
    unit=st.sampled_from(list(RateUnit)),
    limit_w=st.floats(0, 10_000),
    target_w=st.floats(0, 44_000),
    ramp=st.floats(0, 10),
    delay=st.floats(0, 600),
    after_s=st.integers(0, 900_000).map(lambda ms: ms / 1000),
    periods=st.integers(2, 30),
    station=st.text("ABC0123", min_size=1, max_size=6),
)
def test_a_restore_profile_replaces_the_curtailment_in_place_and_only_rises(
    version: OcppVersion,
    unit: RateUnit,
    limit_w: float,
    target_w: float,
    ramp: float,
    delay: float,
    after_s: float,
    periods: int,
    station: str,
) -> None:
    caps = _caps(version, unit, periods)
    original = _curtailment(caps, limit_w)
    from_w = curtailed_limit_w(original, volts=caps.nominal_voltage_v)
    assert from_w is not None
    plan = restore_plan(
        "d1", station, from_w=from_w, to_w=target_w, rating_w=22_000, ramp_pct_per_s=ramp, max_delay_s=delay,
        max_steps=periods - 1,
    )  # fmt: skip
    _, schedule0, _ = _parts(original)
    start = datetime.fromisoformat(str(schedule0["startSchedule"]).replace("Z", "+00:00"))
    at = start + timedelta(seconds=after_s)
    restored = with_restore(original, plan, restore_at=at, end_s=plan[-1].offset_s + 5, volts=caps.nominal_voltage_v)
    if restored is None:  # no step rises above the curtailed limit after the schedule's start (units rounded)
        base = math.ceil((at - start).total_seconds())
        assert not [s for s in plan if base + s.offset_s > 0 and s.limit_w > from_w + 1 + caps.nominal_voltage_v * 3]
        return
    validate(version, "SetChargingProfile", restored.payload, response=False)  # K01 schema, every version
    profile, schedule, out = _parts(restored)
    old_profile, _, old_periods = _parts(original)
    assert {k: v for k, v in profile.items() if k not in ("chargingSchedule", "validTo")} == {
        k: v for k, v in old_profile.items() if k not in ("chargingSchedule", "validTo")
    }  # same id, purpose, stack level: a replacement (K01.FR.05)
    assert out[0] == old_periods[0]  # the curtailment holds until the restore moment
    starts = [p["startPeriod"] for p in out]
    assert starts == sorted(set(starts))  # K01.FR.35, and K01.FR.31 (first is 0) kept
    assert starts[1] >= after_s  # never lifted early
    limits = [p["limit"] for p in out]
    assert limits == sorted(limits)  # only rises
    assert len(out) <= periods  # SmartChargingCtrlr.PeriodsPerSchedule
    assert schedule["duration"] == math.ceil((at - start).total_seconds()) + plan[-1].offset_s + 5
    assert restored.note is not None
    assert restored.note.startswith(RESTORE_NOTE)
    if version is not OcppVersion.V16:
        valid_to = datetime.fromisoformat(str(profile["validTo"]).replace("Z", "+00:00"))
        assert valid_to == start + timedelta(seconds=float(str(schedule["duration"])))


def test_setpoints_and_modes_without_a_limit_are_not_ramped() -> None:
    """Only a period's `limit` is ramped: a CentralSetpoint or Idle period has none, a DER control is no profile."""
    caps = v21()
    for controls in (
        Controls(active_power_setpoint_w=3000, operation_mode=OperationMode.CENTRAL_SETPOINT),
        Controls(operation_mode=OperationMode.IDLE),
    ):
        (command,) = map_directive(directive(controls), caps, number=3, now=NOW).commands
        assert "limit" not in command.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        assert curtailed_limit_w(command, volts=230) is None
    assert curtailed_limit_w(OcppCommand("SetDERControl", {}, ()), volts=230) is None
    limited = map_directive(directive(Controls(import_limit_w=4000)), caps, number=3, now=NOW).commands
    assert [curtailed_limit_w(c, volts=230) for c in limited] == [4000]


def test_amps_are_converted_with_the_periods_phases() -> None:
    caps = _caps(OcppVersion.V201, RateUnit.A)
    original = _curtailment(caps, 6900)
    assert curtailed_limit_w(original, volts=230) == 10 * 230 * 3


def test_noted_until_is_the_latest_end_of_our_notes_and_ignores_look_alikes() -> None:
    """The ramp end kept with an outcome (the store's index) comes from the gateway's own notes; a station's words
    that read like one but name no time (or no zone) are ignored rather than failing the outcome's save."""
    ours = [
        f"{RESTORE_NOTE} 2026-12-06T10:00:00Z until 2026-12-06T10:10:00Z",
        f"{RESTORE_NOTE} 2026-12-06T11:00:00.250Z until 2026-12-06T11:05:00.500Z / Rejected",
    ]
    theirs = f"{RESTORE_NOTE} noon until tomorrow, {RESTORE_NOTE} x until 2026-12-07T00:00:00"
    body = json.dumps({"commands": [{"detail": d} for d in [*ours, theirs]]})
    assert noted_until(body) == datetime(2026, 12, 6, 11, 5, 0, 500_000, tzinfo=UTC)
    assert noted_until(json.dumps({"commands": [{"detail": theirs}]})) is None
    assert noted_until('{"commands": []}') is None
