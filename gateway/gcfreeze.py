"""Keep the cyclic garbage collector off the long-lived heap while a fan-out runs.

A fan-out keeps thousands of tasks, futures and outcomes alive for its whole length, so they outlive the young
generations and push the collector into full collections, and a full collection walks every object of the
process: at 2,000 connected stations about 340,000 (connections, fleet state), 0.2 s each, one or two per round,
nearly half the gateway's CPU during a fan-out (docs/performance.md, "Third step"). `gc.freeze()` moves every
object alive at the start into the permanent generation, which collections skip; `gc.unfreeze()` hands them back
when the last running fan-out ends, so nothing is kept from the collector for longer than that, and never for
more than `MAX_FROZEN_S` in a row (fan-outs that keep overlapping stop renewing the freeze). Reference counting
frees non-cyclic garbage as usual throughout; only the search for cycles among the frozen objects waits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["MAX_FROZEN_S", "frozen_during"]

T = TypeVar("T")

#: The longest the heap stays frozen in one stretch, however many fan-outs overlap.
MAX_FROZEN_S = 120.0

_running = 0
_frozen_at: float | None = None


def _enter() -> None:
    global _running, _frozen_at
    _running += 1
    if _running == 1 and _frozen_at is None:
        gc.freeze()
        _frozen_at = time.monotonic()


def _leave() -> None:
    global _running, _frozen_at
    _running -= 1
    if _frozen_at is not None and (_running == 0 or time.monotonic() - _frozen_at > MAX_FROZEN_S):
        gc.unfreeze()
        _frozen_at = None


async def frozen_during(work: Awaitable[T]) -> T:
    """Await `work` with the objects alive now out of the collector's reach (see the module docstring)."""
    _enter()
    try:
        return await work
    finally:
        _leave()
