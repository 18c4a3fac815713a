"""`dergw bench audit`: how fast the log appends (batched and one fsync per entry) and verifies.

Entries are shaped like the gateway's busiest kind, ``command.sent`` with a SetChargingProfile frame,
so the figures include canonical encoding, hashing, signing the head and SQLite with fsync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit.bundle import ExportFilter, export_bundle, verify_bundle
from gateway.audit.entry import AuditEntry, Kind
from gateway.audit.log import AuditLog
from gateway.audit.verify import verify_db

__all__ = ["BenchResult", "run_bench", "sample_entry"]

_START = datetime(2025, 1, 1, tzinfo=UTC)


def sample_entry(i: int) -> AuditEntry:
    """A realistic ``command.sent`` entry (about 450 bytes canonical)."""
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
        station_id=f"CS-{i % 500:04d}",
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
        return "\n".join(
            f"{name + ':':<36}{rate:>10,.0f} entries/s  ({count} entries)" for name, rate, count in rows if rate
        )


def run_bench(directory: Path, *, entries: int, batch: int, single: int) -> BenchResult:
    """Append ``entries`` in batches of ``batch``, then ``single`` one by one; verify the result."""
    db, keys = directory / "bench.sqlite", directory / "keys"
    samples = [sample_entry(i) for i in range(entries + single)]
    with AuditLog.open(db, keys) as log:
        started = time.perf_counter()
        for i in range(0, entries, batch):
            log.append_many(samples[i : min(i + batch, entries)])
        batched = time.perf_counter() - started
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
    return BenchResult(
        batched_entries=entries,
        batch_size=batch,
        batched_rate=entries / batched,
        single_entries=single,
        single_rate=single / one_by_one if single else 0.0,
        verify_rate=total / verified,
        bundle_verify_rate=total / bundled,
    )
