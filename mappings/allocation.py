"""Sharing an aggregate limit ("site import <= 300 kW") across the stations behind it. Pure: no I/O, no clock.

Policy (docs/dispatch.md): only stations with a vehicle charging take part; each gets a share in proportion to
its rating (available capacity), never above its rating and never below the minimum it needs to charge at all
(an EV cannot charge below its minimum current: such a station gets 0 instead). When the minimums alone exceed
the cap, stations are left out, largest minimum first, until the rest fit. The shares never add up to more than
the cap. Changing from one allocation to another lowers first and raises after (`transition`), so the sum of
what stations are allowed never exceeds the larger of the two caps at any moment; raises only take the room the
lowering actually freed (`fit_raises`), so a station that did not confirm its decrease keeps the others down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    """One station behind an aggregate limit."""

    station_id: str
    #: What it can take at most (W): its rating, or an operator cap.
    max_w: float
    #: The least it can charge at when it charges at all (W), e.g. 6 A x 230 V x 3 phases.
    min_w: float = 0.0
    #: A vehicle is charging (or ready to): idle stations are given 0 and re-shared when a session starts.
    charging: bool = True


def allocate(cap_w: float, members: Sequence[Member]) -> dict[str, float]:
    """Station id -> allowed import (W); every member appears, idle or left-out ones with 0."""
    if cap_w < 0:
        raise ValueError("an aggregate cap cannot be negative")
    shares = {m.station_id: 0.0 for m in members}
    taking = [m for m in members if m.charging and m.max_w > 0]
    # Leave out the stations whose minimums cannot all be met, largest minimum first (it frees the most).
    taking.sort(key=lambda m: (m.min_w, m.station_id))
    while taking and sum(min(m.min_w, m.max_w) for m in taking) > cap_w:
        taking.pop()
    fixed: dict[str, float] = {}
    while True:
        free = [m for m in taking if m.station_id not in fixed]
        if not free:
            break
        budget = min(cap_w, sum(m.max_w for m in taking)) - sum(fixed.values())
        scale = budget / sum(m.max_w for m in free)
        over = [m for m in free if scale * m.max_w >= m.max_w]
        under = [m for m in free if scale * m.max_w < min(m.min_w, m.max_w)]
        if not over and not under:
            fixed.update({m.station_id: scale * m.max_w for m in free})
            break
        fixed.update({m.station_id: m.max_w for m in over})
        fixed.update({m.station_id: min(m.min_w, m.max_w) for m in under})
    shares.update(fixed)
    return shares


def transition(old: Mapping[str, float], new: Mapping[str, float]) -> list[tuple[str, float]]:
    """The order to send a new allocation in: every decrease before any increase (unchanged ones omitted)."""
    ids: Iterable[str] = sorted(set(old) | set(new))
    lower = [(sid, new.get(sid, 0.0)) for sid in ids if new.get(sid, 0.0) < old.get(sid, 0.0)]
    raise_ = [(sid, new.get(sid, 0.0)) for sid in ids if new.get(sid, 0.0) > old.get(sid, 0.0)]
    return lower + raise_


def fit_raises(cap_w: float, held: Mapping[str, float], wanted: Mapping[str, float]) -> dict[str, float]:
    """What to raise each station to (those `wanted` above what they `held`): all of it when the cap has room,
    else every raise scaled by the same fraction of the room left, none when there is none. `held` is what each
    station may hold now (after the decreases it confirmed), for every station counted against the cap."""
    raises = {sid: w for sid, w in wanted.items() if w > held.get(sid, 0.0)}
    wanted_more = sum(w - held.get(sid, 0.0) for sid, w in raises.items())
    room = max(0.0, cap_w - sum(held.values()))
    fraction = 1.0 if wanted_more <= room else room / wanted_more
    return {sid: held.get(sid, 0.0) + fraction * (w - held.get(sid, 0.0)) for sid, w in raises.items()}
