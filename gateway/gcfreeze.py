"""Keep the cyclic garbage collector out of the way while fan-outs run.

A fan-out keeps thousands of tasks, futures and outcomes alive for its whole length, so they outlive the young
generations and push the collector into full collections, and a full collection walks every object of the
process: at 2,000 connected stations about 340,000 (connections, fleet state), 0.2 s each, one or two per round,
nearly half the gateway's CPU during a fan-out (docs/performance.md, "Third step"). A cancel's clears, as many
commands as the fan-out, count as a fan-out here. Two measures:

- The collector is paused (`gc.disable()`) from the start of a fan-out until no fan-out runs, at most
  `MAX_PAUSE_S`: the fan-out's objects are freed by reference counting when they die instead of being walked at
  every collection on the way.
- `gc.freeze()` moves every object alive at a fan-out's start (the connections, the fleet) into the permanent
  generation, which collections skip; so is what they leave alive when the last ends. The heap stays frozen while
  fan-outs run and for `HOLD_S` after the last one ends (reading its outcomes, the dashboard's update and the next
  directive of a burst allocate too); then it is handed back with `gc.unfreeze()` and collected once in full, in
  that quiet time.

Reference counting frees non-cyclic garbage throughout; only the search for cycles waits, until the release
`HOLD_S` after the last fan-out, and never past `MAX_FROZEN_S` in one stretch: fan-outs that keep overlapping that
long unfreeze the heap (and resume the collector after `MAX_PAUSE_S`), and it is frozen again only after a full
collection has looked at every object.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["HOLD_S", "MAX_FROZEN_S", "MAX_PAUSE_S", "frozen_during", "release"]

T = TypeVar("T")

#: How long the heap stays frozen after the last running fan-out ended.
HOLD_S = 30.0
#: The longest the heap stays frozen in one stretch, however many fan-outs overlap.
MAX_FROZEN_S = 120.0

#: The longest the collector is paused in one stretch of running fan-outs.
MAX_PAUSE_S = 30.0

_running = 0
_paused: asyncio.TimerHandle | None = None
_frozen_at: float | None = None
#: A full collection has looked at every object since the last freeze: freezing again leaks nothing for long.
_examined = True
_hold: asyncio.TimerHandle | None = None


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    global _examined
    if phase == "stop" and info["generation"] == 2 and _frozen_at is None:
        _examined = True


gc.callbacks.append(_on_collection)


def _overdue() -> bool:
    return _frozen_at is not None and time.monotonic() - _frozen_at > MAX_FROZEN_S


def _enter() -> None:
    global _running, _frozen_at, _examined, _hold, _paused
    _running += 1
    if _running == 1 and gc.isenabled():
        gc.disable()
        _paused = asyncio.get_running_loop().call_later(MAX_PAUSE_S, _resume)
    if _hold is not None:
        _hold.cancel()
        _hold = None
    if _overdue():
        _unfreeze()
    elif _frozen_at is not None:
        gc.freeze()  # also what the fan-outs before this one left alive; the stretch keeps its start
    elif _examined:
        gc.freeze()
        _frozen_at, _examined = time.monotonic(), False


def _leave() -> None:
    global _running, _hold
    _running -= 1
    if _overdue():
        _unfreeze()
    elif _running == 0 and _frozen_at is not None:
        gc.freeze()  # what the fan-outs leave alive joins the frozen heap instead of being walked as it resumes
        _hold = asyncio.get_running_loop().call_later(HOLD_S, _release_if_idle)
    if _running == 0:
        _resume()


def _resume() -> None:
    global _paused
    if _paused is not None:
        _paused.cancel()
        _paused = None
        gc.enable()


def _release_if_idle() -> None:
    global _hold
    _hold = None
    if _running == 0:
        release()


def _unfreeze() -> None:
    global _frozen_at
    if _frozen_at is not None:
        gc.unfreeze()
        _frozen_at = None


def release() -> None:
    """Resume the collector, hand it the frozen objects and collect everything once (the end of a hold; tests)."""
    global _hold
    _resume()
    if _hold is not None:
        _hold.cancel()
        _hold = None
    if _frozen_at is not None:
        _unfreeze()
        gc.collect()


async def frozen_during(work: Awaitable[T]) -> T:
    """Await `work` with the objects alive now out of the collector's reach (see the module docstring)."""
    _enter()
    try:
        return await work
    finally:
        _leave()
