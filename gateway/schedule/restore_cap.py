"""A restore ramp never lifts a station above what is in force for it: each period of the ramp is capped by the
import limit that arbitration (`in_force`) gives the other directives at the station during that period.

The curtailment that ended no longer governs; its ramp is a safety measure on top of what does, so it may only
lower what would otherwise be in force, never raise it. A ramp sits at its curtailment's stack level with its rank
(gateway/schedule/stacking.py), so a directive that outranks the curtailment governs above it anyway, and one
ranked below it (say a lower-priority directive with a lower limit arriving during the ramp) is held by the capped
ramp: the station applies min(ramp step, limit in force). Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.schedule.arbitration import Candidate, in_force
from gateway.schedule.restore import Step, limit_at

#: The control a capping directive is arbitrated for.
IMPORT = "import_limit_w"


@dataclass(frozen=True, slots=True)
class Other:
    """Another directive at the station with the import limit (W) it holds there."""

    candidate: Candidate
    limit_w: float


def governing(others: Sequence[Other], at: datetime) -> Other | None:
    """The one in force for the import limit at `at` among `others` (None: none limits the station)."""
    chosen = in_force([o.candidate for o in others], at).get(IMPORT)
    return next((o for o in others if o.candidate.directive_id == chosen), None)


def _outranks(other: Candidate, rank: tuple[int, int]) -> bool:
    """Whether `other` goes above a curtailment of `rank` (priority, receipt number) in the stack: defaults never."""
    return not other.is_default and (other.priority, -other.sequence) < (rank[0], -rank[1])


def _changes(others: Sequence[Other]) -> list[datetime]:
    return sorted({t for o in others for t in (o.candidate.start, o.candidate.end) if t is not None})


def capped(
    plan: Sequence[Step],
    restore_at: datetime,
    others: Sequence[Other],
    *,
    rank: tuple[int, int],
    end_s: int,
    max_steps: int,
) -> list[Step]:
    """`plan` (offsets in whole seconds from `restore_at`, lasting until `end_s`) as the ramp of a curtailment of
    `rank` (priority, receipt number): each period's limit is the least, over the instants of that period, of the
    step and the import limit in force among `others`. Where one that outranks the curtailment is in force, its
    limit is the period's (it sits above the ramp and governs, as it did over the curtailment). At most
    `max_steps` steps: adjacent periods are merged at the lower of their limits, which only ever lowers."""
    bounds = sorted({s.offset_s for s in plan} | {0})
    for t in _changes(others):
        offset = (t - restore_at).total_seconds()
        if 0 < offset < end_s:
            bounds.append(int(offset))  # the whole second it falls in: the cap applies from its start
    bounds = sorted(set(bounds))
    steps: list[Step] = []
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else end_s
        step = limit_at(list(plan), lo)
        instants = [restore_at + timedelta(seconds=lo)]
        instants += [t for t in _changes(others) if lo <= (t - restore_at).total_seconds() < hi]
        values = []
        for at in instants:
            chosen = governing(others, at)
            if chosen is None:
                values.append(step)
            elif _outranks(chosen.candidate, rank):
                values.append(chosen.limit_w)
            else:
                values.append(min(step, chosen.limit_w))
        limit = min(values)
        if not steps or steps[-1].limit_w != limit:
            steps.append(Step(lo, limit))
    while len(steps) > max_steps:
        # Merge the adjacent pair closest in limit, at the lower one: never above either.
        i = min(range(len(steps) - 1), key=lambda k: abs(steps[k].limit_w - steps[k + 1].limit_w))
        steps[i : i + 2] = [Step(steps[i].offset_s, min(steps[i].limit_w, steps[i + 1].limit_w))]
    return steps
