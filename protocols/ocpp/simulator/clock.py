"""Clocks for the simulator: wall time by default, a manual clock that tests advance explicitly.

DER start/stop notifications, heartbeats and meter values are all timed through a `Clock`, so tests move time
forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The time source a station reads and waits on."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    """Wall-clock UTC time; waits with asyncio.sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        await asyncio.sleep(max(0.0, (when - self.now()).total_seconds()))


class ManualClock:
    """A clock that only moves when `advance` or `set` is called; sleepers whose deadline passes are woken then.

    One clock can be shared by a whole fleet: waiting costs a heap entry, not a timer.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline is now due."""
        self.set(self._now + timedelta(seconds=seconds))

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("a ManualClock never goes backwards")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)


async def sleep(clock: Clock, seconds: float) -> None:
    """Sleep `seconds` on `clock`."""
    await clock.sleep_until(clock.now() + timedelta(seconds=seconds))
