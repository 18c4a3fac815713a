"""What the proxy does with station messages while the upstream CSMS is unreachable, and when it retries.

Grid duties go on while the CSMS is away, so the station stays connected (a deliberate departure from part 4,
6.3: see docs/sidecar.md). The proxy then plays the part of the station's offline queue: messages a station queues
while offline are answered locally, kept in order, and delivered unchanged once the CSMS is back.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from gateway.model import OcppVersion

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
    """
    if action in BUFFERED:
        return "buffer"
    if action in ANSWERED_ONLY:
        return "answer"
    return "refuse"


@dataclass(frozen=True, slots=True)
class Buffered:
    message_id: str
    action: str
    #: The frame exactly as the station sent it.
    raw: str


class OfflineBuffer:
    """Station frames awaiting the CSMS, oldest first; the oldest are dropped past `limit` (and counted)."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Buffered] = deque()
        self._limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: Buffered) -> None:
        self._items.append(item)
        while len(self._items) > self._limit:
            self._items.popleft()
            self.dropped += 1

    def peek(self) -> Buffered | None:
        return self._items[0] if self._items else None

    def pop(self) -> None:
        self._items.popleft()


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
