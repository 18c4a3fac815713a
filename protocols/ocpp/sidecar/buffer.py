"""What the proxy does with station messages while the upstream CSMS is unreachable, and when it retries.

Grid duties go on while the CSMS is away, so the station stays connected (a deliberate departure from part 4,
6.3: see docs/sidecar.md). The proxy then plays the part of the station's offline queue: messages a station queues
while offline are answered locally, kept in order (in SQLite, so a gateway restart loses none), and delivered once
the CSMS is back as the station would deliver them after being offline.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.model import OcppVersion
from protocols.ocpp import frames
from protocols.ocpp.frames import Call

log = logging.getLogger(__name__)

#: Station CALLs a station keeps while offline and delivers later, in order (transactions, meter values, status,
#: security and DER events): answered by the proxy with the CSMS-mode answer, replayed to the CSMS on reconnect.
BUFFERED: frozenset[str] = frozenset(
    {
        "BootNotification",
        "TransactionEvent",
        "MeterValues",
        "StatusNotification",
        "StopTransaction",
        "NotifyEvent",
        "NotifyReport",
        "NotifyMonitoringReport",
        "SecurityEventNotification",
        "NotifyDERAlarm",
        "NotifyDERStartStop",
        "ReportDERControl",
        "ReportChargingProfiles",
        "NotifyChargingLimit",
        "ClearedChargingLimit",
        "FirmwareStatusNotification",
        "LogStatusNotification",
    }
)
#: Answered locally and forgotten: nothing the CSMS needs later.
ANSWERED_ONLY: frozenset[str] = frozenset({"Heartbeat"})


def offline_policy(version: OcppVersion, action: str) -> str:
    """ "buffer", "answer" or "refuse" for a station CALL that arrives while the CSMS is unreachable.

    Everything else is refused with CALLERROR GenericError, so the station falls back to its own offline rules: the
    gateway never decides authorizations, and a 1.6 StartTransaction needs the transaction id only the CSMS gives.
    Answering it with a provisional id would oblige the gateway to rewrite that id in every later frame both ways
    for the transaction's life; refused, the station keeps the message and retries it (1.6, 3.7: transaction-related
    messages answered with a CALLERROR are sent again, TransactionMessageAttempts times).
    """
    if action in BUFFERED:
        return "buffer"
    if action in ANSWERED_ONLY:
        return "answer"
    return "refuse"


def queued_frame(call: Call, raw: str) -> str:
    """The frame the CSMS gets for a buffered station CALL: what a station delivers after being offline.

    A TransactionEvent carries `offline: true` (E12.FR.02, E04.FR.03; E11.FR.07 for one that was still on its way
    when the CSMS went away): the station sent it while the gateway could not reach the CSMS, and the CSMS must know
    so, as it would had the station queued it itself. The field is inserted into the station's own text, so every
    other byte stays as sent; a station that wrote `offline: false` gets the frame re-serialized. Every other action
    is delivered exactly as sent (OCPP 1.6 has no such flag).
    """
    if call.action != "TransactionEvent" or call.payload.get("offline") is True:
        return raw
    if "offline" in call.payload:
        return frames.serialize(Call(call.message_id, call.action, {**call.payload, "offline": True}))
    body = raw.rstrip()
    close = body.rindex("}")  # the frame ends with its payload, a non-empty object: `...}` then `]`
    return body[:close] + ',"offline":true' + body[close:]


@dataclass(frozen=True, slots=True)
class Buffered:
    seq: int
    message_id: str
    action: str
    #: The frame as the CSMS will get it (queued_frame).
    frame: str
    #: The payload of the CALLRESULT the gateway gave the station in the CSMS's place.
    answer: dict[str, Any]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sidecar_buffer (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action TEXT NOT NULL,
    frame TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sidecar_buffer_station ON sidecar_buffer(station_id, seq);
"""


class BufferStore:
    """Every station's buffered frames, in the gateway's SQLite file (tables prefixed `sidecar_`).

    A frame is committed before the station gets its local answer, with synchronous=FULL: once answered, the station
    forgets the message, so the gateway's copy is the only one and must survive a crash or power loss of the gateway.
    """

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def buffer(self, station_id: str, limit: int) -> OfflineBuffer:
        return OfflineBuffer(self._db, station_id, limit)


class OfflineBuffer:
    """One station's frames awaiting the CSMS, oldest first; the oldest are dropped past `limit` (and counted)."""

    def __init__(self, db: sqlite3.Connection, station_id: str, limit: int) -> None:
        self._db = db
        self._station_id = station_id
        self._limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM sidecar_buffer WHERE station_id = ?", (self._station_id,))
        count: int = row.fetchone()[0]
        return count

    def append(self, message_id: str, action: str, frame: str, answer: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO sidecar_buffer (station_id, message_id, action, frame, answer) VALUES (?, ?, ?, ?, ?)",
            (self._station_id, message_id, action, frame, json.dumps(answer, ensure_ascii=False)),
        )
        excess = len(self) - self._limit
        if excess > 0:
            self._db.execute(
                "DELETE FROM sidecar_buffer WHERE seq IN "
                "(SELECT seq FROM sidecar_buffer WHERE station_id = ? ORDER BY seq LIMIT ?)",
                (self._station_id, excess),
            )
            self.dropped += excess
            log.warning("station %s: offline buffer full, %d oldest message(s) dropped", self._station_id, excess)

    def peek(self) -> Buffered | None:
        row = self._db.execute(
            "SELECT seq, message_id, action, frame, answer FROM sidecar_buffer WHERE station_id = ? "
            "ORDER BY seq LIMIT 1",
            (self._station_id,),
        ).fetchone()
        return None if row is None else Buffered(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def pop(self, item: Buffered) -> None:
        """`item` has been delivered (or given up): forget it."""
        self._db.execute("DELETE FROM sidecar_buffer WHERE seq = ?", (item.seq,))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnection back-off as part 4, 5.4 asks of stations (RetryBackOff* variables): the first wait is the minimum
    plus a random part; each failure doubles the previous wait, at most `repeat_times` times."""

    wait_minimum_s: float = 3.0
    random_range_s: float = 2.0
    repeat_times: int = 5

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before reconnection attempt `attempt` (0 = the first after the loss)."""
        doubled: float = self.wait_minimum_s * 2 ** min(attempt, self.repeat_times)
        return doubled + rng.uniform(0, self.random_range_s)
