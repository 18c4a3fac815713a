"""`dergw bench audit`: how fast the log appends (batched and one fsync per entry) and verifies.

Entries are shaped like the gateway's busiest kind, ``command.sent`` with a SetChargingProfile frame,
so the figures include canonical encoding, hashing, signing the head and SQLite with fsync. Each run of
``stations`` entries names every station once in a shuffled order, as the answers of a fleet-wide fan-out come; the
batched appends run a second time on a log with the plain station index of earlier versions (the baseline of the
block-keyed one, gateway.audit.log SCHEMA).
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit.bundle import ExportFilter, export_bundle, verify_bundle
from gateway.audit.checkpoint import Signer
from gateway.audit.entry import AuditEntry, Kind
from gateway.audit.log import AuditLog, connect
from gateway.audit.verify import verify_db

__all__ = ["BenchResult", "run_bench", "sample_entry"]

_START = datetime(2025, 1, 1, tzinfo=UTC)


def sample_entry(i: int, station: int | None = None) -> AuditEntry:
    """A realistic ``command.sent`` entry (about 450 bytes canonical), for station ``station`` (else ``i % 500``)."""
    message_id = f"{i:08x}-7d3c-4f1e-9a2b-5c6d7e8f9a0b"
    frame = [
        2,
        message_id,
        "SetChargingProfile",
        {
            "evseId": 1,
            "chargingProfile": {
                "id": i,
                "stackLevel": 1,
                "chargingProfilePurpose": "ChargingStationExternalConstraints",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": i,
                        "chargingRateUnit": "W",
                        "startSchedule": "2025-01-01T12:00:00.000Z",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0 - i % 100 * 0.5}],
                    }
                ],
            },
        },
    ]
    return AuditEntry(
        Kind.COMMAND_SENT,
        {"action": "SetChargingProfile", "frame": frame},
        _START + timedelta(milliseconds=i),
        directive_id=f"dir-{i // 1000}",
        station_id=f"CS-{i % 500 if station is None else station:05d}",
        message_id=message_id,
    )


@dataclass(frozen=True, slots=True)
class BenchResult:
    batched_entries: int
    batch_size: int
    batched_rate: float
    single_entries: int
    single_rate: float
    verify_rate: float
    bundle_verify_rate: float
    stations: int
    #: Batched appends on a log with the plain station index instead of the block-keyed one.
    plain_index_rate: float

    def render(self) -> str:
        rows = [
            (
                f"append, batched ({self.batch_size}/transaction)",
                self.batched_rate,
                f"{self.batched_entries:,}",
            ),
            ("append, one transaction each", self.single_rate, f"{self.single_entries:,}, fsync each"),
            ("verify database", self.verify_rate, "all"),
            ("export + verify complete bundle", self.bundle_verify_rate, "all"),
        ]
        lines = [f"{name + ':':<36}{rate:>10,.0f} entries/s  ({count} entries)" for name, rate, count in rows if rate]
        ratio = self.batched_rate / self.plain_index_rate
        lines.append(
            f"{'baseline, plain station index:':<36}{self.plain_index_rate:>10,.0f} entries/s  "
            f"(batched, {self.stations:,} stations; block-keyed index {ratio:.2f}x)"
        )
        return "\n".join(lines)


def run_bench(directory: Path, *, entries: int, batch: int, single: int, stations: int = 500) -> BenchResult:
    """Append ``entries`` in batches of ``batch``, then ``single`` one by one; verify the result; then the batched
    appends again on a log with the plain station index."""
    db, keys = directory / "bench.sqlite", directory / "keys"
    order = [
        s for run in range(0, entries + single, stations) for s in random.Random(run).sample(range(stations), stations)
    ]
    samples = [sample_entry(i, order[i]) for i in range(entries + single)]
    with AuditLog.open(db, keys) as log:
        batched = _append_batches(log, samples[:entries], batch)
        started = time.perf_counter()
        for e in samples[entries:]:
            log.append(
                e.kind,
                e.data,
                at=e.at,
                directive_id=e.directive_id,
                station_id=e.station_id,
                message_id=e.message_id,
            )
        one_by_one = time.perf_counter() - started
        key = log.public_key
    total = entries + single
    started = time.perf_counter()
    if not verify_db(db, key).ok:
        raise RuntimeError("the benchmark log does not verify")
    verified = time.perf_counter() - started
    started = time.perf_counter()
    export_bundle(db, keys, directory / "bench.zip", created=_START, flt=ExportFilter())
    if not verify_bundle(directory / "bench.zip", key).ok:
        raise RuntimeError("the benchmark bundle does not verify")
    bundled = time.perf_counter() - started
    plain = directory / "plain.sqlite"
    AuditLog.open(plain, keys).close()
    with contextlib.closing(connect(plain)) as conn:
        conn.execute("DROP INDEX audit_entries_station_block")
        conn.execute("CREATE INDEX audit_entries_station ON audit_entries(station_id) WHERE station_id IS NOT NULL")
    with AuditLog(connect(plain), Signer.load_or_create(keys), "dergw", 1000) as log:  # open() would migrate it
        plain_batched = _append_batches(log, samples[:entries], batch)
    return BenchResult(
        batched_entries=entries,
        batch_size=batch,
        batched_rate=entries / batched,
        single_entries=single,
        single_rate=single / one_by_one if single else 0.0,
        verify_rate=total / verified,
        bundle_verify_rate=total / bundled,
        stations=stations,
        plain_index_rate=entries / plain_batched,
    )


def _append_batches(log: AuditLog, entries: list[AuditEntry], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(entries), batch):
        log.append_many(entries[i : i + batch])
    return time.perf_counter() - started
