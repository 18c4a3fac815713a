"""Ramped, staggered restore: when a curtailment ends, stations step back up over time, not all at once.

Each station waits its own delay (uniform in [0, max_delay_s), reproducible from directive and station ids, as
randomization is) and then ramps from the curtailed limit to the restored one at `ramp_pct_per_s` of its rating
per second, in at most `max_steps` steps (a charging schedule holds a limited number of periods:
SmartChargingCtrlr.PeriodsPerSchedule). The result is a list of (offset from the restore moment, limit) steps,
which a charging profile's periods can carry. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from gateway.model import Directive
from gateway.schedule.randomize import station_fraction

#: A ramp slower than a day is treated as a day long (a restore that never finishes helps nobody).
MAX_RAMP_S = 86_400.0
#: A restore delay bound above an hour is treated as an hour (as randomization is bounded).
MAX_DELAY_S = 3_600.0


@dataclass(frozen=True, slots=True)
class Step:
    offset_s: int
    limit_w: float


def restore_plan(
    directive_id: str,
    station_id: str,
    *,
    from_w: float,
    to_w: float,
    rating_w: float,
    ramp_pct_per_s: float,
    max_delay_s: float,
    max_steps: int = 10,
) -> list[Step]:
    """The steps from `from_w` (held until the station's delay has passed) up to `to_w`."""
    if to_w <= from_w:
        return [Step(0, to_w)]  # lowering is never delayed or ramped: safety first
    delay = math.floor(station_fraction(directive_id, station_id, "restore") * min(max_delay_s, MAX_DELAY_S))
    if ramp_pct_per_s <= 0 or rating_w <= 0:
        return [Step(0, from_w), Step(delay, to_w)] if delay else [Step(0, to_w)]
    ramp_s = min((to_w - from_w) / (rating_w * ramp_pct_per_s / 100), MAX_RAMP_S)
    steps = max(1, min(max_steps, math.ceil(ramp_s)))
    width = math.ceil(ramp_s / steps)
    plan = [Step(0, from_w)] if delay else []
    for k in range(1, steps + 1):
        limit = to_w if k == steps else from_w + (to_w - from_w) * k / steps
        plan.append(Step(delay + (k - 1) * width, limit))
    return plan


def limit_at(plan: list[Step], offset_s: float) -> float:
    """The limit a station following `plan` has `offset_s` after the restore moment."""
    current = plan[0].limit_w
    for step in plan:
        if step.offset_s <= offset_s:
            current = step.limit_w
    return current


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast and how spread a restore is, and where each figure came from (the audit records both)."""

    ramp_pct_per_s: float
    ramp_source: str
    max_delay_s: float
    delay_source: str


def pace(
    directive: Directive,
    defaults: Sequence[Directive],
    *,
    ramp_pct_per_s: float,
    max_delay_s: float,
    utility_spread: bool,
) -> Pace:
    """The restore pace for a station leaving `directive`: each figure from the directive's own controls, else the
    best of the `defaults` in force at the station (sorted best first), else the gateway's configuration
    (`ramp_pct_per_s`, `max_delay_s`).

    Ramp: 2030.5 setGradW (`gradients.ramp_pct_per_s`), the default ramp rate "due to command" (setSoftGradW is the
    soft start after a trip, which a DER applies itself). Delay: 2030.5 setESRandomDelay
    (`enter_service.random_delay_s`).
    A 0 from a utility (2030.5 "no limit") counts as not given: stepping back at once is the operator's choice.
    When the utility already spread the stations' ends (`utility_spread`: a randomized end or a randomized cancel,
    2030.5 randomizeStart/randomizeDuration), no second random delay is added."""
    ramp, ramp_source = ramp_pct_per_s, "config"
    delay, delay_source = max_delay_s, "config"
    for source, d in reversed([("directive", directive), *((f"default {x.id}", x) for x in defaults)]):
        gradients, entry = d.controls.gradients, d.controls.enter_service
        if gradients is not None and gradients.ramp_pct_per_s > 0:
            ramp, ramp_source = gradients.ramp_pct_per_s, source
        if entry is not None and entry.random_delay_s:
            delay, delay_source = entry.random_delay_s, source
    if utility_spread:
        delay, delay_source = 0.0, "utility randomization"
    return Pace(ramp, ramp_source, delay, delay_source)


def ramp_reach(paced: Pace, max_steps: int) -> timedelta:
    """How long past its restore moment a ramp planned at this pace can last at most (its profile's end): the delay,
    the ramp at full swing (0 W to the rating), the rounding of each of `max_steps` steps and of the restore moment
    to whole seconds (mappings/restore_profiles.py). Stack levels stay taken that long (gateway/schedule/stacking.py).
    """
    if not (paced.ramp_pct_per_s or paced.max_delay_s):
        return timedelta(0)  # no ramp: the limit lapses or is cleared at its end
    delay = min(paced.max_delay_s, MAX_DELAY_S)
    if paced.ramp_pct_per_s <= 0:
        return timedelta(seconds=math.ceil(2 * delay) + 2)  # held `delay`, then the target held as long again
    ramp = min(100 / paced.ramp_pct_per_s, MAX_RAMP_S)
    return timedelta(seconds=math.ceil(delay + ramp) + min(max_steps, math.ceil(ramp)) + 2)


#: The longest any ramp can last (`ramp_reach` at the slowest pace), with the widest randomized end (2 x 3600 s):
#: how long after it ended a directive can still hold a stack level (gateway.store `stacking_directives`).
LONGEST_REACH = timedelta(seconds=math.ceil(MAX_DELAY_S + 2 * MAX_RAMP_S) + 3 + 7_200)
