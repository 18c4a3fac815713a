"""A restore ramp never lifts a station above what is in force for it (gateway/schedule/restore_cap.py).

The station is simulated as in tests/schedule/test_stacking.py: the ramp (its curtailment's profile, replaced in
place) and the other directives' profiles sit at the levels `place` gives them, defaults at level 0, and at each
instant the station applies the limit of the highest level that covers it (K08 composite schedule).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from gateway.schedule import Candidate
from gateway.schedule.restore import Step, limit_at, restore_plan
from gateway.schedule.restore_cap import IMPORT, Other, capped, governing
from gateway.schedule.stacking import Entry, place
from mappings.units import stack_level

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
#: The curtailment's window ends (its restore moment) an hour in.
RESTORE = T0 + timedelta(hours=1)


def _at(seconds: float) -> datetime:
    return RESTORE + timedelta(seconds=seconds)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[int, list[tuple[Other, datetime]], list[Step], int, int]:
    """(curtailment priority, others with the moment each was received, raw plan, its end, max steps). The
    curtailment is directive number 10, received at T0; others before (numbers below) or after (above) it."""
    priority = draw(st.integers(0, 6))
    others: list[tuple[Other, datetime]] = []
    for i in range(draw(st.integers(0, 5))):
        later = draw(st.booleans())
        number = 11 + i if later else 9 - i
        received = _at(draw(st.integers(-3000, 600))) if later else T0 - timedelta(minutes=i + 1)
        limit = float(draw(st.integers(0, 22)) * 1000)
        if draw(st.integers(0, 5)) == 0:
            candidate = Candidate(f"o{number}", draw(st.integers(0, 6)), number, frozenset({IMPORT}), True)
        else:
            start = max(received, _at(draw(st.integers(-4000, 900)) + draw(st.floats(0, 0.99))))
            end = None if draw(st.integers(0, 4)) == 0 else start + timedelta(seconds=draw(st.integers(1, 1200)))
            candidate = Candidate(f"o{number}", draw(st.integers(0, 6)), number, frozenset({IMPORT}), False, start, end)
        others.append((Other(candidate, limit), received))
    from_w = float(draw(st.integers(0, 10)) * 1000)
    max_steps = draw(st.integers(1, 12))
    plan = restore_plan(
        "curtail", draw(st.sampled_from(["A", "B", "C"])), from_w=from_w, to_w=22_000.0, rating_w=22_000.0,
        ramp_pct_per_s=draw(st.sampled_from([0.0, 0.33, 1.0, 5.0])), max_delay_s=draw(st.sampled_from([0.0, 300.0])),
        max_steps=max_steps,
    )  # fmt: skip
    hold = plan[-1].offset_s - plan[-2].offset_s if len(plan) > 1 else 1
    return priority, others, plan, plan[-1].offset_s + max(1, hold), max_steps


def _levels(priority: int, others: list[tuple[Other, datetime]], end_s: int) -> dict[str, int] | None:
    """Stack levels of the curtailment (with its ramp's reach) and the other scheduled directives (None: too few)."""
    entries = [Entry("c", priority, 10, T0, T0, RESTORE, stack_level(priority, False), ramp=timedelta(seconds=end_s))]
    for other, received in others:
        c = other.candidate
        if not c.is_default:
            assert c.start is not None
            entries.append(Entry(c.directive_id, c.priority, c.sequence, received, c.start, c.end,
                                 stack_level(c.priority, False)))  # fmt: skip
    placement = place(entries, ceiling=40, replaces_on_level=False)
    if placement.unordered or placement.deferred or None in placement.levels.values():
        return None
    return {k: v for k, v in placement.levels.items() if v is not None}


@given(scenes())
def test_the_station_never_goes_above_what_is_in_force_nor_above_the_ramp(
    scene: tuple[int, list[tuple[Other, datetime]], list[Step], int, int],
) -> None:
    priority, others, plan, end_s, max_steps = scene
    found = [o for o, _ in others]
    steps = capped(plan, RESTORE, found, rank=(priority, 10), end_s=end_s, max_steps=max_steps)
    assert 1 <= len(steps) <= max_steps  # SmartChargingCtrlr.PeriodsPerSchedule
    assert [s.offset_s for s in steps] == sorted({s.offset_s for s in steps})
    levels = _levels(priority, others, end_s)
    if levels is None:
        event("too few levels")
        return
    instants: set[float] = {s.offset_s for s in plan} | {s.offset_s for s in steps}
    instants |= set(range(0, end_s, max(1, end_s // 50)))
    for o in found:
        for t in (o.candidate.start, o.candidate.end):
            if t is not None:
                instants |= {(t - RESTORE).total_seconds(), math.floor((t - RESTORE).total_seconds())}
    for offset in sorted(x for x in instants if 0 <= x < end_s):
        at = _at(offset)
        # What the station holds and covers `at`: the ramp at the curtailment's level, others in their windows.
        # (defaults sit at level 0, below the ramp, which covers every instant checked)
        covering = [(levels["c"], limit_at(steps, offset))]
        covering += [(levels[o.candidate.directive_id], o.limit_w) for o in found if o.candidate.active(at)]
        applied = max(covering)[1]
        chosen = governing(found, at)
        in_force = math.inf if chosen is None else chosen.limit_w
        assert applied <= in_force, (offset, applied, in_force)  # never above what arbitration puts in force
        c = None if chosen is None else chosen.candidate
        if c is not None and not c.is_default and (c.priority, -c.sequence) < (priority, -10):
            # One that outranks the curtailment governs above its ramp, as it did over the curtailment.
            assert applied == in_force, offset
        else:
            assert applied <= limit_at(steps, offset), offset  # the station follows the (capped) ramp
            assert applied <= limit_at(plan, offset), offset  # which only ever lowers the ramp planned
