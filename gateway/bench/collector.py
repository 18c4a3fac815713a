"""The bench processes' garbage collector: how long it ran in a window, and keeping it out of the rounds.

The load generator and the floor collect only when told, between rounds (`collect_between_rounds`); the gateway
keeps its own collector out of its fan-outs as it does in production (gateway/gcfreeze.py), and the naive CSMS
leaves its collector as Python sets it. Every CSMS process and every simulator times its collections
(`GcTimes`), so the bench can print how much of a round went to them.
"""

from __future__ import annotations

import bisect
import gc
import time

__all__ = ["GcTimes", "collect_between_rounds"]


class GcTimes:
    """A `gc.callbacks` hook: when each collection of this process ended (time.monotonic) and how long it took."""

    def __init__(self) -> None:
        self.ends: list[float] = []
        self.seconds: list[float] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.ends.append(time.monotonic())
            self.seconds.append(time.perf_counter() - self._began)

    def between(self, t0: float, t1: float) -> float:
        """Seconds spent in collections that ended between `t0` and `t1`."""
        return sum(self.seconds[bisect.bisect_left(self.ends, t0) : bisect.bisect_right(self.ends, t1)])


def collect_between_rounds() -> int:
    """A full collection, then what is left moved out of the collector's way, and the automatic collector off.

    For the processes whose speed a round must not depend on except through the CSMS under test: the load
    generator, and the floor, which stands for the wire's limit. Their automatic collections in a round walked the
    booted fleet's objects: 0.2-0.6 s per simulator process per round at 5,000 stations, and in the floor a full
    collection of 0.5-0.7 s in one round of three (10,000 stations), which doubled that round. Reference counting
    still frees all but cycles, which wait for the next round's collection. Returns what the collection found."""
    found = gc.collect()
    gc.freeze()
    gc.disable()
    return found
