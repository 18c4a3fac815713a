"""The station index is keyed by block of entries, then station: a station lookup must still find every entry of the
station in every block, in sequence order, and a file written with the old plain station index is migrated."""

import sqlite3
from datetime import timedelta
from pathlib import Path

from gateway.audit import AuditEntry, AuditLog, Kind
from gateway.audit.log import STATION_BLOCK_BITS, entry_filter, select_entries
from tests.audit.conftest import T0

BLOCK = 1 << STATION_BLOCK_BITS
STATIONS = [f"CS{i:03d}" for i in range(7)]


def _fill(log: AuditLog, count: int) -> None:
    """`count` entries cycling over the stations, every 13th without a station, in batches like a fan-out's."""
    entries = [
        AuditEntry(
            Kind.STATION_MESSAGE if i % 13 else Kind.SIGNAL_RECEIVED,
            {"n": i},
            T0 + timedelta(milliseconds=i),
            station_id=STATIONS[i % len(STATIONS)] if i % 13 else None,
        )
        for i in range(count)
    ]
    for start in range(0, count, 1000):
        log.append_many(entries[start : start + 1000])


def _expected(station: str, count: int) -> list[int]:
    return [i for i in range(count) if i % 13 and STATIONS[i % len(STATIONS)] == station]


def test_a_station_is_found_in_every_block_in_sequence_order(db: Path, keys: Path) -> None:
    count = 2 * BLOCK + 500  # three blocks, the last one partly filled
    with AuditLog.open(db, keys) as log:
        _fill(log, count)
        for station in ("CS000", "CS006"):
            assert [e.seq for e in log.query(station_id=station)] == _expected(station, count)
        since, until = T0 + timedelta(milliseconds=BLOCK - 50), T0 + timedelta(milliseconds=2 * BLOCK + 60)
        window = [e.seq for e in log.query(station_id="CS003", since=since, until=until)]
        assert window == [i for i in _expected("CS003", count) if BLOCK - 50 <= i < 2 * BLOCK + 60]
        assert [e.seq for e in log.query(station_id="CS003", limit=5)] == _expected("CS003", count)[:5]
        assert log.query(station_id="nobody") == []


def test_a_station_lookup_searches_the_block_index(db: Path, keys: Path) -> None:
    with AuditLog.open(db, keys) as log:
        _fill(log, 100)
    conn = sqlite3.connect(db)
    try:
        for extra in ({}, {"since": T0}, {"kind": "station.message"}):
            where, params = entry_filter(blocks=1, station_id="CS001", **extra)  # what select_entries runs
            plan = " ".join(
                row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT body FROM audit_entries {where}", params)
            )
            assert "INDEX audit_entries_station_block" in plan, (extra, plan)
        assert [e.seq for e in select_entries(conn, station_id="CS001")] == _expected("CS001", 100)
    finally:
        conn.close()


def test_a_log_with_the_plain_station_index_is_migrated_on_open(db: Path, keys: Path) -> None:
    with AuditLog.open(db, keys) as log:
        _fill(log, 200)
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX audit_entries_station_block")
    conn.execute("CREATE INDEX audit_entries_station ON audit_entries(station_id) WHERE station_id IS NOT NULL")
    conn.commit()
    assert [e.seq for e in select_entries(conn, station_id="CS002")] == _expected("CS002", 200)  # old file, new reader
    conn.close()
    with AuditLog.open(db, keys) as log:
        assert [e.seq for e in log.query(station_id="CS002")] == _expected("CS002", 200)
    conn = sqlite3.connect(db)
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert "audit_entries_station_block" in names
    assert "audit_entries_station" not in names
