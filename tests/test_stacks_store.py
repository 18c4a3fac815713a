"""The store reads only the directives stack-level placement needs (`Store.stacking_directives`), on a real SQLite
file: placing every station's profiles from that narrowed set gives each of them exactly the level placing every
stored directive gives, restore ramps holding levels past their directives' ends included (Hypothesis, over random
histories of live, completed, cancelled, superseded and failed directives, defaults, randomized ones and owed
clears), and the snapshot the store keeps follows every write."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model import Directive, DirectiveState, OcppVersion, StationCapabilities, Target
from gateway.restorer import RestoreSettings
from gateway.schedule.restore import LONGEST_REACH, Pace, ramp_reach
from gateway.stacks import Stacks, store_reach
from gateway.store import DirectiveRecord, Store

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
STATIONS = ("S1", "S2", "S3")
LIVE = {DirectiveState.RECEIVED, DirectiveState.SCHEDULED, DirectiveState.ACTIVE}
CAPS = (
    StationCapabilities(version=OcppVersion.V21),
    StationCapabilities(version=OcppVersion.V201, max_stack_level=3),
    StationCapabilities(version=OcppVersion.V16, max_stack_level=2),  # few levels: deferred and unordered ones
)


#: A quick restore pace, so ramps end within the histories drawn (the gateway's own reach is days long).
RESTORE = RestoreSettings(ramp_pct_per_s=1.0, max_delay_s=60.0)
#: How long past its last update an ended directive may hold a level here: its ramp, its randomized end
#: (randomize_start_s up to 600 s below) and its owed clear (up to 10 minutes after it ended).
REACH = ramp_reach(Pace(1.0, "config", 60.0, "config"), 10) + timedelta(seconds=600 + 600)


def aims_at(target: Target, station_id: str) -> bool:
    return station_id in (target.ids or STATIONS)


@st.composite
def history(draw: st.DrawFn) -> tuple[list[tuple[Directive, datetime, DirectiveState, datetime]], list[Any]]:
    """Directives in receipt order: (directive, received, final state, last updated), and clears owed."""
    count = draw(st.integers(1, 9))
    received = sorted(draw(st.lists(st.integers(0, 240), min_size=count, max_size=count)))
    items = []
    for i, minute in enumerate(received):
        at = T0 + timedelta(minutes=minute)
        raw: dict[str, Any] = {"id": f"d{i}", "controls": {"import_limit_w": 1000.0 * (i + 1)}}
        if draw(st.integers(0, 5)) == 0:  # a utility's own (slower) restore pace, or a default's
            raw["controls"]["gradients"] = {
                "ramp_pct_per_s": draw(st.sampled_from([0.2, 2.0])),
                "soft_start_pct_per_s": 0,
            }
        if draw(st.integers(0, 9)) == 0:
            raw["is_default"] = True
        else:
            raw["priority"] = draw(st.integers(1, 3))
            raw["start"] = (at + timedelta(minutes=draw(st.integers(-30, 120)))).isoformat()
            if draw(st.booleans()):
                raw["duration_s"] = draw(st.integers(5, 180)) * 60
            if draw(st.integers(0, 4)) == 0:
                raw["randomize_start_s"] = draw(st.integers(1, 600))
            ids = draw(st.lists(st.sampled_from(STATIONS), min_size=1, max_size=3, unique=True))
            raw["target"] = {"scope": "station", "ids": ids}
        state = draw(st.sampled_from(list(DirectiveState)))
        updated = at + timedelta(minutes=draw(st.integers(0, 300)))
        end = Directive.model_validate(raw).end(at)
        if state is DirectiveState.COMPLETED and end is not None:
            updated = max(updated, end)  # completed once its window is over
        items.append((Directive.model_validate(raw), at, state, updated))
    clears = draw(
        st.lists(
            st.tuples(st.integers(0, count - 1), st.sampled_from(STATIONS), st.integers(0, 10)),
            max_size=4,
            unique_by=lambda c: (c[0], c[1]),
        )
    )  # (directive, station, minutes after it was last updated)
    return items, clears


def fill(store: Store, items: list[tuple[Directive, datetime, DirectiveState, datetime]], clears: list[Any]) -> None:
    for directive, at, state, updated in items:
        store.add_directive(directive, DirectiveState.RECEIVED, at)
        if (state, updated) != (DirectiveState.RECEIVED, at):
            store.set_directive_state(directive.id, state, updated)
    for index, station, minutes in clears:
        store.add_pending_clears(items[index][0].id, [(station, items[index][3] + timedelta(minutes=minutes))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history(), st.integers(0, 600))
def test_placement_from_the_narrowed_set_equals_placement_from_every_directive(
    case: tuple[list[tuple[Directive, datetime, DirectiveState, datetime]], list[Any]], minute: int
) -> None:
    items, clears = case
    now = T0 + timedelta(minutes=minute)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "gw.sqlite")
        try:
            fill(store, items, clears)
            every = store.directives(None, limit=100_000)
            narrowed = store.stacking_directives(now, store_reach(RESTORE), LONGEST_REACH)
            assert [r.number for r in narrowed] == sorted(r.number for r in narrowed)
            numbers = {r.number for r in narrowed}
            assert {r.number for r in every if r.state in LIVE} <= numbers
            # A fixed reach: every ended one still within it is needed too (its ramp's level).
            fixed = store.stacking_directives(now, REACH)
            assert {r.number for r in every if r.state in LIVE or r.updated + REACH >= now} <= {r.number for r in fixed}
            owed = {(did, sid): due for did, sid, due in store.pending_clears()}
            full, loaded = Stacks(every, aims_at, owed, RESTORE), Stacks(narrowed, aims_at, owed, RESTORE, now)
            for station in STATIONS:
                for caps in CAPS:
                    placed, exact = loaded.levels(station, caps), full.levels(station, caps)
                    assert placed == {key: exact[key] for key in placed}, (station, caps.version)
        finally:
            store.close()


def test_the_snapshot_follows_every_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "gw.sqlite")
    try:
        assert store.stacking_directives(T0) == ()
        old = Directive.model_validate({"id": "old", "start": T0.isoformat(), "duration_s": 600,
                                        "controls": {"import_limit_w": 1000}})  # fmt: skip
        new = Directive.model_validate({"id": "new", "start": T0.isoformat(), "duration_s": 3600,
                                        "controls": {"import_limit_w": 2000}})  # fmt: skip
        store.add_directive(old, DirectiveState.SCHEDULED, T0)
        assert [r.directive.id for r in store.stacking_directives(T0)] == ["old"]
        assert store.stacking_directives(T0) is store.stacking_directives(T0)  # one snapshot until something changes
        store.set_directive_state("old", DirectiveState.COMPLETED, T0 + timedelta(minutes=10))
        after = T0 + timedelta(minutes=11)
        assert store.stacking_directives(after) == ()  # nothing live, no ramp: nothing ended shares a level
        ramp = timedelta(minutes=5)  # its restore ramp may run until 12:15: its level is still needed
        assert [r.directive.id for r in store.stacking_directives(after, ramp)] == ["old"]
        kept = store.stacking_directives(after, ramp)
        assert store.stacking_directives(after + ramp, ramp) is kept  # later needs a subset: the snapshot is kept
        store.add_directive(new, DirectiveState.RECEIVED, T0 + timedelta(minutes=5))
        assert [r.directive.id for r in store.stacking_directives(T0)] == ["old", "new"]  # ended after "new" came
        store.replace_directive(
            new.model_copy(update={"priority": 1}), DirectiveState.ACTIVE, T0 + timedelta(minutes=6)
        )
        [_, record] = store.stacking_directives(T0)
        assert (record.directive.priority, record.state) == (1, DirectiveState.ACTIVE)
        store.add_pending_clears("new", [("S1", T0 + timedelta(minutes=20))])
        assert store.pending_clears() == [("new", "S1", T0 + timedelta(minutes=20))]
        store.drop_pending_clear("new", "S1")
        assert store.pending_clears() == []
        store.set_directive_state("new", DirectiveState.CANCELLED, T0 + timedelta(minutes=30))
        assert store.stacking_directives(T0 + timedelta(minutes=31)) == ()
    finally:
        store.close()


def test_an_older_file_gains_the_state_index_on_open(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"
    Store(path).close()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX directives_state")
    store = Store(path)
    try:
        plan = store._db.execute(
            "EXPLAIN QUERY PLAN SELECT number FROM directives WHERE state IN ('received', 'active')"
        ).fetchall()
        assert any("directives_state" in str(row) for row in plan)
    finally:
        store.close()


def test_an_ended_directive_with_a_slow_ramp_of_its_own_stays_in_the_snapshot(tmp_path: Path) -> None:
    """A curtailment with its own slow restore pace (2030.5 setGradW 0.2 %/s: a 500 s ramp after up to 60 s of
    delay) ended at 12:10: at 12:25 its ramp may still run, so it is still needed (its ramp goes out at its level,
    and later profiles keep off that level), while at the configured pace (1 %/s) it would have lapsed by 12:15."""
    store = Store(tmp_path / "gw.sqlite")
    try:
        slow = Directive.model_validate({"id": "slow", "start": T0.isoformat(), "duration_s": 600, "controls": {
            "import_limit_w": 1000, "gradients": {"ramp_pct_per_s": 0.2, "soft_start_pct_per_s": 0}}})  # fmt: skip
        plain = slow.model_copy(
            update={"id": "plain", "controls": slow.controls.model_copy(update={"gradients": None})}
        )
        now = T0 + timedelta(minutes=15)
        store.add_directive(plain, DirectiveState.ACTIVE, T0)
        store.set_directive_state("plain", DirectiveState.COMPLETED, T0 + timedelta(minutes=10))
        assert store.stacking_directives(now, store_reach(RESTORE), LONGEST_REACH) == ()  # its ramp has lapsed
        store.add_directive(slow, DirectiveState.ACTIVE, T0)
        store.set_directive_state("slow", DirectiveState.COMPLETED, T0 + timedelta(minutes=10))
        needed = store.stacking_directives(now, store_reach(RESTORE), LONGEST_REACH)
        assert [r.directive.id for r in needed] == ["plain", "slow"]  # and "plain", held beside it, decided its level
        levels = Stacks.load(store, aims_at, now, RESTORE).levels("S1", CAPS[0])
        assert {number for number, _ in levels} == {1, 2}
    finally:
        store.close()


def test_a_station_owed_a_clear_does_not_share_its_placement_with_one_that_is_not() -> None:
    """Two stations with the same directives and capabilities share one placement, unless a clear is owed to one of
    them: its profile goes at its own time (a randomized cancel), which frees a level there earlier."""
    t5 = T0 + timedelta(minutes=5)
    records = []
    for i in range(3):
        d = Directive.model_validate({"id": f"d{i}", "priority": 1, "start": t5.isoformat(),
                                      "target": {"scope": "station", "ids": ["S1", "S2"]},
                                      "controls": {"import_limit_w": 1000.0 * (i + 1)}})  # fmt: skip
        records.append(DirectiveRecord(i + 1, d, DirectiveState.RECEIVED, t5, t5))
    stacks = Stacks(records, aims_at, {("d0", "S1"): t5}, RESTORE, t5)
    owed, free = stacks.levels("S1", CAPS[2]), stacks.levels("S2", CAPS[2])  # 1.6, 2 levels
    assert free[(3, "ChargePointMaxProfile")].level is None  # both levels held for good: none ever frees
    assert owed[(3, "ChargePointMaxProfile")].deferred is not None  # d0's clear (and its ramp) frees one
