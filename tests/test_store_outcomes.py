"""Store.outcomes reuses what it saved last instead of decoding it again, and never returns a stale outcome: a row
changed since (by another writer) is read from the file."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import CommandOutcome, Directive, DirectiveState, OutcomeStatus, StationOutcome
from gateway.store import Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _outcome(directive_id: str, station_id: str, status: OutcomeStatus) -> StationOutcome:
    command = CommandOutcome(
        action="SetDERControl", message_id=f"m-{station_id}", controls=["freq_droop"], status=status
    )
    return StationOutcome(
        directive_id=directive_id, station_id=station_id, status=status, commands=[command], updated=NOW
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
    assert "outcomes_by_station" in names
    assert "outcomes_station" not in names


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
