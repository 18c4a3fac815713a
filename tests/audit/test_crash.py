"""Killing the writer mid-append leaves no gap, no half entry, and a log that keeps going."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from gateway.audit import AuditLog
from gateway.audit.checkpoint import load_public_key
from gateway.audit.verify import verify_db
from tests.audit.conftest import T0

# Appends forever, mixing single appends and batches, and prints the last sequence number of each
# transaction once append has returned (that is, once the transaction is durable).
WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit import AuditEntry, AuditLog, Kind

log = AuditLog.open(Path(sys.argv[1]), Path(sys.argv[2]), checkpoint_every=25)
at = datetime(2025, 6, 1, tzinfo=UTC)
i = 0
while True:
    size = 1 + i % 9
    frame = {"action": "SetChargingProfile", "frame": [2, f"m{i}", "SetChargingProfile", {"pad": "x" * 300}]}
    if size == 1:
        last = log.append(Kind.COMMAND_SENT, frame, at=at, station_id="CS1", message_id=f"m{i}")
    else:
        entry = AuditEntry(Kind.COMMAND_SENT, frame, at, station_id="CS2", message_id=f"m{i}")
        last = log.append_many([entry] * size)[-1]
    print(last, flush=True)
    i += 1
"""


def run_and_kill(db: Path, keys: Path, transactions: int) -> int:
    """Start a writer, SIGKILL it after it reports ``transactions`` commits; return the last seq seen."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(keys)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
        text=True,
    )
    assert writer.stdout is not None
    last = -1
    for _ in range(transactions):
        last = int(writer.stdout.readline())
    os.kill(writer.pid, signal.SIGKILL)  # while it is busy with the next transaction
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    return last


def test_sigkill_mid_write_leaves_no_gap_and_no_half_entry(tmp_path: Path) -> None:
    db, keys = tmp_path / "audit.sqlite", tmp_path / "certs"
    for round_, transactions in enumerate((40, 75, 120)):
        acknowledged = run_and_kill(db, keys, transactions)
        report = verify_db(db, load_public_key(keys))
        assert report.ok, f"after kill {round_}: {report.render()}"
        assert report.entries > acknowledged  # everything append returned for is on disk
    with AuditLog.open(db, keys) as log:  # and the log carries on where it stopped
        size = log.size
        assert log.append("operator.action", {"after": "crash"}, at=T0) == size
    assert verify_db(db, load_public_key(keys)).ok
