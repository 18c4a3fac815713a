"""The dashboard's event hub: one live view of the gateway, fanned out to every open dashboard.

Sources: the fleet registry (station changes, alarms), the dispatcher (directive events) and, on a timer, the
fleet's power against the limit in force, the utility links' health and the audit checkpoint. Station changes
are coalesced and sent once per tick, so a large fleet's meter values do not flood the browsers. Each subscriber
has a bounded queue; one that falls behind is dropped (its EventSource reconnects and gets a fresh snapshot)
rather than slowing the gateway or growing without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.fleet import Fleet, StationState
from gateway.interfaces import DirectiveEvent, DirectiveEventKind, UtilityAdapter
from gateway.model import Alarm, Directive, DirectiveState, OutcomeStatus, StationOutcome
from gateway.store import DirectiveRecord, Store

#: Directive states whose controls are (or are about to be) on the stations.
_LIVE = (DirectiveState.RECEIVED, DirectiveState.SCHEDULED, DirectiveState.ACTIVE)
_APPLIED = (OutcomeStatus.ACCEPTED, OutcomeStatus.PARTIAL)


@dataclass(frozen=True, slots=True)
class Message:
    """One server-sent event: its name and JSON data."""

    event: str
    data: Any


@dataclass
class Subscription:
    """One open dashboard's queue. `None` in the queue ends the stream (hub closed or subscriber too slow)."""

    queue: asyncio.Queue[Message | None]
    dropped: bool = False


@dataclass
class _InForce:
    """Per station: the controls applied by directives in force, and the lowest import limit among them."""

    controls: dict[str, list[str]] = field(default_factory=dict)
    limit_w: dict[str, float] = field(default_factory=dict)


def _applied(directive: Directive, outcomes: Iterable[StationOutcome]) -> dict[str, tuple[str, float | None]]:
    """Per station, the controls one directive applied there (accepted commands) and its import limit if applied."""
    held: dict[str, tuple[str, float | None]] = {}
    for outcome in outcomes:
        if outcome.status not in _APPLIED:
            continue
        applied = sorted({c for cmd in outcome.commands if cmd.status is OutcomeStatus.ACCEPTED for c in cmd.controls})
        if applied:
            limit = directive.controls.import_limit_w if "import_limit_w" in applied else None
            held[outcome.station_id] = (f"{directive.id}: {', '.join(applied)}", limit)
    return held


class EventHub:
    def __init__(
        self,
        fleet: Fleet,
        store: Store,
        audit: AuditLog,
        clock: Clock,
        adapters: Sequence[UtilityAdapter],
        *,
        interval_s: float = 1.0,
        history: int = 600,
        queue_size: int = 1000,
    ) -> None:
        self._fleet = fleet
        self._store = store
        self._audit = audit
        self._clock = clock
        self._adapters = adapters
        self.interval_s = interval_s
        self._queue_size = queue_size
        self._subscribers: list[Subscription] = []
        self._dirty: set[str] = set()
        self._samples: deque[dict[str, Any]] = deque(maxlen=history)
        self._alarms: deque[dict[str, Any]] = deque(maxlen=100)
        self._in_force = _InForce()
        #: Per live directive, what it applies per station: (controls text, import limit), from its outcomes.
        self._held: dict[str, dict[str, tuple[str, float | None]]] = {}
        self._links: list[dict[str, Any]] = []
        self._checkpoint: dict[str, Any] = {}
        for record in self._store.directives(states=_LIVE):
            self._held[record.directive.id] = _applied(record.directive, self._store.outcomes(record.directive.id))
        self._in_force = self._merge()

    # -- sources -----------------------------------------------------------------------------------------------

    def station_changed(self, station_id: str) -> None:
        """Fleet.on_change listener: sent with the next tick."""
        self._dirty.add(station_id)

    def alarm(self, alarm: Alarm) -> None:
        """Fleet.on_alarm listener: alarms go out at once, an operator wants them first."""
        row = alarm.model_dump(mode="json", exclude={"raw"})
        self._alarms.append(row)
        self._publish("alarm", row)

    async def directive_event(self, event: DirectiveEvent) -> None:
        """Dispatcher.on_event listener: the directive's row, and the stations whose controls in force changed."""
        record = self._store.directive(event.directive_id)
        if record is None:
            return
        if event.kind is not DirectiveEventKind.RECEIVED:
            # Only this directive's part changes, and the event carries its outcomes: nothing is read back from the
            # store (reading every live directive's outcomes held up fan-outs at 10,000 stations).
            before = self._in_force
            if record.state in _LIVE:
                self._held[record.directive.id] = _applied(record.directive, event.outcomes)
            else:
                self._held.pop(record.directive.id, None)
            self._in_force = self._merge()
            for sid in set(before.controls) | set(self._in_force.controls):
                if before.controls.get(sid) != self._in_force.controls.get(sid):
                    self._dirty.add(sid)
        if self._subscribers:  # the row counts outcomes in SQL: only for someone watching
            self._publish("directive", {**self._directive_row(record), "event": event.kind.value})

    # -- the periodic part -------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Send coalesced station changes, one power sample, and link or checkpoint changes."""
        if self._dirty:
            dirty, self._dirty = self._dirty, set()
            if not self._subscribers:  # rows are built for subscribers; one that joins later gets all in its snapshot
                dirty = set()
            present = [self._fleet.stations[sid] for sid in sorted(dirty) if sid in self._fleet.stations]
            if present:
                self._publish("stations", [self._station_row(s) for s in present])
            removed = sorted(sid for sid in dirty if sid not in self._fleet.stations)  # by a station reload
            if removed:
                self._publish("removed", removed)
        sample = self._sample()
        self._samples.append(sample)
        self._publish("sample", sample)
        links = self._link_rows()
        if links != self._links:
            self._links = links
            self._publish("links", links)
        checkpoint = self._checkpoint_row()
        if checkpoint != self._checkpoint:
            self._checkpoint = checkpoint
            self._publish("checkpoint", checkpoint)

    async def run(self) -> None:
        """Tick every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            self.tick()

    # -- subscribers -------------------------------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """A new subscriber; its first message is the full snapshot, so it never misses what came before."""
        sub = Subscription(asyncio.Queue(self._queue_size))
        sub.queue.put_nowait(Message("snapshot", self.snapshot()))
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def close(self) -> None:
        """End every stream (the API is shutting down; open streams would hold its shutdown)."""
        for sub in self._subscribers:
            self._end(sub)
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def snapshot(self) -> dict[str, Any]:
        return {
            "now": self._clock.now().isoformat(),
            "stations": [self._station_row(s) for s in self._fleet.stations.values()],
            "directives": [self._directive_row(r) for r in self._store.directives(limit=50)],
            "samples": list(self._samples),
            "alarms": list(self._alarms),
            "links": self._link_rows(),
            "checkpoint": self._checkpoint_row(),
        }

    def _publish(self, event: str, data: Any) -> None:
        message = Message(event, data)
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                self._subscribers.remove(sub)
                sub.dropped = True
                self._end(sub)

    @staticmethod
    def _end(sub: Subscription) -> None:
        while True:  # make room for the end marker: what was queued is stale for a subscriber being dropped
            try:
                sub.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()

    # -- rows --------------------------------------------------------------------------------------------------

    def _merge(self) -> _InForce:
        """What every station holds, from each live directive's part (lowest import limit wins)."""
        in_force = _InForce()
        for held in self._held.values():
            for station_id, (text, limit) in held.items():
                in_force.controls.setdefault(station_id, []).append(text)
                if limit is not None:
                    in_force.limit_w[station_id] = min(in_force.limit_w.get(station_id, limit), limit)
        return in_force

    def _station_row(self, s: StationState) -> dict[str, Any]:
        alarm = s.last_alarm
        return {
            "id": s.id,
            "groups": sorted(s.groups),
            "connected": s.connected,
            "version": s.version.value if s.version else None,
            "power_w": s.power_w,
            "controls": self._in_force.controls.get(s.id, []),
            "limit_w": self._in_force.limit_w.get(s.id),
            "last_alarm": alarm.model_dump(mode="json", exclude={"raw"}) if alarm else None,
            "last_seen": s.last_seen.isoformat() if s.last_seen else None,
        }

    def _directive_row(self, record: DirectiveRecord) -> dict[str, Any]:
        counts = self._store.outcome_counts(record.directive.id)
        d = record.directive
        return {
            "id": d.id,
            "state": record.state.value,
            "source": d.source.protocol.value,
            "priority": d.priority,
            "start": d.start.isoformat() if d.start else None,
            "duration_s": d.duration_s,
            "controls": sorted(d.controls.model_dump(exclude_none=True, exclude_defaults=True)),
            "counts": counts,
            "updated": record.updated.isoformat(),
        }

    def _sample(self) -> dict[str, Any]:
        """Fleet power (connected stations that reported) against the sum of the import limits in force; the
        limit covers only the stations that hold one, and says how many that is."""
        connected = [s for s in self._fleet.stations.values() if s.connected]
        limits = {sid: w for sid, w in self._in_force.limit_w.items() if sid in self._fleet.stations}  # not removed
        return {
            "at": self._clock.now().isoformat(),
            "power_w": sum(s.power_w for s in connected if s.power_w is not None),
            "limit_w": sum(limits.values()) if limits else None,
            "limited": len(limits),
            "connected": len(connected),
            "stations": len(self._fleet.stations),
        }

    def _link_rows(self) -> list[dict[str, Any]]:
        rows = []
        for adapter in self._adapters:
            health = adapter.health()
            rows.append(
                {
                    "protocol": adapter.protocol.value,
                    "ok": health.ok,
                    "last_seen": health.last_seen.isoformat() if health.last_seen else None,
                    "detail": health.detail,
                }
            )
        return rows

    def _checkpoint_row(self) -> dict[str, Any]:
        head = self._audit.head()
        entries = self._audit.size
        if head is None:
            return {"entries": entries, "tree_size": 0, "time": None, "unsigned": entries}
        signed = head.tree_size
        return {"entries": entries, "tree_size": signed, "time": head.time, "unsigned": entries - signed}
