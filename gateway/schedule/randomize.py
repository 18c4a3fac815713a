"""Per-station randomization of a directive's start and duration (IEEE 2030.5 RandomizableEvent).

Each station gets its own offset, uniform within the bound, derived from SHA-256(directive id, station id): the
same inputs always give the same offset, so an auditor can recompute every station's window from the record.
A positive bound delays (0..+bound), a negative one advances (bound..0), as 2030.5 randomizeStart allows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.model import Directive

_SCALE = float(1 << 64)


def station_fraction(directive_id: str, station_id: str, purpose: str) -> float:
    """A reproducible number in [0, 1) for this directive, station and purpose ("start" or "duration")."""
    digest = hashlib.sha256(f"{directive_id}\x00{station_id}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def offset_s(bound_s: int, fraction: float) -> float:
    """Uniform offset inside the bound: [0, bound) for a positive bound, (bound, 0] for a negative one."""
    return bound_s * fraction


@dataclass(frozen=True, slots=True)
class Window:
    """When a directive is in force at one station; `end` None = until cancelled."""

    start: datetime
    end: datetime | None
    start_offset_s: float
    duration_offset_s: float


def station_window(directive: Directive, station_id: str, *, received: datetime) -> Window:
    """The directive's window at `station_id`: start (or `received` when it has none) and duration, randomized."""
    start_shift = offset_s(directive.randomize_start_s, station_fraction(directive.id, station_id, "start"))
    duration_shift = offset_s(directive.randomize_duration_s, station_fraction(directive.id, station_id, "duration"))
    start = (directive.start or received) + timedelta(seconds=start_shift)
    if directive.duration_s is None:
        return Window(start, None, start_shift, duration_shift)
    duration = max(0.0, directive.duration_s + duration_shift)
    return Window(start, start + timedelta(seconds=duration), start_shift, duration_shift)


def station_directive(directive: Directive, station_id: str, received: datetime) -> Directive:
    """The directive as one station runs it: its own randomized start and duration (reproducible, see
    gateway.schedule.randomize); unchanged when the directive is not randomized."""
    if directive.is_default:
        return directive
    if not (directive.randomize_start_s or directive.randomize_duration_s):
        # A directive without a start begins when it was received, whenever it is (re)sent: a late send never
        # extends it, and every send of it carries the same content (reconciliation compares contents).
        return directive if directive.start is not None else directive.model_copy(update={"start": received})
    window = station_window(directive, station_id, received=received)
    duration = None if window.end is None else max(1.0, (window.end - window.start).total_seconds())
    return directive.model_copy(update={"start": window.start, "duration_s": duration})
