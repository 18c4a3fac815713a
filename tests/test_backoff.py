"""gateway.backoff: equal jitter keeps every wait between half and all of the backoff, and a link retried at a fixed
rate is audited about as often as one that backs off (Hypothesis)."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from gateway.backoff import doubled, jittered, no_jitter, worth_auditing

delays = st.floats(min_value=0.001, max_value=86_400, allow_nan=False)
units = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(delays, units, units)
def test_equal_jitter_waits_between_half_and_all_of_the_backoff_and_grows_with_the_draw(
    delay: float, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert delay / 2 <= jittered(delay, lambda: low) <= jittered(delay, lambda: high) <= delay
    assert jittered(delay, no_jitter) == delay
    assert jittered(delay, lambda: 0.0) == delay / 2


@given(delays, st.floats(min_value=-5, max_value=5, allow_nan=False))
def test_a_draw_outside_0_1_is_clamped(delay: float, draw: float) -> None:
    assert delay / 2 <= jittered(delay, lambda: draw) <= delay


@given(st.floats(min_value=0.5, max_value=3600, allow_nan=False), st.integers(1, 20_000))
def test_a_link_down_for_n_attempts_is_audited_about_as_often_as_a_doubling_backoff(interval: float, n: int) -> None:
    audited = [k for k in range(1, n + 1) if worth_auditing(k, interval)]
    assert audited[0] == 1  # the first failure is always written
    every = max(1, math.floor(600 / interval))
    doubling = len([k for k in range(1, min(n, every - 1) + 1) if k & (k - 1) == 0])
    assert len(audited) == doubling + n // every  # 1, 2, 4 ... below the cap, then one per 600 s
    gaps = [b - a for a, b in itertools.pairwise(audited)]
    assert all(gap * interval <= max(600, interval) for gap in gaps)  # never more than 600 s without an entry


@given(st.floats(min_value=0.001, max_value=3600), st.integers(min_value=0, max_value=10_000), delays)
def test_doubling_grows_by_twice_each_time_up_to_its_cap(base: float, doublings: int, cap: float) -> None:
    wait = doubled(base, doublings, cap)
    assert wait == min(base * 2 ** min(doublings, 32), cap)
    assert wait <= cap
    assert doubled(base, doublings + 1, cap) == min(2 * wait, cap) or doublings >= 32
