"""Stack-level placement: the profile a station applies at every instant is the one arbitration puts in force.

The station is simulated with the OCPP rules on the placed profiles: each is stored when sent and replaces another
of the same level (1.6: always; 2.x: where validity overlaps, K01.FR.06) or is cleared when cancelled; at each
instant the station applies the highest level whose schedule covers it (K08 composite schedule). A limit profile
with a restore ramp is replaced in place (same id and level) at its end or cancel by the ramp, which the station
holds until the ramp's reach.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import event, given
from hypothesis import strategies as st

from gateway.schedule import Candidate, in_force
from gateway.schedule.stacking import Entry, Placement, place, relevant
from mappings.units import stack_level

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _minutes(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


@st.composite
def entries(draw: st.DrawFn, *, one_priority: bool = False, ramps: bool = False) -> list[Entry]:
    count = draw(st.integers(1, 8))
    sent = 0
    out = []
    priority = draw(st.integers(0, 12))
    for i in range(count):
        sent += draw(st.integers(0, 30))
        start = sent + draw(st.integers(0, 60))
        end = None if draw(st.integers(0, 5)) == 0 else start + draw(st.integers(1, 60))
        gone = None if draw(st.integers(0, 4)) else sent + draw(st.integers(1, 90))
        p = priority if one_priority else draw(st.integers(0, 12))
        out.append(
            Entry(
                key=f"d{i}",
                priority=p,
                sequence=i,
                sent=_minutes(sent),
                start=_minutes(start),
                end=None if end is None else _minutes(end),
                gone=None if gone is None else _minutes(gone),
                preferred=stack_level(p, False),
                bounded=end is not None,  # as mapped: profiles with a validTo carry validFrom too
                ramp=timedelta(minutes=draw(st.sampled_from([0, 0, 5, 20]))) if ramps else timedelta(0),
            )
        )
    return out


def _as_sent(items: list[Entry], placement: Placement) -> list[Entry]:
    """The entries as the station gets them: deferred ones when their level frees, in the order they go out."""
    out = [replace(e, sent=placement.deferred.get(e.key, e.sent)) for e in items]
    return sorted(out, key=lambda e: (e.sent, e.sequence))


def _station_applies(placed: list[Entry], levels: dict[str, int], at: datetime, *, v16: bool) -> str | None:
    """The entry whose profile the simulated station applies at `at` (`placed` in the order they are sent)."""
    held: list[Entry] = []
    for e in placed:
        if e.sent > at:
            break
        held = [
            h
            for h in held
            if not (levels[h.key] == levels[e.key] and (v16 or _validity_overlap(h, e)))  # replaced
        ]
        held.append(e)
    held = [h for h in held if h.gone is None or at < h.gone]  # cleared on cancel
    covering = [h for h in held if h.start <= at and (h.end is None or at < h.end)]
    return max(covering, key=lambda h: levels[h.key]).key if covering else None


def _validity_overlap(a: Entry, b: Entry) -> bool:
    if not (a.bounded and b.bounded):
        return True
    assert a.reach is not None
    assert b.reach is not None
    return a.start < b.reach and b.start < a.reach  # a ramp's validTo is its reach


def _arbitration(items: list[Entry], at: datetime) -> str | None:
    """What in_force says among the directives received by `at` and not cancelled."""
    candidates = [
        Candidate(e.key, e.priority, e.sequence, frozenset({"limit"}), start=e.start, end=e.end)
        for e in items
        if e.sent <= at and (e.gone is None or at < e.gone)
    ]
    return in_force(candidates, at).get("limit")


def _instants(items: list[Entry]) -> set[datetime]:
    """Every instant where something changes: between two of them nothing does."""
    found: set[datetime] = set()
    for e in items:
        found.update(t for t in (e.sent, e.start, e.end, e.gone) if t is not None)
    return found


def _check(items: list[Entry], placement: Placement, *, v16: bool) -> None:
    """At every instant, except while a deferred entry waits for its level, the station applies what arbitration
    says."""
    placed = {k: v for k, v in placement.levels.items() if v is not None}
    if len(placed) < len(items) or placement.unordered:
        event("too few levels for some entry")
        return
    sent = _as_sent(items, placement)
    for at in _instants(sent) | _instants(items):
        if any(e.sent <= at < placement.deferred.get(e.key, e.sent) for e in items):
            continue
        assert _station_applies(sent, placed, at, v16=v16) == _arbitration(items, at), at


def _held_at(items: list[Entry], levels: dict[str, int], at: datetime, *, v16: bool) -> set[str]:
    """The keys the simulated station holds at `at` (stored and not replaced since; `items` in sending order)."""
    held: list[Entry] = []
    for e in items:
        if e.sent > at:
            break
        held = [h for h in held if not (levels[h.key] == levels[e.key] and (v16 or _validity_overlap(h, e)))]
        held.append(e)
    return {h.key for h in held}


@given(entries(), st.booleans())
def test_the_station_applies_what_arbitration_puts_in_force(items: list[Entry], v16: bool) -> None:
    placement = place(items, ceiling=40, replaces_on_level=v16)
    _check(items, placement, v16=v16)
    assert all(v is None or 1 <= v <= 40 for v in placement.levels.values())


@given(entries(ramps=True), st.booleans(), st.integers(1, 4))
def test_with_few_levels_no_profile_wipes_another(items: list[Entry], v16: bool, ceiling: int) -> None:
    """Too few levels for the arbitration order: profiles still never replace one another (K01.FR.06 on 2.x,
    stackLevel+purpose on 1.6) while a level is free; only entries that found every level taken get None. A
    profile counts as needed until its restore ramp's reach: no later profile shares its level while the ramp may
    run."""
    placement = place(items, ceiling=ceiling, replaces_on_level=v16)
    levels = {k: v for k, v in placement.levels.items() if v is not None}
    placed = [e for e in _as_sent(items, placement) if e.key in levels]
    for at in _instants(placed):
        needed = {e.key for e in placed if e.sent <= at and (e.held_until is None or at < e.held_until)}
        assert needed <= _held_at(placed, levels, at, v16=v16), at


@given(entries(one_priority=True), st.booleans())
def test_one_priority_always_fits_with_enough_levels(items: list[Entry], v16: bool) -> None:
    """An event's intervals (one priority): n entries always fit in preferred + n - 1 levels."""
    ceiling = items[0].preferred + len(items) - 1
    placement = place(items, ceiling=ceiling, replaces_on_level=v16)
    assert None not in placement.levels.values()
    assert not placement.unordered
    _check(items, placement, v16=v16)


@given(entries(ramps=True), st.booleans(), st.integers(1, 3))
def test_a_level_never_changes_when_later_directives_arrive(items: list[Entry], v16: bool, keep: int) -> None:
    """Stable: what was placed before a directive arrived keeps its level (reconciliation finds it held)."""
    before = place(items[:keep], ceiling=40, replaces_on_level=v16).levels
    after = place(items, ceiling=40, replaces_on_level=v16).levels
    assert {k: after[k] for k in before} == before


def _ramping(e: Entry, at: datetime) -> bool:
    """Whether `e`'s restore ramp holds the station at `at`: past its end or cancel (if it had begun), within reach."""
    ended = e.end if e.gone is None else e.gone if e.end is None else min(e.end, e.gone)
    until = e.held_until
    return ended is not None and e.start < ended <= at and until is not None and at < until


@given(entries(ramps=True), st.booleans())
def test_a_ramp_keeps_its_curtailments_level_and_rank(items: list[Entry], v16: bool) -> None:
    """A ramp sits at its curtailment's level with its rank: at every instant the station applies the best-ranked
    (arbitration order) of the directives in force and the ramps running, and no ramp is wiped by a directive that
    came after its curtailment ended (K01.FR.06 / 1.6 replace rule)."""
    placement = place(items, ceiling=40, replaces_on_level=v16)
    if placement.unordered or None in placement.levels.values():
        event("too few levels for some entry")
        return
    levels = {k: v for k, v in placement.levels.items() if v is not None}
    sent = _as_sent(items, placement)
    for at in _instants(sent) | {t for e in items if (t := e.held_until) is not None}:
        if any(e.sent <= at < placement.deferred.get(e.key, e.sent) for e in items):
            continue
        held = _held_at(sent, levels, at, v16=v16)
        live = [e for e in sent if e.sent <= at and (e.gone is None or at < e.gone) and e.start <= at]
        live = [e for e in live if e.end is None or at < e.end]
        ramping = [e for e in sent if e.sent <= at and _ramping(e, at)]
        assert {e.key for e in live + ramping} <= held, at  # nothing it needs was replaced
        covering = live + ramping
        applied = max(covering, key=lambda e: levels[e.key]).key if covering else None
        best = min(covering, key=lambda e: e.rank()).key if covering else None
        assert applied == best, at


@given(entries(ramps=True), st.booleans(), st.integers(1, 8), st.integers(0, 300), st.data())
def test_placing_only_the_relevant_entries_gives_them_the_same_levels(
    items: list[Entry], v16: bool, ceiling: int, minute: int, data: st.DataObject
) -> None:
    """What matters at a moment (live directives, profiles still held, ramps that may still run) and what decided
    their levels gets the levels, deferrals and order flags placing everything gives."""
    live = data.draw(st.sets(st.sampled_from([e.key for e in items])))
    now = _minutes(minute)
    kept = relevant(items, live=live, now=now)
    keys = {e.key for e in kept}
    assert live <= keys
    assert {e.key for e in items if e.held_until is None or e.held_until >= now} <= keys
    every = place(items, ceiling=ceiling, replaces_on_level=v16)
    some = place(kept, ceiling=ceiling, replaces_on_level=v16)
    assert some.levels == {k: every.levels[k] for k in keys}
    assert some.deferred == {k: t for k, t in every.deferred.items() if k in keys}
    assert some.unordered == every.unordered & keys


def test_a_directive_after_a_curtailment_ended_keeps_off_its_ramps_level() -> None:
    """2.x: the curtailment 12:10-12:20 holds level 3 with its ramp until 12:35; a directive of the same priority
    received at 12:21 for 12:25-12:40 would share level 3 (no overlap with 12:10-12:20), but the ramp's validity
    runs to 12:35 (K01.FR.06): it goes above, as the more recent."""
    curtailment = Entry("c", 5, 1, T0, _minutes(10), _minutes(20), preferred=3, ramp=timedelta(minutes=15))
    later = Entry("n", 5, 2, _minutes(21), _minutes(25), _minutes(40), preferred=3)
    assert place([curtailment, later], ceiling=8, replaces_on_level=False).levels == {"c": 3, "n": 4}
    without = replace(curtailment, ramp=timedelta(0))
    assert place([without, later], ceiling=8, replaces_on_level=False).levels == {"c": 3, "n": 3}
    worse = Entry("w", 8, 2, _minutes(21), _minutes(25), _minutes(40), preferred=1)
    assert place([curtailment, worse], ceiling=8, replaces_on_level=True).levels == {"c": 3, "w": 1}


def test_consecutive_intervals_get_distinct_levels_on_16_only() -> None:
    """Two consecutive intervals sent ahead: 1.6 would replace one with the other on a shared level; 2.x keeps them
    side by side on one level because their validity does not overlap (K01.FR.06)."""
    first = Entry("i1", 5, 1, T0, _minutes(10), _minutes(20), preferred=5)
    second = Entry("i2", 5, 2, T0, _minutes(20), _minutes(30), preferred=5)
    assert place([first, second], ceiling=8, replaces_on_level=False).levels == {"i1": 5, "i2": 5}
    levels16 = place([first, second], ceiling=8, replaces_on_level=True).levels
    assert levels16["i1"] == 5
    assert levels16["i2"] not in (None, 5)


def test_the_more_recent_of_two_overlapping_equal_priorities_goes_above() -> None:
    older = Entry("a", 5, 1, T0, _minutes(10), _minutes(40), preferred=5)
    newer = Entry("b", 5, 2, _minutes(1), _minutes(20), _minutes(30), preferred=5)
    worse = Entry("c", 7, 3, _minutes(2), _minutes(0), _minutes(60), preferred=3)
    placement = place([older, newer, worse], ceiling=8, replaces_on_level=False)
    assert placement.levels == {"a": 5, "b": 6, "c": 3}
    assert not placement.unordered


def test_at_the_top_level_a_newer_overlapping_one_is_held_beside_unordered() -> None:
    """Priority 0 sits at the ceiling: a newer overlapping priority-0 directive has no level above it. It goes to the
    nearest free level (held beside, not replacing: K01.FR.06) and is reported unordered."""
    older = Entry("a", 0, 1, T0, _minutes(10), _minutes(40), preferred=8)
    newer = Entry("b", 0, 2, T0, _minutes(20), _minutes(30), preferred=8)
    placement = place([older, newer], ceiling=8, replaces_on_level=False)
    assert placement.levels == {"a": 8, "b": 7}
    assert placement.unordered == {"b"}


@given(st.lists(st.integers(1, 90), min_size=1, max_size=20), st.integers(2, 8), st.integers(0, 30))
def test_an_event_with_more_intervals_than_levels_still_applies_every_interval_on_16(
    minutes: list[int], ceiling: int, lead: int
) -> None:
    """OCPP 1.6, an event's consecutive intervals all sent ahead, more of them than levels: those that find every
    level taken wait until one frees, which is always before they start; the station applies each in turn."""
    items, start = [], lead
    for i, length in enumerate(minutes):
        items.append(Entry(f"i{i}", 5, i, T0, _minutes(start), _minutes(start + length), preferred=3))
        start += length
    placement = place(items, ceiling=ceiling, replaces_on_level=True)
    assert None not in placement.levels.values()
    assert not placement.unordered
    assert all(placement.deferred[e.key] <= e.start for e in items if e.key in placement.deferred)
    assert len(placement.deferred) == max(0, len(items) - ceiling)
    _check(items, placement, v16=True)
