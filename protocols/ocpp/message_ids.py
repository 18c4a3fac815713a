"""OCPP-J message ids that sort in the order they were made: UUIDv7 text (RFC 9562, section 5.7).

The gateway audits every CALL it sends and the answer under its message id, and the audit indexes that column. Random
(version 4) ids land anywhere in that index, so each insert dirties another page and the cost per entry grows with the
log (31 against 17 µs per entry after 160,000 entries, `docs/performance.md`); ids that grow with time are appended at
the index's end. They stay unique ids of 36 characters, as OCPP-J allows, and carry 32 random bits besides a
millisecond timestamp and a counter, so two gateways or two runs do not collide.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["MessageIds", "new_message_id"]

_COUNTER_BITS = 42  # rand_a (12 bits) and the top 30 bits of rand_b: RFC 9562 method 1, a fixed-length counter
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_SEED_BITS = _COUNTER_BITS - 1  # a fresh millisecond starts the counter in its lower half: room to count up


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MessageIds:
    """Makes strictly increasing UUIDv7 strings, also when the wall clock steps back (the last time is kept)."""

    __slots__ = ("_counter", "_last_ms", "_now_ms", "_random")

    def __init__(self, now_ms: Callable[[], int] = _wall_ms, rng: random.Random | None = None) -> None:
        self._now_ms = now_ms
        self._random = rng or random.Random()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> str:
        ms = self._now_ms()
        if ms > self._last_ms:
            self._last_ms = ms
            self._counter = self._random.getrandbits(_SEED_BITS)
        elif self._counter < _COUNTER_MAX:
            self._counter += 1
        else:  # the counter ran out within one millisecond: borrow the next one
            self._last_ms += 1
            self._counter = self._random.getrandbits(_SEED_BITS)
        ms, counter = self._last_ms & 0xFFFF_FFFF_FFFF, self._counter
        rand_a = counter >> 30
        rand_b = (counter & 0x3FFF_FFFF) << 32 | self._random.getrandbits(32)
        value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


#: The process's generator: every CALL of this process, to any station, gets a larger id than the one before.
new_message_id = MessageIds()
