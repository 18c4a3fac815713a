"""Store.outcomes reuses what it saved last instead of decoding it again, and never returns a stale outcome: a row
changed since (by another writer) is read from the file."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import CommandOutcome, Directive, DirectiveState, OutcomeStatus, StationOutcome
from gateway.store import STATION_BLOCK_BITS, Store
from mappings.restore_profiles import RESTORE_NOTE
from mappings.units import timestamp

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _outcome(directive_id: str, station_id: str, status: OutcomeStatus) -> StationOutcome:
    command = CommandOutcome(
        action="SetDERControl", message_id=f"m-{station_id}", controls=["freq_droop"], status=status
    )
    return StationOutcome(
        directive_id=directive_id, station_id=station_id, status=status, commands=[command], updated=NOW
    )


def _ramped(directive_id: str, station_id: str, until: datetime) -> StationOutcome:
    """An outcome whose command notes a restore ramp ending at `until`."""
    ramp = CommandOutcome(
        action="SetChargingProfile",
        message_id=f"r-{station_id}",
        controls=["import_limit_w"],
        status=OutcomeStatus.ACCEPTED,
        detail=f"{RESTORE_NOTE} {timestamp(NOW)} until {timestamp(until)}",
    )
    return StationOutcome(
        directive_id=directive_id, station_id=station_id, status=OutcomeStatus.ACCEPTED, commands=[ramp], updated=NOW
    )


def _store(tmp_path: Path, *ids: str) -> Store:
    store = Store(tmp_path / "state.db")
    for did in ids:
        store.add_directive(Directive.model_validate({**SAMPLE_DIRECTIVE, "id": did}), DirectiveState.RECEIVED, NOW)
    return store


def test_outcomes_read_back_are_the_ones_saved(tmp_path: Path) -> None:
    store = _store(tmp_path, "d1")
    saved = [_outcome("d1", "S2", OutcomeStatus.ACCEPTED), _outcome("d1", "S1", OutcomeStatus.REJECTED)]
    store.save_outcomes(saved, NOW)
    read = store.outcomes("d1")
    assert read == sorted(saved, key=lambda o: o.station_id)
    decoded = [StationOutcome.model_validate_json(o.model_dump_json()) for o in read]
    assert read == decoded


def test_a_row_changed_by_another_writer_is_read_from_the_file(tmp_path: Path) -> None:
    store = _store(tmp_path, "d1")
    store.save_outcomes([_outcome("d1", "S1", OutcomeStatus.PENDING), _outcome("d1", "S2", OutcomeStatus.PENDING)], NOW)
    changed = _outcome("d1", "S1", OutcomeStatus.ACCEPTED)
    with contextlib.closing(sqlite3.connect(store.path)) as other, other:
        other.execute(
            "UPDATE outcomes SET status=?, body=? WHERE directive_id='d1' AND station_id='S1'",
            (changed.status.value, changed.model_dump_json()),
        )
    assert [o.status for o in store.outcomes("d1")] == [OutcomeStatus.ACCEPTED, OutcomeStatus.PENDING]


def test_outcomes_of_an_earlier_directive_are_decoded_alike(tmp_path: Path) -> None:
    store = _store(tmp_path, "d1", "d2")
    first = [_outcome("d1", "S1", OutcomeStatus.ACCEPTED)]
    store.save_outcomes(first, NOW)
    store.save_outcomes([_outcome("d2", "S1", OutcomeStatus.REJECTED)], NOW)  # replaces S1's kept outcome
    assert store.outcomes("d1") == first
    assert store.outcomes("d1")[0] is not first[0]
    assert [o.status for o in store.outcomes("d2")] == [OutcomeStatus.REJECTED]


def test_outcome_counts_count_stations_per_stored_status(tmp_path: Path) -> None:
    store = _store(tmp_path, "d1")
    statuses = [OutcomeStatus.ACCEPTED, OutcomeStatus.ACCEPTED, OutcomeStatus.PARTIAL, OutcomeStatus.OFFLINE]
    store.save_outcomes([_outcome("d1", f"S{i}", s) for i, s in enumerate(statuses)], NOW)
    expected = {OutcomeStatus.ACCEPTED.value: 2, OutcomeStatus.PARTIAL.value: 1, OutcomeStatus.OFFLINE.value: 1}
    assert store.outcome_counts("d1") == expected
    assert store.outcome_counts("d2") == {}


def test_station_outcomes_filter_status_and_an_old_file_loses_the_status_index(tmp_path: Path) -> None:
    """The station index holds no status (a status change leaves it alone); the filter still applies, and a file made
    with the old (station_id, status) index is migrated when opened."""
    store = _store(tmp_path, "d1", "d2")
    store.save_outcomes(
        [_outcome("d1", "S1", OutcomeStatus.PENDING), _outcome("d2", "S1", OutcomeStatus.ACCEPTED)], NOW
    )
    store.save_outcomes(
        [_outcome("d1", "S1", OutcomeStatus.REJECTED), _outcome("d2", "S2", OutcomeStatus.ACCEPTED)], NOW
    )
    assert [o.directive_id for o in store.station_outcomes("S1", ["accepted"])] == ["d2"]
    assert sorted(o.status.value for o in store.station_outcomes("S1", ["accepted", "rejected"])) == [
        "accepted",
        "rejected",
    ]
    assert store.station_outcomes("S1", ["pending"]) == []
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        conn.execute("CREATE INDEX outcomes_station ON outcomes(station_id, status)")
        conn.commit()
    Store(tmp_path / "state.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "outcomes_by_block" in names
    assert "outcomes_station" not in names


def test_a_station_is_found_in_every_block_of_its_history(tmp_path: Path) -> None:
    """Station lookups search each block of the station index: rows written blocks apart (and after a reopen, which
    goes on from the last row's place) are all found, and an outcome updated keeps its place."""
    store = _store(tmp_path, "d1", "bulk", "d2", "d3")
    store.save_outcomes(
        [_outcome("d1", "S1", OutcomeStatus.ACCEPTED), _outcome("d1", "S2", OutcomeStatus.ACCEPTED)], NOW
    )
    bulk = _outcome("bulk", "X", OutcomeStatus.ACCEPTED)
    fleet = (3 << STATION_BLOCK_BITS) - 2  # other stations' rows, up to the third block
    store.save_outcomes([bulk.model_copy(update={"station_id": f"X{i}"}) for i in range(fleet)], NOW)
    store.save_outcomes([_ramped("d2", "S1", NOW + timedelta(minutes=10))], NOW)
    store.close()
    store = Store(tmp_path / "state.db")
    store.save_outcomes([_outcome("d3", "S1", OutcomeStatus.CLEARED), _outcome("d1", "S1", OutcomeStatus.CLEARED)], NOW)
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        places = dict(conn.execute("SELECT directive_id, seq FROM outcomes WHERE station_id = 'S1'"))
    assert places == {"d1": 0, "d2": 3 << STATION_BLOCK_BITS, "d3": (3 << STATION_BLOCK_BITS) + 1}
    found = store.station_outcomes("S1", [s.value for s in OutcomeStatus])
    assert [(o.directive_id, o.status) for o in found] == [
        ("d1", OutcomeStatus.CLEARED),
        ("d2", OutcomeStatus.ACCEPTED),
        ("d3", OutcomeStatus.CLEARED),
    ]
    assert store.has_outcomes("S1", besides=OutcomeStatus.CLEARED)  # d2's, blocks after the first
    assert not store.has_outcomes("S3", besides=OutcomeStatus.CLEARED)
    assert [o.directive_id for o in store.station_ramps("S1", NOW)] == ["d2"]
    assert store.station_ramps("S1", NOW + timedelta(minutes=10)) == []


def test_station_lookups_search_the_block_index(tmp_path: Path) -> None:
    store = _store(tmp_path)
    where, params = store._station_rows("S1")
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        plan = " ".join(
            row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT body FROM outcomes o WHERE {where}", params)
        )
    assert "SEARCH o USING INDEX outcomes_by_block (<expr>=? AND station_id=?)" in plan
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        query = f"EXPLAIN QUERY PLAN SELECT body FROM outcomes o WHERE {where} AND o.ramp_until > ?"
        plan = " ".join(row[3] for row in conn.execute(query, [*params, "2026"]))
    assert "SEARCH o USING INDEX outcomes_by_block (<expr>=? AND station_id=? AND ramp_until>?)" in plan


def test_a_file_with_the_plain_station_index_is_migrated_on_open(tmp_path: Path) -> None:
    """An earlier release's file (no seq or ramp_until column, a plain station index) gains the columns, seq filled in
    the order its rows were written and ramp_until from their notes, and the block index; new rows go after the old
    ones, and a restore ramp noted before is found."""
    store = _store(tmp_path, "d1", "d2")
    store.save_outcomes(
        [_outcome("d1", "S1", OutcomeStatus.ACCEPTED), _ramped("d1", "S2", NOW + timedelta(hours=1))], NOW
    )
    store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        conn.executescript(
            "DROP INDEX outcomes_by_block; ALTER TABLE outcomes DROP COLUMN seq;"
            " ALTER TABLE outcomes DROP COLUMN ramp_until;"
            " CREATE INDEX outcomes_by_station ON outcomes(station_id);"
        )
    store = Store(tmp_path / "state.db")
    store.save_outcomes([_outcome("d2", "S1", OutcomeStatus.REJECTED)], NOW)
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        places = conn.execute("SELECT directive_id, station_id, seq FROM outcomes ORDER BY seq").fetchall()
    assert "outcomes_by_block" in names
    assert "outcomes_by_station" not in names
    assert places == [("d1", "S1", 1), ("d1", "S2", 2), ("d2", "S1", 3)]
    assert [o.directive_id for o in store.station_outcomes("S1", ["accepted", "rejected"])] == ["d1", "d2"]
    assert [o.directive_id for o in store.station_ramps("S2", NOW)] == ["d1"]
    assert store.station_ramps("S1", NOW) == []


def test_outcomes_in_flight_are_read_until_their_answers_are_saved_and_never_written(tmp_path: Path) -> None:
    store = _store(tmp_path, "d1")
    store.save_outcomes(
        [_outcome("d1", "S1", OutcomeStatus.ACCEPTED), _outcome("d1", "S3", OutcomeStatus.ACCEPTED)], NOW
    )
    flying = [_outcome("d1", "S2", OutcomeStatus.PENDING), _outcome("d1", "S3", OutcomeStatus.PENDING)]  # S3 again
    store.hold_in_flight("d1", {o.station_id: o.status for o in flying}, {o.station_id: o for o in flying}.__getitem__)
    assert [(o.station_id, o.status.value) for o in store.outcomes("d1")] == [
        ("S1", "accepted"),
        ("S2", "pending"),
        ("S3", "pending"),
    ]
    assert store.outcome_counts("d1") == {"accepted": 1, "pending": 2}
    assert store.has_outcomes("S2", besides=OutcomeStatus.CLEARED)
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        stored = dict(conn.execute("SELECT station_id, status FROM outcomes WHERE directive_id='d1'"))
    assert stored == {"S1": "accepted", "S3": "accepted"}
    store.save_outcomes(
        [_outcome("d1", "S2", OutcomeStatus.REJECTED), _outcome("d1", "S3", OutcomeStatus.ACCEPTED)], NOW
    )
    assert [(o.station_id, o.status.value) for o in store.outcomes("d1")] == [
        ("S1", "accepted"),
        ("S2", "rejected"),
        ("S3", "accepted"),
    ]
    assert store.outcome_counts("d1") == {"accepted": 2, "rejected": 1}
    store.hold_in_flight("d1", {"S4": OutcomeStatus.PENDING}, lambda sid: _outcome("d1", sid, OutcomeStatus.PENDING))
    reopened = Store(tmp_path / "state.db")  # as after a crash: what was in flight is gone (the audit has it as sent)
    assert {o.station_id for o in reopened.outcomes("d1")} == {"S1", "S2", "S3"}
    assert "S4" in {o.station_id for o in store.outcomes("d1")}
    reopened.close()


def test_one_stations_outcome_is_read_by_its_key(tmp_path: Path) -> None:
    """Store.outcome: the same answers as picking the station out of Store.outcomes (in flight first, then what was
    saved, a row changed by another writer decoded from the file), without reading the directive's other rows."""
    store = _store(tmp_path, "d1")
    saved = _outcome("d1", "S1", OutcomeStatus.ACCEPTED)
    store.save_outcomes([saved, _outcome("d1", "S2", OutcomeStatus.REJECTED)], NOW)
    assert store.outcome("d1", "S1") is saved
    assert store.outcome("d1", "S3") is None
    assert store.outcome("d2", "S1") is None
    flying = _outcome("d1", "S3", OutcomeStatus.PENDING)
    store.hold_in_flight("d1", {"S3": OutcomeStatus.PENDING}, lambda sid: flying)
    assert store.outcome("d1", "S3") is flying
    changed = _outcome("d1", "S2", OutcomeStatus.ACCEPTED)
    with contextlib.closing(sqlite3.connect(store.path)) as other, other:
        other.execute(
            "UPDATE outcomes SET status=?, body=? WHERE directive_id='d1' AND station_id='S2'",
            (changed.status.value, changed.model_dump_json()),
        )
    assert store.outcome("d1", "S2") == changed
    assert [store.outcome("d1", o.station_id) for o in store.outcomes("d1")] == store.outcomes("d1")
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        where = "directive_id = 'd1' AND station_id = 'S1'"
        plan = " ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT body FROM outcomes WHERE {where}"))
    assert "USING INDEX sqlite_autoindex_outcomes_1 (directive_id=? AND station_id=?)" in plan
