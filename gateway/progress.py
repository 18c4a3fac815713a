"""Progress of long operations (audit export and verify, large demos) on stderr: `label: done/total (pct), rate/s`.

Operations take an optional `Tick` (`tick(done, total)`) and call it every `TICK_EVERY` items; `Progress` is the
tick that prints, at most every `interval_s`, and `finish` shows the final count. It is made only when stderr is a
terminal or the operator asked (`--progress`), so scripts and tests that read stderr see nothing unless they ask.
On a terminal the line is rewritten in place; otherwise each update is its own line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TextIO, TypeVar

_T = TypeVar("_T")

#: `tick(done, total)`: `done` of `total` items processed so far.
Tick = Callable[[int, int], None]

#: How many items an operation processes between two ticks (a tick per item would cost more than it shows).
TICK_EVERY = 1024


def ticking(items: Iterable[_T], tick: Tick | None, total: int) -> Iterator[tuple[int, _T]]:
    """`enumerate(items, start=1)` that tells `tick` of every `TICK_EVERY` items processed (after the caller's work on
    each), and once more with the count when they run out."""
    done = 0
    for done, item in enumerate(items, start=1):
        yield done, item
        if tick is not None and done % TICK_EVERY == 0:
            tick(done, total)
    if tick is not None:
        tick(done, total)


class Progress:
    """A `Tick` that prints; `finish` prints the final count once the operation returned."""

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._in_place = self._stream.isatty()
        self._interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._shown: float | None = None
        self._last: tuple[int, int] | None = None
        self._pending = False

    def __call__(self, done: int, total: int) -> None:
        self._last, self._pending = (done, total), True
        now = self._clock()
        if self._shown is None or now - self._shown >= self._interval_s:
            self._show(now, end="")

    def finish(self) -> None:
        """The last count (if not shown yet), and end the line."""
        if self._last is not None and self._pending:
            self._show(self._clock(), end="\n")
        elif self._in_place and self._last is not None:
            self._stream.write("\n")
            self._stream.flush()

    def _show(self, now: float, *, end: str) -> None:
        assert self._last is not None
        done, total = self._last
        self._shown, self._pending = now, False
        elapsed = now - self._started
        rate = f", {done / elapsed:,.0f}/s" if elapsed > 0 else ""
        pct = f" ({100 * done / total:.0f} %)" if total else ""
        line = f"{self._label}: {done:,}/{total:,}{pct}{rate}"
        self._stream.write(f"\r{line}{end}" if self._in_place else f"{line}\n")
        self._stream.flush()


def wanted(asked: bool) -> bool:
    """Show progress when asked (`--progress`) or when stderr is a terminal."""
    return asked or sys.stderr.isatty()


async def sampled(work: Awaitable[None], count: Callable[[], int], total: int, label: str) -> None:
    """Await `work`, showing `count()` of `total` every half second meanwhile (for work that has no ticks of its
    own, such as a simulated fleet booting)."""
    progress = Progress(label)
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            progress(count(), total)
            await asyncio.wait({task}, timeout=0.5)
        progress(count(), total)
    finally:
        progress.finish()
    await task
