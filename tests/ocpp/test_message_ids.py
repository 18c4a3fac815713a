"""Time-ordered OCPP message ids: valid UUIDv7 text, strictly increasing whatever the wall clock does."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from protocols.ocpp.message_ids import MessageIds, new_message_id


def _clock(times: list[int]) -> Iterator[int]:
    yield from times


@given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=1, max_size=200))
def test_ids_increase_and_are_uuid7_even_when_the_clock_steps_back(times: list[int]) -> None:
    ticks = _clock(times)
    ids = MessageIds(lambda: next(ticks), random.Random(7))
    made = [ids() for _ in times]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    for text, ms in zip(made, times, strict=True):
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert len(text) == 36
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 >= min(ms, max(times))  # the timestamp never goes back, never ahead of the clock


def test_the_timestamp_is_the_clock_in_milliseconds() -> None:
    ids = MessageIds(lambda: 1_764_000_000_123)
    assert uuid.UUID(ids()).int >> 80 == 1_764_000_000_123


def test_many_ids_in_one_millisecond_stay_ordered_past_the_counter() -> None:
    ids = MessageIds(lambda: 5, random.Random(1))
    ids._counter = (1 << 42) - 3  # near the end of the counter: the next ids borrow the next millisecond
    ids._last_ms = 5
    made = [ids() for _ in range(6)]
    assert made == sorted(made)
    assert len(set(made)) == 6
    assert uuid.UUID(made[-1]).int >> 80 == 6


def test_the_process_generator_orders_every_call() -> None:
    made = [new_message_id() for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == 1000
