"""The audit log: an append-only SQLite table of canonical entries under an RFC 9162 Merkle tree.

Each append is one transaction that inserts the entries, advances the compact Merkle frontier and
rewrites the signed head (the latest tree head, signed with the audit key). With WAL and
``synchronous=FULL`` the transaction is on disk when ``append`` returns, so the runtime may send the
command it records. Every ``checkpoint_every`` entries, and on ``checkpoint()``, the head is also kept
for good in ``audit_checkpoints``. The tables carry an ``audit_`` prefix because the file may be shared
with the gateway's other tables.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.canonical import Memo
from gateway.audit.checkpoint import Checkpoint, Signer
from gateway.audit.entry import AuditEntry, StoredEntry, decode_entry, encode_entry, format_time
from gateway.audit.merkle import Frontier, leaf_hash

__all__ = [
    "SCHEMA",
    "AuditLog",
    "Head",
    "connect",
    "directive_trail",
    "entry_filter",
    "read_checkpoints",
    "read_entries",
    "read_head",
    "read_leaf_hashes",
    "select_entries",
]

#: Entries per block of the station index, as a shift.
STATION_BLOCK_BITS = 14

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_entries (
    seq          INTEGER PRIMARY KEY,   -- Merkle leaf index: 0, 1, 2, ... without gaps
    at           TEXT NOT NULL,         -- the columns up to signal_id index the body; body is authoritative
    kind         TEXT NOT NULL,
    directive_id TEXT,
    station_id   TEXT,
    message_id   TEXT,
    signal_id    TEXT,
    body         BLOB NOT NULL,         -- canonical JSON of the entry: the Merkle leaf data
    leaf_hash    BLOB NOT NULL          -- SHA-256(0x00 || body)
);
CREATE INDEX IF NOT EXISTS audit_entries_at ON audit_entries(at);
CREATE INDEX IF NOT EXISTS audit_entries_directive ON audit_entries(directive_id)
    WHERE directive_id IS NOT NULL;
-- By station within blocks of 2**STATION_BLOCK_BITS entries: a fleet-wide write touches the index pages of the
-- current block only, however long the log (a plain station index took one page per entry as it grew).
CREATE INDEX IF NOT EXISTS audit_entries_station_block ON audit_entries(seq >> {STATION_BLOCK_BITS}, station_id)
    WHERE station_id IS NOT NULL;
DROP INDEX IF EXISTS audit_entries_station;
CREATE INDEX IF NOT EXISTS audit_entries_message ON audit_entries(message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_entries_signal ON audit_entries(signal_id)
    WHERE signal_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    tree_size INTEGER PRIMARY KEY,
    origin    TEXT NOT NULL,
    root      BLOB NOT NULL,
    time      TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 0),
    tree_size INTEGER NOT NULL,
    frontier  BLOB NOT NULL,            -- compact range: roots of the perfect subtrees, left to right
    origin    TEXT,                     -- the signed head; NULL only while the log is empty
    root      BLOB,
    time      TEXT,
    signature BLOB
);
INSERT OR IGNORE INTO audit_head (id, tree_size, frontier) VALUES (0, 0, x'');
-- Guards against accidents by code sharing the file, not against an attacker (verify is for that).
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
    BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
"""

_ENTRY_COLUMNS = "seq, at, kind, directive_id, station_id, message_id, signal_id, body, leaf_hash"
_INSERT_ENTRY = f"INSERT INTO audit_entries ({_ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"


@dataclass(frozen=True, slots=True)
class Head:
    """The ``audit_head`` row: the writer's frontier and the latest signed tree head."""

    frontier: Frontier
    checkpoint: Checkpoint | None


def read_head(conn: sqlite3.Connection) -> Head:
    row = conn.execute(
        "SELECT tree_size, frontier, origin, root, time, signature FROM audit_head WHERE id = 0"
    ).fetchone()
    if row is None:
        raise ValueError("audit_head row is missing")
    size, blob, origin, root, time, signature = row
    signed = None if signature is None else Checkpoint(origin, size, bytes(root), time, bytes(signature))
    return Head(Frontier.from_bytes(size, bytes(blob)), signed)


def read_checkpoints(conn: sqlite3.Connection, upto: int | None = None) -> list[Checkpoint]:
    rows = conn.execute(
        "SELECT origin, tree_size, root, time, signature FROM audit_checkpoints"
        " WHERE tree_size <= ? ORDER BY tree_size",
        (2**63 - 1 if upto is None else upto,),
    )
    return [Checkpoint(o, n, bytes(r), t, bytes(s)) for o, n, r, t, s in rows]


def read_entries(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    """Raw rows (columns as in ``audit_entries``) in sequence order, streamed."""
    return iter(conn.execute(f"SELECT {_ENTRY_COLUMNS} FROM audit_entries ORDER BY seq"))


def read_leaf_hashes(conn: sqlite3.Connection, size: int) -> list[bytes]:
    rows = conn.execute("SELECT leaf_hash FROM audit_entries WHERE seq < ? ORDER BY seq", (size,))
    return [bytes(h) for (h,) in rows]


def connect(db_path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the durability settings."""
    if readonly:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


class AuditLog:
    """Append-only, tamper-evident record of every step the gateway takes.

    Calls block on the disk (one fsync per transaction) and are serialised by a lock, so the runtime
    can call them from a worker thread; batch with ``append_many`` where several steps happen at once.
    """

    def __init__(self, conn: sqlite3.Connection, signer: Signer, origin: str, checkpoint_every: int) -> None:
        self._conn = conn
        self._signer = signer
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        self._frontier = read_head(conn).frontier
        self._before_write: list[Callable[[], None]] = []

    @classmethod
    def open(cls, db_path: Path, key_dir: Path, *, origin: str = "dergw", checkpoint_every: int = 1000) -> AuditLog:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        signer = Signer.load_or_create(key_dir)
        conn = connect(db_path)
        try:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        except BaseException:
            conn.close()
            raise
        return cls(conn, signer, origin, checkpoint_every)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._signer.public_key

    @property
    def size(self) -> int:
        with self._lock:
            return read_head(self._conn).frontier.size

    def append(
        self,
        kind: str,
        data: Mapping[str, Any],
        *,
        at: datetime,
        directive_id: str | None = None,
        station_id: str | None = None,
        message_id: str | None = None,
        signal_id: str | None = None,
    ) -> int:
        """Record one step; it is on disk when this returns. Returns its sequence number."""
        entry = AuditEntry(kind, data, at, directive_id, station_id, message_id, signal_id)
        return self.append_many([entry])[0]

    def before_write(self, hook: Callable[[], None]) -> None:
        """Call `hook` before every append, outside the lock: a group commit (gateway.audit.group) writes what it
        has buffered first, so entries keep their order whoever appends (the API, the runtime)."""
        self._before_write.append(hook)

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Record several steps in one transaction: all or none, on disk when this returns."""
        if not entries:
            return []
        for hook in self._before_write:
            hook()
        with self._lock, self._transaction():
            first = self._frontier.size
            rows = []
            memo: Memo = {}  # the entries of one write often share parts (a fan-out's payload): encoded once
            for offset, entry in enumerate(entries):
                seq = first + offset
                body = encode_entry(seq, entry, memo)
                leaf = leaf_hash(body)
                self._frontier.append(leaf)
                rows.append(
                    (
                        seq,
                        format_time(entry.at),
                        str(entry.kind),
                        entry.directive_id,
                        entry.station_id,
                        entry.message_id,
                        entry.signal_id,
                        body,
                        leaf,
                    )
                )
            self._conn.executemany(_INSERT_ENTRY, rows)
            every = self.checkpoint_every
            self._sign_head(rows[-1][1], keep=self._frontier.size // every > first // every)
        return list(range(first, first + len(entries)))

    def checkpoint(self, now: datetime) -> Checkpoint:
        """Sign the current tree head at ``now`` and keep it (e.g. on a timer and at shutdown).

        There is one checkpoint per tree size: if nothing was appended since the last one, that one
        is returned unchanged.
        """
        with self._lock, self._transaction():
            kept = read_checkpoints(self._conn, upto=self._frontier.size)
            if kept and kept[-1].tree_size == self._frontier.size:
                return kept[-1]
            return self._sign_head(format_time(now), keep=True)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT; on failure roll back and restore the in-memory frontier.

        The frontier is re-read when another process appended since this one last wrote, so two
        writers on one file still produce one gapless tree.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            stored = read_head(self._conn).frontier
            if stored.size != self._frontier.size:
                self._frontier = stored
            saved = self._frontier.copy()
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._frontier = saved
            raise
        self._conn.execute("COMMIT")

    def _sign_head(self, time: str, *, keep: bool) -> Checkpoint:
        frontier = self._frontier
        cp = self._signer.sign(self.origin, frontier.size, frontier.root(), time)
        self._conn.execute(
            "UPDATE audit_head SET tree_size=?, frontier=?, origin=?, root=?, time=?, signature=? WHERE id=0",
            (cp.tree_size, frontier.to_bytes(), cp.origin, cp.root, cp.time, cp.signature),
        )
        if keep:
            self._conn.execute(
                "INSERT INTO audit_checkpoints (tree_size, origin, root, time, signature) VALUES (?,?,?,?,?)",
                (cp.tree_size, cp.origin, cp.root, cp.time, cp.signature),
            )
        return cp

    def query(
        self,
        *,
        directive_id: str | None = None,
        station_id: str | None = None,
        message_id: str | None = None,
        signal_id: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[StoredEntry]:
        """Entries matching every given filter, in sequence order; ``since`` inclusive, ``until`` not."""
        with self._lock:
            return select_entries(
                self._conn,
                directive_id=directive_id,
                station_id=station_id,
                message_id=message_id,
                signal_id=signal_id,
                kind=kind,
                since=since,
                until=until,
                limit=limit,
            )

    def trail(self, directive_id: str) -> list[StoredEntry]:
        """Everything that tells the story of one directive (see ``directive_trail``)."""
        with self._lock:
            return directive_trail(self._conn, directive_id)

    def checkpoints(self) -> list[Checkpoint]:
        with self._lock:
            return read_checkpoints(self._conn)

    def head(self) -> Checkpoint | None:
        """The latest signed tree head (covers every entry), or None for an empty log."""
        with self._lock:
            return read_head(self._conn).checkpoint

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def select_entries(
    conn: sqlite3.Connection,
    *,
    directive_id: str | None = None,
    station_id: str | None = None,
    message_id: str | None = None,
    signal_id: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[StoredEntry]:
    where, params = entry_filter(
        blocks=_station_blocks(conn) if station_id is not None else 0,
        directive_id=directive_id,
        station_id=station_id,
        message_id=message_id,
        signal_id=signal_id,
        kind=kind,
        since=since,
        until=until,
    )
    sql = f"SELECT body FROM audit_entries {where} ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [decode_entry(bytes(body)) for (body,) in conn.execute(sql, params)]


def directive_trail(conn: sqlite3.Connection, directive_id: str) -> list[StoredEntry]:
    """The directive's own entries, the signals they name, and the station answers to its commands.

    Answers are linked by (station_id, message_id) of a ``command.sent``, so the runtime need not
    repeat the directive id on every answer; signals are linked by ``signal_id``.
    """
    own = select_entries(conn, directive_id=directive_id)
    found = {e.seq: e for e in own}
    for signal_id in sorted({e.signal_id for e in own if e.signal_id is not None}):
        found.update((e.seq, e) for e in select_entries(conn, signal_id=signal_id))
    sent = {(e.station_id, e.message_id) for e in own if e.kind == "command.sent" and e.message_id is not None}
    for station_id, message_id in sorted(sent, key=str):
        for e in select_entries(conn, message_id=message_id):
            if e.station_id == station_id:
                found[e.seq] = e
    return [found[seq] for seq in sorted(found)]


def _station_blocks(conn: sqlite3.Connection) -> int:
    last = conn.execute("SELECT max(seq) FROM audit_entries").fetchone()[0]
    return 0 if last is None else (last >> STATION_BLOCK_BITS) + 1


def entry_filter(
    *,
    blocks: int = 0,
    directive_id: str | None = None,
    station_id: str | None = None,
    message_id: str | None = None,
    signal_id: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE clause over the index columns (times compare as fixed-width ISO text). A station is looked up in each
    of the log's `blocks` of entries (the station index's leading key)."""
    clauses: list[str] = []
    params: list[Any] = []
    if station_id is not None:
        clauses.append(
            f"(seq >> {STATION_BLOCK_BITS}) IN (WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b"
            " WHERE n + 1 < ?) SELECT n FROM b)"
        )
        params.append(blocks)
    for column, value in (
        ("directive_id", directive_id),
        ("station_id", station_id),
        ("message_id", message_id),
        ("signal_id", signal_id),
        ("kind", kind),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        clauses.append("at >= ?")
        params.append(format_time(since))
    if until is not None:
        clauses.append("at < ?")
        params.append(format_time(until))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
