"""When to read what: each resource's pollRate, and exponential backoff (with equal jitter) after failures. Pure: time
and the random source are arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.backoff import Random, doubled, jittered, no_jitter


@dataclass(slots=True)
class _Entry:
    due: datetime
    poll_s: float
    failures: int = 0


@dataclass(slots=True)
class PollPlan:
    """Next due time per key. A success schedules the key `pollRate` later; a failure backs off 2^n x base, capped,
    with equal jitter from `rand` (gateway.backoff.jittered: between half and all of it)."""

    backoff_base_s: float
    backoff_cap_s: float
    rand: Random = no_jitter
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def add(self, key: str, now: datetime, poll_s: float) -> None:
        """Due now; `poll_s` until the resource says otherwise."""
        if key not in self._entries:
            self._entries[key] = _Entry(now, poll_s)

    def due(self, now: datetime) -> list[str]:
        return [key for key, e in self._entries.items() if e.due <= now]

    def next_due(self) -> datetime | None:
        return min((e.due for e in self._entries.values()), default=None)

    def succeeded(self, key: str, now: datetime, poll_s: float | None = None) -> None:
        e = self._entries[key]
        if poll_s is not None:
            e.poll_s = poll_s
        e.failures = 0
        e.due = now + timedelta(seconds=e.poll_s)

    def failed(self, key: str, now: datetime) -> float:
        """Record a failure; returns the delay until the retry."""
        e = self._entries[key]
        e.failures += 1
        delay = jittered(doubled(self.backoff_base_s, e.failures - 1, self.backoff_cap_s), self.rand)
        e.due = now + timedelta(seconds=delay)
        return delay

    def overdue(self, now: datetime) -> list[str]:
        """Keys not read within their poll window: due more than one poll interval (or back-off) ago, which
        happens only when the poll loop stalled."""
        return [key for key, e in self._entries.items() if now - e.due > timedelta(seconds=e.poll_s)]

    def failures(self, key: str) -> int:
        return self._entries[key].failures if key in self._entries else 0

    def due_at(self, key: str) -> datetime:
        return self._entries[key].due
