"""SQLite persistence of stations, directives and per-station outcomes (one file, WAL).

Outcomes are written, with the commands planned for them, before anything is sent: after a crash the gateway
knows what it was about to tell each station. synchronous=NORMAL keeps every commit across a process crash; the
audit log (gateway/audit) has its own stricter durability for the compliance record.

The schema has no version table: every table and index is created `IF NOT EXISTS`, so a file from an earlier
release gains new indexes on open (and the outcomes' `seq` and `ramp_until` columns, see `Store._migrate`). One
process owns the file; the snapshots it keeps (`stacking_directives`, `pending_clears`) are dropped by its own
writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.model import (
    Directive,
    DirectiveState,
    OcppVersion,
    OutcomeStatus,
    StationCapabilities,
    StationOutcome,
)
from mappings.restore_profiles import RESTORE_NOTE, noted_until

#: How long past its last update (or owed clear) an ended directive may still hold a stack level, given the live
#: directives (gateway.stacks `store_reach`).
Reach = Callable[["DirectiveRecord", Sequence["DirectiveRecord"]], timedelta]
_LIVE = (DirectiveState.RECEIVED.value, DirectiveState.SCHEDULED.value, DirectiveState.ACTIVE.value)
_ENDED = tuple(s.value for s in DirectiveState if s.value not in _LIVE)
#: Directive numbers fetched per query (below SQLite's smallest limit on bound parameters, 999).
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    id TEXT PRIMARY KEY,
    version TEXT,
    capabilities TEXT,
    boot TEXT,
    connected INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT
);
CREATE TABLE IF NOT EXISTS directives (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    directive_id TEXT NOT NULL REFERENCES directives(id),
    station_id TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    updated TEXT NOT NULL,
    seq INTEGER,  -- the row's place in the order rows were first written (kept when it is updated)
    ramp_until TEXT,  -- the latest end of the restore ramps its commands note (fixed-width UTC), else NULL
    PRIMARY KEY (directive_id, station_id)
);
CREATE INDEX IF NOT EXISTS directives_state ON directives(state);
CREATE TABLE IF NOT EXISTS pending_clears (
    directive_id TEXT NOT NULL REFERENCES directives(id),
    station_id TEXT NOT NULL,
    due TEXT NOT NULL,
    PRIMARY KEY (directive_id, station_id)
);
"""

#: Outcome rows per block of the station index, as a shift.
STATION_BLOCK_BITS = 14

_INDEXES = f"""
-- By block of 2**STATION_BLOCK_BITS rows as written, then station: a fan-out's rows go to the current block's index
-- pages only, however long the history (a plain station index took a page per row once it outgrew the cache, and a
-- fan-out's writes grew with every directive). An outcome updated (its answer, a clear) keeps its place. With the
-- ramp's end, a reconnect finds the restore ramps still running in the index alone, without reading the rows.
CREATE INDEX IF NOT EXISTS outcomes_by_block ON outcomes(seq >> {STATION_BLOCK_BITS}, station_id, ramp_until);
DROP INDEX IF EXISTS outcomes_station_block;
DROP INDEX IF EXISTS outcomes_by_station;
DROP INDEX IF EXISTS outcomes_station;
"""


@dataclass(frozen=True, slots=True)
class DirectiveRecord:
    number: int
    directive: Directive
    state: DirectiveState
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class StationRecord:
    id: str
    version: OcppVersion | None
    capabilities: StationCapabilities | None
    connected: bool
    last_seen: datetime | None


class Store:
    """The gateway's state. Synchronous and short: every call is one small transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._migrate()
        self._db.executescript(_INDEXES)
        #: The next outcome row's seq (see _INDEXES); read from the last block, through the index.
        last = self._db.execute(
            f"SELECT max(seq) FROM outcomes WHERE seq >> {STATION_BLOCK_BITS} = "
            f"(SELECT max(seq >> {STATION_BLOCK_BITS}) FROM outcomes)"
        ).fetchone()[0]
        self._next_seq: int = 0 if last is None else last + 1
        #: Bumped by every write to directives or pending clears: the snapshots below are valid for one value.
        self._generation = 0
        self._live: tuple[int, tuple[DirectiveRecord, ...]] | None = None
        self._stacking: tuple[tuple[int, timedelta | Reach], datetime, tuple[DirectiveRecord, ...]] | None = None
        self._clears: tuple[int, tuple[tuple[str, str, datetime], ...]] | None = None
        #: Per station, the outcome saved last (of whichever directive) with its stored JSON: reading a fan-out's
        #: outcomes back right after it (Dispatcher.wait, the API) reuses them instead of decoding every row again.
        #: Replaced station by station as the next fan-out saves, so the old ones are freed a few at a time.
        self._saved: dict[str, tuple[str, str, StationOutcome]] = {}
        #: Outcomes of commands in flight, by directive and station: planned and recorded in the audit log
        #: (command.sent, on disk before the frame leaves) but not answered yet. Held in memory, not written: the
        #: answer's outcome follows within moments, and after a crash the dispatcher's resume treats a missing
        #: outcome as unanswered. Reads see them until an outcome of the same directive and station is saved. Kept
        #: as (status, maker): the outcome object is made only if something reads it before the answer comes.
        self._in_flight: dict[str, dict[str, tuple[OutcomeStatus, Callable[[str], StationOutcome]]]] = {}

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        """Columns a file of an earlier release lacks: `seq` in the order its rows were written, `ramp_until` from
        the notes in its rows."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outcomes)")}
        if {"seq", "ramp_until"} <= columns:
            return
        with self._transaction():
            if "seq" not in columns:
                self._db.execute("ALTER TABLE outcomes ADD COLUMN seq INTEGER")
                self._db.execute("UPDATE outcomes SET seq = rowid")
            if "ramp_until" not in columns:
                self._db.execute("ALTER TABLE outcomes ADD COLUMN ramp_until TEXT")
                noted = self._db.execute("SELECT rowid, body FROM outcomes WHERE instr(body, ?) > 0", (RESTORE_NOTE,))
                self._db.executemany(
                    "UPDATE outcomes SET ramp_until = ? WHERE rowid = ?",
                    [(_ramp_until(body), rowid) for rowid, body in noted.fetchall()],
                )

    def writable(self) -> bool:
        """Readiness probe: a write transaction can be opened."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            return False
        return True

    # -- stations ----------------------------------------------------------------------------------------------

    def station_connected(self, station_id: str, version: OcppVersion, at: datetime) -> None:
        self._db.execute(
            "INSERT INTO stations(id, version, connected, last_seen) VALUES (?, ?, 1, ?) "
            "ON CONFLICT(id) DO UPDATE SET version=excluded.version, connected=1, last_seen=excluded.last_seen",
            (station_id, version.value, at.isoformat()),
        )

    def station_disconnected(self, station_id: str, at: datetime) -> None:
        self._db.execute("UPDATE stations SET connected=0, last_seen=? WHERE id=?", (at.isoformat(), station_id))

    def station_capabilities(self, station_id: str, caps: StationCapabilities) -> None:
        self._db.execute("UPDATE stations SET capabilities=? WHERE id=?", (caps.model_dump_json(), station_id))

    def station_boot(self, station_id: str, boot: dict[str, object]) -> None:
        self._db.execute("UPDATE stations SET boot=? WHERE id=?", (json.dumps(boot), station_id))

    def mark_all_disconnected(self) -> None:
        """At start-up no station is connected, whatever the last run left behind."""
        self._db.execute("UPDATE stations SET connected=0")

    def stations(self) -> list[StationRecord]:
        rows = self._db.execute("SELECT id, version, capabilities, connected, last_seen FROM stations ORDER BY id")
        return [
            StationRecord(
                id=r[0],
                version=OcppVersion(r[1]) if r[1] else None,
                capabilities=StationCapabilities.model_validate_json(r[2]) if r[2] else None,
                connected=bool(r[3]),
                last_seen=datetime.fromisoformat(r[4]) if r[4] else None,
            )
            for r in rows
        ]

    # -- directives --------------------------------------------------------------------------------------------

    def add_directive(self, directive: Directive, state: DirectiveState, at: datetime) -> int:
        """Persist a new directive; its number (unique, increasing) keys the OCPP ids derived from it."""
        cur = self._db.execute(
            "INSERT INTO directives(id, body, state, created, updated) VALUES (?, ?, ?, ?, ?)",
            (directive.id, directive.model_dump_json(), state.value, at.isoformat(), at.isoformat()),
        )
        self._generation += 1
        number = cur.lastrowid
        assert number is not None
        return number

    def replace_directive(self, directive: Directive, state: DirectiveState, at: datetime) -> None:
        """A changed version of a directive: same id and number (so the same OCPP ids), new body."""
        self._db.execute(
            "UPDATE directives SET body=?, state=?, updated=? WHERE id=?",
            (directive.model_dump_json(), state.value, at.isoformat(), directive.id),
        )
        self._generation += 1

    def set_directive_state(self, directive_id: str, state: DirectiveState, at: datetime) -> None:
        self._db.execute(
            "UPDATE directives SET state=?, updated=? WHERE id=?", (state.value, at.isoformat(), directive_id)
        )
        self._generation += 1

    def directive(self, directive_id: str) -> DirectiveRecord | None:
        row = self._db.execute(
            "SELECT number, body, state, created, updated FROM directives WHERE id=?", (directive_id,)
        ).fetchone()
        return _directive_record(row) if row else None

    def directive_id_of(self, number: int) -> str | None:
        """The id of the directive with `number` (the key of the OCPP ids derived from it)."""
        row = self._db.execute("SELECT id FROM directives WHERE number=?", (number,)).fetchone()
        return None if row is None else str(row[0])

    def last_number(self) -> int:
        """The highest directive number given so far (0 when none): every number up to it is the gateway's."""
        row = self._db.execute("SELECT COALESCE(MAX(number), 0) FROM directives").fetchone()
        return int(row[0])

    def directives(self, states: Iterable[DirectiveState] | None = None, limit: int = 1000) -> list[DirectiveRecord]:
        sql = "SELECT number, body, state, created, updated FROM directives"
        args: list[object] = []
        wanted = [s.value for s in states] if states is not None else None
        if wanted is not None:
            sql += f" WHERE state IN ({','.join('?' * len(wanted))})"
            args.extend(wanted)
        sql += " ORDER BY number DESC LIMIT ?"
        args.append(limit)
        return [_directive_record(r) for r in self._db.execute(sql, args)]

    def live_directives(self) -> tuple[DirectiveRecord, ...]:
        """Every directive not ended (received, scheduled, active), newest first. Read once per change of the
        directives and kept: reconciliation, restore ramps and supersession ask for them per station, and a cancel
        or a reconnect wave asks for every station of the fleet."""
        if self._live is None or self._live[0] != self._generation:
            rows = self._db.execute(
                "SELECT number, body, state, created, updated FROM directives "
                f"WHERE state IN ({','.join('?' * len(_LIVE))}) ORDER BY number DESC",
                _LIVE,
            ).fetchall()
            self._live = (self._generation, tuple(_directive_record(r) for r in rows))
        return self._live[1]

    def stacking_directives(
        self, now: datetime, reach: timedelta | Reach = timedelta(0), longest: timedelta | None = None
    ) -> tuple[DirectiveRecord, ...]:
        """The directives that can share stations' stack levels (gateway.stacks), in number order.

        An ended directive's profile may be held `reach` past its last update or owed clear (its restore ramp, a
        randomized end): a fixed time, or one per directive (given the live ones) at most `longest`. Every live one
        is needed, and every ended one still within its reach at `now` (its ramp may still run, and goes out at its
        level); then every ended one whose reach extends to the receipt of one already needed (it was held
        together with it, so it decided its level), again until none is added. Anything else shares no level with
        them, so placing these gives each of them the level placing every stored directive gives
        (tests/test_stacks_store.py). Only the bodies of ended ones within `longest` of those are parsed. Read once
        per change of the directives and kept (a later `now` needs a subset of it), so the fan-outs and reconnects
        in between share one snapshot instead of reading and parsing every stored directive each.
        """
        cached = self._stacking
        if cached is not None and cached[0] == (self._generation, reach) and cached[1] <= now:
            return cached[2]
        generation, key = self._generation, reach
        if isinstance(reach, timedelta):
            longest, fixed = reach, reach
            reach = lambda _record, _live: fixed  # noqa: E731
        elif longest is None:
            raise ValueError("a reach per directive needs its bound, `longest`")
        live = sorted(self.live_directives(), key=lambda r: r.number)
        owed: dict[str, datetime] = {}
        for did, _, due in self.pending_clears():
            owed[did] = max(due, owed.get(did, due))
        # Times are compared parsed (not as text): a stored offset other than UTC still orders right.
        ended = [  # (number, last update or owed clear)
            (n, max(datetime.fromisoformat(updated), owed.get(did, datetime.fromisoformat(updated))))
            for n, did, updated in self._db.execute(
                f"SELECT number, id, updated FROM directives WHERE state IN ({','.join('?' * len(_ENDED))})", _ENDED
            )
        ]
        parsed: dict[int, DirectiveRecord] = {}

        def within(since: datetime) -> list[DirectiveRecord]:
            """The ended directives whose reach extends to `since` (bodies parsed once, only near enough ones)."""
            numbers = [n for n, last in ended if n not in parsed and last + longest >= since]
            for i in range(0, len(numbers), _CHUNK):
                chunk = numbers[i : i + _CHUNK]
                for r in self._db.execute(
                    "SELECT number, body, state, created, updated FROM directives "
                    f"WHERE number IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall():
                    record = _directive_record(r)
                    parsed[record.number] = record
            return [
                r
                for r in parsed.values()
                if max(r.updated, owed.get(r.directive.id, r.updated)) + reach(r, live) >= since
            ]

        needed = {r.number: r for r in within(now)}
        horizon = min([r.created for r in live] + [r.created for r in needed.values()], default=None)
        while horizon is not None:
            more = {r.number: r for r in within(horizon) if r.number not in needed}
            if not more:
                break
            needed.update(more)
            horizon = min([horizon] + [r.created for r in more.values()])
        snapshot = tuple(sorted(live + list(needed.values()), key=lambda r: r.number))
        self._stacking = ((generation, key), now, snapshot)
        return snapshot

    def directive_counts(self) -> dict[str, int]:
        """Directives by state (metrics)."""
        return dict(self._db.execute("SELECT state, count(*) FROM directives GROUP BY state").fetchall())

    # -- outcomes ----------------------------------------------------------------------------------------------

    def save_outcomes(self, outcomes: Sequence[StationOutcome], at: datetime) -> None:
        """Upsert per-station outcomes in one transaction."""
        when, first = at.isoformat(), self._next_seq
        rows = [
            (
                o.directive_id,
                o.station_id,
                o.status.value,
                body := o.model_dump_json(),
                when,
                first + i,
                _ramp_until(body),
            )
            for i, o in enumerate(outcomes)
        ]
        with self._transaction():
            self._db.executemany(
                "INSERT INTO outcomes(directive_id, station_id, status, body, updated, seq, ramp_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(directive_id, station_id) DO UPDATE SET"
                " status=excluded.status, body=excluded.body, updated=excluded.updated, ramp_until=excluded.ramp_until",
                rows,
            )
        self._next_seq = first + len(rows)
        for o, row in zip(outcomes, rows, strict=True):
            self._saved[o.station_id] = (o.directive_id, row[3], o)
            held = self._in_flight.get(o.directive_id)
            if held is not None and held.pop(o.station_id, None) is not None and not held:
                del self._in_flight[o.directive_id]

    def hold_in_flight(
        self, directive_id: str, statuses: Mapping[str, OutcomeStatus], make: Callable[[str], StationOutcome]
    ) -> None:
        """Outcomes of commands about to be sent (see `_in_flight`), by station, with their status: read like saved
        ones until their answers' are; `make(station_id)` makes one when it is read."""
        held = self._in_flight.setdefault(directive_id, {})
        for station_id, status in statuses.items():
            held[station_id] = (status, make)

    def _held(self, directive_id: str) -> dict[str, StationOutcome]:
        """A directive's outcomes in flight, made."""
        return {sid: make(sid) for sid, (_, make) in self._in_flight.get(directive_id, {}).items()}

    def outcomes(self, directive_id: str) -> list[StationOutcome]:
        """A directive's outcomes by station id, those in flight included; rows still holding exactly what this
        store saved last for that station and directive come back as the saved objects (equal JSON, so an equal
        decoding), the rest are decoded."""
        rows = self._db.execute(
            "SELECT station_id, body FROM outcomes WHERE directive_id=? ORDER BY station_id", (directive_id,)
        ).fetchall()
        saved, held = self._saved, self._held(directive_id)
        found = [
            held[sid]
            if sid in held
            else hit[2]
            if (hit := saved.get(sid)) is not None and hit[0] == directive_id and hit[1] == body
            else StationOutcome.model_validate_json(body)
            for sid, body in rows
        ]
        if not held:
            return found
        stored = {sid for sid, _ in rows}
        extra = [o for sid, o in held.items() if sid not in stored]
        return sorted([*found, *extra], key=lambda o: o.station_id) if extra else found

    def outcome(self, directive_id: str, station_id: str) -> StationOutcome | None:
        """One station's outcome of a directive, in flight or saved: by the primary key, not the directive's whole
        list (a reconnect storm looked each station up in its directive's 10,000 outcomes)."""
        held = self._in_flight.get(directive_id, {}).get(station_id)
        if held is not None:
            return held[1](station_id)
        row = self._db.execute(
            "SELECT body FROM outcomes WHERE directive_id=? AND station_id=?", (directive_id, station_id)
        ).fetchone()
        if row is None:
            return None
        hit = self._saved.get(station_id)
        if hit is not None and hit[0] == directive_id and hit[1] == row[0]:
            return hit[2]
        return StationOutcome.model_validate_json(row[0])

    def outcome_counts(self, directive_id: str) -> dict[str, int]:
        """Stations per outcome status of a directive, those in flight included, without decoding the outcomes (the
        dashboard's row)."""
        held = self._in_flight.get(directive_id)
        if not held:
            rows = self._db.execute(
                "SELECT status, count(*) FROM outcomes WHERE directive_id=? GROUP BY status", (directive_id,)
            ).fetchall()
            return dict(rows)
        statuses = dict(
            self._db.execute("SELECT station_id, status FROM outcomes WHERE directive_id=?", (directive_id,))
        )
        statuses.update((sid, status.value) for sid, (status, _) in held.items())
        return dict(Counter(statuses.values()))

    def station_outcomes(
        self, station_id: str, statuses: Iterable[str], *, of: Iterable[DirectiveState] | None = None
    ) -> list[StationOutcome]:
        """The station's outcomes with one of `statuses`; with `of`, only those of directives in one of these states
        (filtered before decoding: a station's history grows with every directive)."""
        wanted = list(statuses)
        where, params = self._station_rows(station_id)
        sql = f"SELECT o.body FROM outcomes o WHERE {where} AND o.status IN ({','.join('?' * len(wanted))})"
        params.extend(wanted)
        if of is not None:
            states = [s.value for s in of]
            sql += (
                f" AND (SELECT state FROM directives d WHERE d.id = o.directive_id) IN ({','.join('?' * len(states))})"
            )
            params.extend(states)
        return [StationOutcome.model_validate_json(r[0]) for r in self._db.execute(sql + " ORDER BY o.seq", params)]

    def has_outcomes(self, station_id: str, *, besides: OutcomeStatus) -> bool:
        """Whether the station has an outcome (in flight or saved) of any status but `besides`, without reading its
        history."""
        if any(held[station_id][0] is not besides for held in self._in_flight.values() if station_id in held):
            return True
        where, params = self._station_rows(station_id)
        row = self._db.execute(
            f"SELECT 1 FROM outcomes o WHERE {where} AND o.status != ? LIMIT 1", [*params, besides.value]
        ).fetchone()
        return row is not None

    def station_ramps(self, station_id: str, after: datetime) -> list[StationOutcome]:
        """The station's outcomes that note a restore ramp ending after `after` (withdrawn ones too): found in the
        station index alone, so only those are read and decoded (a station's history grows with every directive)."""
        where, params = self._station_rows(station_id)
        rows = self._db.execute(
            f"SELECT o.body FROM outcomes o WHERE {where} AND o.ramp_until > ? ORDER BY o.seq",
            [*params, _utc_text(after)],
        )
        return [StationOutcome.model_validate_json(body) for (body,) in rows]

    def _station_rows(self, station_id: str) -> tuple[str, list[object]]:
        """A WHERE clause for one station's outcome rows: looked up in each block of the station index."""
        blocks = ((self._next_seq - 1) >> STATION_BLOCK_BITS) + 1
        return (
            f"(o.seq >> {STATION_BLOCK_BITS}) IN (WITH RECURSIVE b(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM b"
            " WHERE n + 1 < ?) SELECT n FROM b) AND o.station_id = ?",
            [blocks, station_id],
        )

    # -- timed clears (cancel with randomization) ---------------------------------------------------------------

    def add_pending_clears(self, directive_id: str, dues: Sequence[tuple[str, datetime]]) -> None:
        """Clears owed to stations at their own time (one transaction: a crash keeps all or none)."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO pending_clears(directive_id, station_id, due) VALUES (?, ?, ?)",
                [(directive_id, sid, due.isoformat()) for sid, due in dues],
            )
        self._generation += 1

    def pending_clears(self) -> list[tuple[str, str, datetime]]:
        """(directive id, station id, due) of every clear still owed, earliest first (read once per change)."""
        cached = self._clears
        if cached is None or cached[0] != self._generation:
            rows = self._db.execute("SELECT directive_id, station_id, due FROM pending_clears ORDER BY due, station_id")
            cached = self._clears = (self._generation, tuple((r[0], r[1], datetime.fromisoformat(r[2])) for r in rows))
        return list(cached[1])

    def drop_pending_clear(self, directive_id: str, station_id: str) -> None:
        self._db.execute("DELETE FROM pending_clears WHERE directive_id=? AND station_id=?", (directive_id, station_id))
        self._generation += 1

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _directive_record(row: tuple[int, str, str, str, str]) -> DirectiveRecord:
    return DirectiveRecord(
        number=row[0],
        directive=Directive.model_validate_json(row[1]),
        state=DirectiveState(row[2]),
        created=datetime.fromisoformat(row[3]),
        updated=datetime.fromisoformat(row[4]),
    )


def _ramp_until(body: str) -> str | None:
    until = noted_until(body)
    return None if until is None else _utc_text(until)


def _utc_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order (the ramp ends in the index)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
