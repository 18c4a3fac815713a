"""The restore ramp as a charging profile: a curtailment's own profile, re-sent under its own id, that keeps the
curtailed limit until the restore moment and then steps up along a restore plan (gateway/schedule/restore.py).

Re-sending under the same id replaces the profile in place on every version (K01.FR.05; 1.6 replaces on id, and on
purpose and stack level too), so there is never a moment without a limit and no second profile of the same stack
level and purpose overlaps it (K01.FR.06). The result is time-bounded (schedule `duration`, and `validTo` on 2.x):
once the ramp has reached its target the profile lapses and whatever else is in force takes over. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gateway.schedule.restore import Step
from mappings.commands import OcppCommand
from mappings.units import timestamp, toward_zero

#: How a restore command's note begins (the outcome keeps it, so a restore sent is known after a restart too).
RESTORE_NOTE = "restore ramp from"
#: The ends of the ramps noted in a text, e.g. an outcome's stored JSON (withdrawn ramps' notes too).
_NOTED_ENDS = re.compile(rf'{RESTORE_NOTE} \S+ until ([^\s"]+)')
#: OCPP default number of phases when a period gives none (K01.FR.49).
_DEFAULT_PHASES = 3


def _profile(payload: dict[str, Any]) -> dict[str, Any] | None:
    found = payload.get("chargingProfile") or payload.get("csChargingProfiles")
    return found if isinstance(found, dict) else None


def _schedule(profile: dict[str, Any]) -> dict[str, Any]:
    schedule = profile["chargingSchedule"]
    first: dict[str, Any] = schedule[0] if isinstance(schedule, list) else schedule
    return first


def curtailed_limit_w(command: OcppCommand, *, volts: float) -> float | None:
    """The import limit (W) a SetChargingProfile holds in its only period, or None when it is not a single-period,
    absolute profile with a `limit` (setpoints, modes without a limit and Dynamic profiles are not ramped)."""
    if command.action != "SetChargingProfile":
        return None
    profile = _profile(command.payload)
    if profile is None or profile.get("chargingProfileKind") != "Absolute":
        return None
    schedule = _schedule(profile)
    periods = schedule["chargingSchedulePeriod"]
    if len(periods) != 1 or "limit" not in periods[0] or "startSchedule" not in schedule:
        return None
    period = periods[0]
    limit = float(period["limit"])
    if schedule["chargingRateUnit"] == "A":
        return limit * volts * int(period.get("numberPhases", _DEFAULT_PHASES))
    return limit


def with_restore(
    command: OcppCommand, steps: Sequence[Step], *, restore_at: datetime, end_s: int, volts: float
) -> OcppCommand | None:
    """`command` (a profile `curtailed_limit_w` accepts) with the restore ramp appended: its period until
    `restore_at` plus each step's offset, then the step's limit; the profile ends `end_s` after the restore moment.
    None when no step rises above the curtailed limit (nothing to ramp).

    Steps may also lower the limit (a ramp capped by a lower limit in force, gateway/schedule/restore_cap.py); a step
    that changes nothing is left out. The restore starts on the whole second after `restore_at` (the limit is never
    lifted early)."""
    profile = _profile(command.payload)
    assert profile is not None, "with_restore needs a SetChargingProfile"
    sixteen = "csChargingProfiles" in command.payload
    schedule = dict(_schedule(profile))
    first = dict(schedule["chargingSchedulePeriod"][0])
    start = datetime.fromisoformat(schedule["startSchedule"].replace("Z", "+00:00"))
    base = max(0, math.ceil((restore_at - start).total_seconds()))
    unit_w = volts * first.get("numberPhases", _DEFAULT_PHASES) if schedule["chargingRateUnit"] == "A" else 1.0
    periods = [first]
    curtailed_w = curtailed_limit_w(command, volts=volts)
    assert curtailed_w is not None, "with_restore needs a limit profile"
    for step in steps:
        # 1.6 limits are multipleOf 0.1; whole units keep every validator's float arithmetic exact.
        limit = float(math.floor(step.limit_w / unit_w)) if sixteen else toward_zero(step.limit_w / unit_w)
        if step.limit_w >= curtailed_w:  # rounding never takes it below the curtailed limit it was held at
            limit = max(limit, first["limit"])
        at = base + step.offset_s
        if limit == periods[-1]["limit"]:
            continue
        if at > periods[-1]["startPeriod"]:  # (a restore at the schedule's own start has nothing to ramp from)
            periods.append({**first, "startPeriod": at, "limit": limit})
    if not any(p["limit"] > first["limit"] for p in periods):
        return None
    end_s = base + end_s
    schedule["chargingSchedulePeriod"] = periods
    schedule["duration"] = end_s
    schedule.pop("randomizedDelay", None)  # the ramp's delays are explicit; K01.FR.92 would shift them again
    replaced = {**profile, "chargingSchedule": schedule if sixteen else [schedule]}
    if not sixteen:
        replaced["validTo"] = timestamp(start + timedelta(seconds=end_s))
    key = "csChargingProfiles" if sixteen else "chargingProfile"
    note = f"{RESTORE_NOTE} {timestamp(restore_at)} until {timestamp(start + timedelta(seconds=end_s))}"
    return OcppCommand(command.action, {**command.payload, key: replaced}, command.controls, note)


def noted_until(text: str) -> datetime | None:
    """The latest end of the restore ramps whose notes `text` holds (an outcome's stored JSON), None for none: a
    ramp may still run at `now` only if this is later."""
    if RESTORE_NOTE not in text:
        return None
    ends: list[datetime] = []
    for end in _NOTED_ENDS.findall(text):
        try:
            moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
        except ValueError:  # not a note of ours: a station's own words, kept in the outcome, may read like one
            continue
        if moment.tzinfo is not None:
            ends.append(moment)
    return max(ends, default=None)
