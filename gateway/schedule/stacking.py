"""Stack levels: which OCPP stackLevel each directive's charging profile gets on one station, so that the station's
own composite schedule follows the gateway's arbitration (`in_force`).

A station holds the profiles of one purpose on one EVSE side by side and, at each instant, applies the one with the
highest stackLevel whose schedule covers that instant (OCPP 2.x K01/K08, 1.6 section 3.13.2). Arbitration wants the
best (lowest) priority, then the most recent, among the directives whose window contains the instant. Two rules
decide which profiles a station keeps when a new one arrives:

- OCPP 2.x: a profile replaces another of the same id (K01.FR.05); two of one purpose, EVSE and stackLevel whose
  validFrom/validTo overlap may not coexist (K01.FR.06), so they need different levels.
- OCPP 1.6: a profile replaces any other of the same stackLevel and purpose (and connector), whatever its validity,
  so every two profiles held at the same time need different levels.

`place` gives each entry, in receipt order, the level nearest its preferred one (the priority band of
docs/mappings.md) among those that (a) put it above every worse directive and below every better one whose window
overlaps its own and that the station still holds when it is sent, and (b) differ from the levels it may not
share. A level depends only on the entries received before it, so it never changes when later directives arrive
or earlier ones end: reconciliation on reconnect finds the profiles the station holds unchanged and re-sends
nothing. With enough levels the highest level in force at any instant is the arbitration winner (property tests
in tests/schedule/test_stacking.py).

When the station has too few levels for (a) and (b), (b) wins: the entry takes the free level nearest its preferred
one and is listed `unordered` (both profiles are held, but where their windows overlap the station may apply the
wrong one). When every level is taken, the entry is deferred: sent when a level frees (`place`). Only an entry
that never finds a free level before it ends gets None.

A limit profile may run on past its end (or cancel) as its restore ramp, replaced in place at the same level
(gateway/restorer.py): `Entry.ramp` extends how long it is held and valid, and its window for the arbitration
order, so no later profile shares its level while the ramp may run and the ramp keeps its curtailment's rank.

Pure: no I/O, no clock. Defaults are not placed here: they sit at level 0, below every time-bounded profile.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Entry:
    """One directive's profile of one purpose on one EVSE of a station.

    `sequence` orders receipt (higher = more recent, as arbitration's tie-break); `sent` is when the station is first
    told (the directive's receipt), `gone` when it stopped holding it early (cancelled; None while wanted).
    `bounded` says whether the profile carries validFrom/validTo (time-bounded 2.x profiles do); an unbounded one
    counts as valid at every instant for K01.FR.06. `preferred` is the level the priority band gives.
    """

    key: str
    priority: int
    sequence: int
    sent: datetime
    start: datetime
    end: datetime | None
    preferred: int
    gone: datetime | None = None
    bounded: bool = True
    #: How long past its end (or cancel) the station may still hold the profile as its restore ramp
    #: (gateway/schedule/restore.py `ramp_reach`): the profile keeps its level, so the level stays taken.
    ramp: timedelta = timedelta(0)

    @property
    def held_until(self) -> datetime | None:
        """When the station stops needing the profile: its window ends or it was cancelled, plus its ramp (None:
        never)."""
        if self.end is None:
            return None if self.gone is None else self.gone + self.ramp
        return (self.end if self.gone is None else min(self.end, self.gone)) + self.ramp

    @property
    def reach(self) -> datetime | None:
        """The end of its window extended by its ramp: how long it can be in force at its level (None: open)."""
        return None if self.end is None else self.end + self.ramp

    def rank(self) -> tuple[int, int]:
        """Arbitration order: lower is better (best priority, then most recent)."""
        return (self.priority, -self.sequence)


def _overlap(a_from: datetime | None, a_to: datetime | None, b_from: datetime | None, b_to: datetime | None) -> bool:
    """Whether [a_from, a_to) and [b_from, b_to) intersect; None is an open bound."""
    return (a_to is None or b_from is None or b_from < a_to) and (b_to is None or a_from is None or a_from < b_to)


def _windows_overlap(a: Entry, b: Entry) -> bool:
    """Whether the two can be in force at one instant (a ramp counts as its curtailment, with its rank)."""
    return _overlap(a.start, a.reach, b.start, b.reach)


def _validity_overlap(a: Entry, b: Entry) -> bool:
    if not (a.bounded and b.bounded):
        return True
    return _windows_overlap(a, b)


def _held_together(a: Entry, b: Entry) -> bool:
    """Whether the station holds both at some instant (each from when it is sent until it is no longer needed).

    Closed at both ends: one cancelled at the very instant another is sent may have gone after it (the gateway
    supersedes an older directive right after sending the newer one), and a placement made while the older was
    live must come out the same when replayed after it ended."""
    a_to, b_to = a.held_until, b.held_until
    return (a_to is None or b.sent <= a_to) and (b_to is None or a.sent <= b_to)


@dataclass(frozen=True, slots=True)
class Placement:
    """Entry key -> stackLevel in 1..ceiling (None: never a free level), the keys placed without the arbitration
    order against some overlapping neighbour, and the keys that may only be sent later (when a level frees)."""

    levels: dict[str, int | None]
    unordered: frozenset[str]
    deferred: dict[str, datetime]


#: A level frees just after the profile holding it is no longer needed (held-together is closed at both ends).
AFTER = timedelta(seconds=1)


def _fit(
    entry: Entry, placed: list[tuple[Entry, int]], ceiling: int, replaces_on_level: bool
) -> tuple[int, bool] | None:
    """The level for `entry` among those placed, and whether it had to give up the arbitration order."""
    low, high, taken = 0, ceiling + 1, set()
    for other, level in placed:
        if not _held_together(entry, other):
            continue
        if replaces_on_level or _validity_overlap(entry, other):
            taken.add(level)
        if _windows_overlap(entry, other):
            if other.rank() < entry.rank():
                high = min(high, level)
            else:
                low = max(low, level)
    ordered = True
    free = [level for level in range(low + 1, high) if level not in taken]
    if not free:
        ordered = False
        free = [level for level in range(1, ceiling + 1) if level not in taken]
        if not free:
            return None
    return min(free, key=lambda level: (abs(level - entry.preferred), -level)), ordered


def place(entries: Iterable[Entry], *, ceiling: int, replaces_on_level: bool) -> Placement:
    """Levels for `entries` by the rules above. `replaces_on_level` is True for OCPP 1.6 (same level and purpose
    replace whatever the validity).

    An entry for which every level is taken when it is received waits for the first instant a level frees (just
    after a profile holding one is no longer needed) and is placed as if sent then: `deferred` says when. An
    event's consecutive intervals sent ahead to a 1.6 station with C levels: interval k > C waits for interval k - C
    to end, which is before interval k starts.
    """
    placed: list[tuple[Entry, int]] = []
    levels: dict[str, int | None] = {}
    unordered: set[str] = set()
    deferred: dict[str, datetime] = {}
    for entry in sorted(entries, key=lambda e: e.sequence):
        frees = sorted({h + AFTER for other, _ in placed if (h := other.held_until) is not None and h >= entry.sent})
        levels[entry.key] = None
        for at in (entry.sent, *frees):
            end = entry.held_until
            if end is not None and at > end:
                break  # nothing of it is left to hold
            trial = entry if at == entry.sent else replace(entry, sent=at)
            fit = _fit(trial, placed, ceiling, replaces_on_level)
            if fit is None:
                continue
            level, ordered = fit
            levels[entry.key] = level
            placed.append((trial, level))
            if not ordered:
                unordered.add(entry.key)
            if at != entry.sent:
                deferred[entry.key] = at
            break
    return Placement(levels, frozenset(unordered), deferred)


def relevant(entries: Iterable[Entry], *, live: Collection[str], now: datetime) -> list[Entry]:
    """The entries whose levels matter at `now` (the keys in `live`, and those the station may still hold: a ramp
    may still go out at its level), and, repeatedly, those held until the receipt of one already included (they
    decided its level). `place` gives the included ones the levels it gives them among all `entries`; the rest
    never shared a level with them, so placing only these saves the work."""
    pending = list(entries)
    keep = [e for e in pending if e.key in live or (h := e.held_until) is None or h >= now]
    kept = {e.key for e in keep}
    pending = [e for e in pending if e.key not in kept]
    horizon = min((e.sent for e in keep), default=None)
    while horizon is not None and pending:
        more = [e for e in pending if (h := e.held_until) is None or h >= horizon]
        if not more:
            break
        keep += more
        kept |= {e.key for e in more}
        pending = [e for e in pending if e.key not in kept]
        horizon = min(horizon, *(e.sent for e in more))
    return keep
