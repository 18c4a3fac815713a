"""Retry spacing shared by the utility links: equal jitter on a doubling, capped backoff, and which attempts of a
link retried at a fixed rate are worth an audit entry. Pure: the random source is passed in."""

from __future__ import annotations

import math
from collections.abc import Callable

#: A uniform random number in [0, 1]; `random.random` in production, a constant in tests.
Random = Callable[[], float]


def no_jitter() -> float:
    """The random source that keeps every wait at its full, un-jittered length (tests, and figures in docs)."""
    return 1.0


def doubled(base_s: float, doublings: int, cap_s: float) -> float:
    """`base_s` doubled `doublings` times (at most 32: no overflow after a long outage), never above `cap_s`."""
    return min(base_s * 2.0 ** min(doublings, 32), cap_s)


def jittered(delay_s: float, rand: Random) -> float:
    """Equal jitter: half of `delay_s` for sure, the other half spread at random. Links that failed together (a
    utility's VTN restarting under thousands of VENs) do not retry together, and none retries sooner than half the
    backoff; `rand() == 1` gives `delay_s` itself."""
    return delay_s / 2 + delay_s / 2 * min(max(rand(), 0.0), 1.0)


def worth_auditing(attempt: int, interval_s: float, cap_s: float = 600.0) -> bool:
    """For a link retried at a fixed interval (openleadr polls at the VTN's requested frequency): the failed attempts
    a doubling backoff would have made (1, 2, 4, 8, ...), then one every `cap_s`, so a link that stays down writes
    about as many audit entries as one that backs off."""
    every = max(1, math.floor(cap_s / interval_s))  # never more than cap_s without an entry
    if attempt >= every:
        return attempt % every == 0
    return attempt > 0 and attempt & (attempt - 1) == 0
