"""The SQLite audit log: gapless appends, canonical bodies, signed heads, queries and durability."""

import math
import sqlite3
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditEntry, AuditLog, Kind
from gateway.audit.canonical import canonical_bytes
from gateway.audit.checkpoint import KEY_FILE, PUBLIC_KEY_FILE, CheckpointError, load_public_key
from gateway.audit.entry import EntryError, decode_entry
from gateway.audit.merkle import MerkleTree, leaf_hash
from gateway.audit.verify import verify_db
from tests.audit.conftest import T0, directive_story, fill


def test_sequence_numbers_start_at_zero_and_have_no_gaps(log: AuditLog) -> None:
    assert log.append("config.changed", {"key": "fleet.max_w", "value": 1e6}, at=T0) == 0
    assert log.append_many(directive_story("D1", ["CS1", "CS2"], T0)) == list(range(1, 8))
    assert log.append_many([]) == []
    assert log.append(Kind.OPERATOR_ACTION, {"user": "ops"}, at=T0) == 8
    assert log.size == 9
    assert [e.seq for e in log.query()] == list(range(9))


def test_bodies_are_canonical_and_carry_every_field(log: AuditLog) -> None:
    at = datetime.fromisoformat("2025-06-01T14:00:00.123456+02:00")
    seq = log.append("station.answer", {"status": "Accepted", "w": 7400.0}, at=at, station_id="CS1", message_id="m1")
    (entry,) = log.query()
    assert entry.body == canonical_bytes(
        {
            "v": 1,
            "seq": seq,
            "at": "2025-06-01T12:00:00.123Z",
            "kind": "station.answer",
            "data": {"status": "Accepted", "w": 7400},
            "directive_id": None,
            "station_id": "CS1",
            "message_id": "m1",
            "signal_id": None,
        }
    )
    assert decode_entry(entry.body) == entry


@pytest.mark.parametrize(
    "bad",
    [
        AuditEntry("no.such.kind", {}, T0),
        AuditEntry(Kind.COMMAND_SENT, {"limit": math.nan}, T0),
        AuditEntry(Kind.COMMAND_SENT, {}, T0.replace(tzinfo=None)),
        AuditEntry(Kind.COMMAND_SENT, {"when": T0}, T0),
    ],
)
def test_bad_entries_are_refused_and_leave_nothing_behind(log: AuditLog, keys: Path, db: Path, bad: AuditEntry) -> None:
    log.append("config.changed", {}, at=T0)
    with pytest.raises(EntryError):
        log.append_many([AuditEntry(Kind.OPERATOR_ACTION, {}, T0), bad])
    assert log.append("config.changed", {}, at=T0) == 1
    assert verify_db(db, load_public_key(keys)).ok


def test_head_is_signed_on_every_append_and_checkpoints_kept_every_n(log: AuditLog, keys: Path) -> None:
    key = load_public_key(keys)
    for i in range(25):
        log.append("operator.action", {"i": i}, at=T0)
        head = log.head()
        assert head is not None
        assert head.tree_size == i + 1
        assert head.verify(key)
    assert [cp.tree_size for cp in log.checkpoints()] == [10, 20]
    log.append_many([AuditEntry(Kind.OPERATOR_ACTION, {}, T0)] * 30)  # crosses 30, 40 and 50: one checkpoint
    assert [cp.tree_size for cp in log.checkpoints()] == [10, 20, 55]
    assert log.checkpoint(T0 + timedelta(hours=1)) == log.checkpoints()[-1]  # nothing new: same checkpoint
    log.append("operator.action", {}, at=T0)
    cp = log.checkpoint(T0 + timedelta(hours=1))
    assert (cp.tree_size, cp.time) == (56, "2025-06-01T13:00:00.000Z")
    assert cp.root == MerkleTree([leaf_hash(e.body) for e in log.query()]).root()
    assert log.checkpoints()[-1] == cp == log.head()


def test_queries_filter_by_directive_station_kind_message_and_time(log: AuditLog) -> None:
    fill(log, 4)
    assert {e.directive_id for e in log.query(directive_id="D2")} == {"D2"}
    assert {e.station_id for e in log.query(station_id="CS1")} == {"CS1"}
    assert {e.kind for e in log.query(kind="command.sent")} == {"command.sent"}
    assert len(log.query(message_id="D1-CS1-m")) == 2
    window = log.query(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert {e.directive_id for e in window if e.directive_id} == {"D1", "D2"}
    assert [e.seq for e in log.query(limit=3)] == [0, 1, 2]


def test_trail_follows_signals_and_station_answers(log: AuditLog) -> None:
    fill(log, 3)
    trail = log.trail("D1")
    kinds = [e.kind for e in trail]
    assert kinds.count("signal.received") == 1
    assert kinds.count("station.answer") == 2
    assert {e.message_id for e in trail if e.kind == "station.answer"} <= {
        e.message_id for e in trail if e.kind == "command.sent"
    }
    assert [e.seq for e in trail] == sorted(e.seq for e in trail)


def test_key_is_created_private_and_reused(db: Path, keys: Path) -> None:
    with AuditLog.open(db, keys) as first:
        key = first.public_key
    assert stat.S_IMODE((keys / KEY_FILE).stat().st_mode) == 0o600
    assert load_public_key(keys / PUBLIC_KEY_FILE) == key
    with AuditLog.open(db, keys) as second:
        assert second.public_key == key
    other = keys.parent / "other"
    with AuditLog.open(db, other):
        pass
    (keys / PUBLIC_KEY_FILE).write_bytes((other / PUBLIC_KEY_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="does not belong"):
        AuditLog.open(db, keys)


def test_durability_settings_and_shared_file(db: Path, keys: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE directives (id TEXT PRIMARY KEY)")
        other.execute("INSERT INTO directives VALUES ('D1')")
    with AuditLog.open(db, keys) as log:
        conn = log._conn
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL: fsync at every commit
        log.append("config.changed", {}, at=T0)
        assert conn.execute("SELECT id FROM directives").fetchall() == [("D1",)]
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit_entries SET kind = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit_entries")


def test_two_writers_on_one_file_keep_one_gapless_tree(db: Path, keys: Path) -> None:
    with AuditLog.open(db, keys) as a, AuditLog.open(db, keys) as b:
        seqs = [
            a.append("operator.action", {"by": "a"}, at=T0),
            b.append("operator.action", {"by": "b"}, at=T0),
        ]
        seqs += a.append_many([AuditEntry(Kind.OPERATOR_ACTION, {"by": "a"}, T0)] * 3)
        seqs.append(b.append("operator.action", {"by": "b"}, at=T0))
    assert seqs == list(range(6))
    assert verify_db(db, load_public_key(keys)).ok
