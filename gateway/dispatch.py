"""Fan-out of directives to the fleet and collection of per-station outcomes.

For each target station: map the directive for its capabilities (mappings/), write the planned commands to the
store and the audit log, then send them one after another on that station's link. Stations are handled
concurrently, so a slow or dead station only delays itself.

At fleet scale the disk sets the pace (the audit log fsyncs every transaction), so writes are grouped: the plans of
stations whose capabilities are known are recorded in a few growing chunks, each chunk durable before any of its
frames leaves, and station answers and final outcomes are buffered and written together on the next turn of the
event loop (group commit, gateway.audit.group, shared with the fleet registry). Anything the dispatcher reads back
or writes durably takes that buffer along first, so the audit keeps its order: command.sent before the station's
answer, answers before the directive's next step. A directive's directive.created entry is written with the first
chunk's command.sent entries, ahead of them, so the first frame waits for one fsync; its station list, encoded in
the audit's canonical JSON, follows the first chunk in a directive.stations entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.audit.entry import AuditEntry
from gateway.audit.group import BatchAuditSink, GroupCommit
from gateway.audit.stationlist import directive_entries
from gateway.clock import Clock
from gateway.fleet import Fleet
from gateway.gcfreeze import frozen_during
from gateway.interfaces import DirectiveEvent, DirectiveEventKind, Reply, ReplyKind, StationLink
from gateway.model import (
    CommandOutcome,
    Directive,
    DirectiveState,
    OcppVersion,
    OutcomeStatus,
    StationCapabilities,
    StationOutcome,
    UnsupportedControl,
)
from gateway.reconcile import Item, clear_command, diff, held_der, held_profiles, number_of, wanted_at
from gateway.restorer import RestoreHooks, Restorer, RestoreSettings
from gateway.schedule import station_directive as _for_station
from gateway.schedule import station_fraction
from gateway.stacks import Stacks, Waits
from gateway.store import DirectiveRecord, Store
from gateway.supersession import superseded_by
from mappings import MappingResult, OcppCommand, map_clear, map_directive

log = logging.getLogger(__name__)

EventListener = Callable[[DirectiveEvent], Awaitable[None]]

#: Station answers (the `status` field of Set*/Clear* responses) and what they mean for the outcome.
_ANSWER_STATUS = {
    "Accepted": OutcomeStatus.ACCEPTED,
    "Rejected": OutcomeStatus.REJECTED,
    "NotSupported": OutcomeStatus.NOT_SUPPORTED,
    "NotFound": OutcomeStatus.REJECTED,
    "Unknown": OutcomeStatus.REJECTED,
}
#: States a directive cannot leave.
_ENDED = (DirectiveState.CANCELLED, DirectiveState.COMPLETED, DirectiveState.SUPERSEDED)
#: Ended before their time: what a station still holds of them is in force until removed.
_REMOVED = (DirectiveState.CANCELLED, DirectiveState.SUPERSEDED)
#: Answers to a clear that leave the station without the directive's controls.
_CLEARED_ANSWERS = frozenset({"Accepted", "NotFound", "Unknown"})
#: CALLERROR codes that mean "this station cannot do that" rather than a fault.
_UNSUPPORTED_ERRORS = frozenset({"NotSupported", "NotImplemented"})
#: States in which an offline station still owes a directive.
RESEND_STATUSES = (OutcomeStatus.OFFLINE.value,)
#: Stations planned in the first write of a fan-out (small: it delays the first frame) and the most in one write;
#: chunks grow fourfold in between.
_FIRST_CHUNK = 16
_MAX_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class _Plan:
    """One station's part of a fan-out: what it gets, and the message id each command will use."""

    station_id: str
    result: MappingResult
    message_ids: list[str]
    #: Profiles held back until a stack level frees, from then on (gateway.stacks).
    deferred: datetime | None = None


class TargetError(ValueError):
    """A directive names stations or groups the gateway does not know."""


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    call_timeout_s: float = 30.0
    #: How long to wait for a connected station's capabilities before mapping for it.
    capabilities_wait_s: float = 15.0
    #: Ramped, staggered restore after a curtailment (gateway/restorer.py).
    restore: RestoreSettings = field(default_factory=RestoreSettings)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        link: StationLink,
        audit: BatchAuditSink | GroupCommit,
        clock: Clock,
        settings: DispatchSettings | None = None,
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._link = link
        #: Shared with the fleet registry (gateway.runtime), so their entries keep one order.
        self._audit = GroupCommit.over(audit)
        self._audit.before_flush(self._save_later_outcomes)
        self._clock = clock
        self.settings = settings or DispatchSettings()
        self._runs: dict[str, asyncio.Task[list[StationOutcome]]] = {}
        self._resends: set[asyncio.Task[None]] = set()
        self._listeners: list[EventListener] = []
        self._tick_lock = asyncio.Lock()
        self._later_outcomes: list[StationOutcome] = []
        #: Reports a station query waits for: (station, requestId) -> (payloads so far, complete).
        self._reports: dict[tuple[str, int], tuple[list[Mapping[str, Any]], asyncio.Future[None]]] = {}
        self._request_ids = itertools.count(1)
        self._reconciling: dict[str, asyncio.Lock] = {}
        #: The stack-level snapshot of each fan-out under way (gateway.stacks), by directive id.
        self._stacks: dict[str, Stacks] = {}
        #: directive.stations entries of new directives, written after their first chunk.
        self._station_lists: dict[str, AuditEntry] = {}
        self._waits = Waits()
        #: Timed clears under way: (directive id, station id).
        self._clearing: set[tuple[str, str]] = set()
        #: The directive as one station is to hold it (gateway.sharing puts its share of an aggregate limit in).
        self._variant: Callable[[Directive, str], Directive] = lambda directive, _: directive
        hooks = RestoreHooks(
            self._call, self._outcomes, self._record, self._append, clock.now, _for_station,
            self._station_commands, self._spawn,
        )  # fmt: skip
        self._restorer = Restorer(store, fleet, self.settings.restore, hooks)
        fleet.on_ready(self._station_ready)
        fleet.on_message(self._on_report)

    def set_variant(self, variant: Callable[[Directive, str], Directive]) -> None:
        """Map every directive through `variant(directive, station_id)` before it is mapped for that station."""
        self._variant = variant

    async def reapply(self, directive_id: str, station_id: str) -> StationOutcome | None:
        """Send one connected station the directive as it should hold it now (its share of an aggregate limit
        changed): same OCPP ids, so the station replaces in place. None when nothing was sent."""
        async with self._reconciling.setdefault(station_id, asyncio.Lock()):
            record = self._store.directive(directive_id)
            state = self._fleet.stations.get(station_id)
            caps = None if state is None else state.capabilities
            if record is None or record.state in _ENDED or caps is None or not self._link.is_connected(station_id):
                return None
            plan = self._plan(record.directive, record.number, station_id, caps, record.created, None, None)
            self._commit(directive_id, [plan])
            return await self._send(directive_id, plan)

    def resolve(self, directive: Directive) -> list[str]:
        """Station ids a directive is for; TargetError for unknown stations or groups."""
        try:
            return self._fleet.resolve(directive.target)
        except KeyError as exc:
            raise TargetError(str(exc.args[0])) from None

    async def submit(self, directive: Directive) -> DirectiveRecord:
        """Persist a new directive and start its fan-out; returns at once (outcomes follow)."""
        stations = self.resolve(directive)
        if self._store.directive(directive.id) is not None:
            raise TargetError(f"directive {directive.id} already exists")
        now = self._clock.now()
        number = self._store.add_directive(directive, DirectiveState.RECEIVED, now)
        # directive.created goes to disk with the first chunk's command.sent entries (one fsync before the first
        # frame), ahead of them; any durable write before that (a listener's) takes it along first. The flush is
        # scheduled after the fan-out's first step, so with no chunk to plan it is written on the next turn. It
        # carries the station list's digest; the list follows the first chunk (gateway.audit.stationlist).
        created, self._station_lists[directive.id] = directive_entries(
            directive.model_dump(mode="json"), number, stations, now, signal_id=directive.source.signal_id
        )
        self._audit.later(created, schedule=False)
        await self._emit(DirectiveEvent(directive.id, DirectiveEventKind.RECEIVED, now))
        self._runs[directive.id] = self._track(
            directive.id, asyncio.create_task(frozen_during(self._fanout(directive, number, stations, now)))
        )
        self._audit.schedule()
        return DirectiveRecord(number, directive, DirectiveState.RECEIVED, now, now)

    async def change(self, directive: Directive) -> DirectiveRecord:
        """A utility changed a directive it sent before (same id).

        The new version goes out under the same OCPP ids, so stations replace what they hold in place (a
        SetDERControl or charging profile with a known id replaces it) with no gap; ids the new version no longer
        uses are cleared, and stations no longer targeted are cleared. An identical resubmission changes nothing.
        """
        previous = self._store.directive(directive.id)
        if previous is None:
            return await self.submit(directive)
        if previous.state in _ENDED:
            raise TargetError(f"directive {directive.id} has ended ({previous.state.value}); a change needs a new id")
        if previous.directive == directive:
            return previous
        stations = self.resolve(directive)
        run = self._runs.get(directive.id)
        if run is not None:
            await asyncio.shield(run)
        now = self._clock.now()
        self._store.replace_directive(directive, DirectiveState.RECEIVED, now)
        self._audit.append_many(
            directive_entries(
                directive.model_dump(mode="json"),
                previous.number,
                stations,
                now,
                signal_id=directive.source.signal_id,
                changed=True,
            )
        )
        await self._emit(DirectiveEvent(directive.id, DirectiveEventKind.RECEIVED, now))
        dropped = [o for o in self._outcomes(directive.id) if o.station_id not in stations]
        self._runs[directive.id] = self._track(
            directive.id,
            asyncio.create_task(
                frozen_during(
                    self._fanout(directive, previous.number, stations, previous.created, previous.directive, dropped)
                )
            ),
        )
        return DirectiveRecord(previous.number, directive, DirectiveState.RECEIVED, previous.created, now)

    def _track(self, directive_id: str, run: asyncio.Task[list[StationOutcome]]) -> asyncio.Task[list[StationOutcome]]:
        """Keep a fan-out while it runs, and after it if it failed (wait() raises its error); one that finished is
        forgotten, with its outcome list (its outcomes are in the store): kept, they added up with every directive."""

        def forget(task: asyncio.Task[list[StationOutcome]]) -> None:
            if self._runs.get(directive_id) is task and not task.cancelled() and task.exception() is None:
                del self._runs[directive_id]

        run.add_done_callback(forget)
        return run

    async def wait(self, directive_id: str) -> list[StationOutcome]:
        """Outcomes once the fan-out of `directive_id` has finished."""
        run = self._runs.get(directive_id)
        if run is not None:
            await asyncio.shield(run)
        return self._outcomes(directive_id)

    async def cancel(
        self, directive_id: str, *, superseded: bool = False, randomize_s: int = 0, by: str | None = None
    ) -> DirectiveRecord:
        """Remove a directive from every station that holds it (ClearDERControl / ClearChargingProfile);
        `superseded` when the utility replaced it with another (2030.5 EventStatus superseded), or the gateway
        found directive `by` in force wherever and whenever it would be (gateway.supersession). With
        `randomize_s` (2030.5 cancel with randomization) each station's clear waits its own reproducible offset in
        [0, |randomize_s|); the owed clears are stored and sent by the timer.

        Cancelling a directive that already ended (completed, cancelled or superseded) changes nothing."""
        record = self._store.directive(directive_id)
        if record is None:
            raise KeyError(directive_id)
        if record.state in _ENDED:
            return record
        run = self._runs.get(directive_id)
        if run is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run)
        now = self._clock.now()
        state = DirectiveState.SUPERSEDED if superseded else DirectiveState.CANCELLED
        self._store.set_directive_state(directive_id, state, now)
        data: dict[str, Any] = {"number": record.number} if by is None else {"number": record.number, "by": by}
        self._append(f"directive.{state.value}", data, at=now, directive_id=directive_id)
        holders = [
            o for o in self._outcomes(directive_id) if any(c.status is OutcomeStatus.ACCEPTED for c in o.commands)
        ]
        if randomize_s:
            self._defer_clears(directive_id, [o.station_id for o in holders], abs(randomize_s), now)
            holders = []
        # A fleet-wide cancel sends as many commands as the fan-out did: the collector stays away the same way.
        await frozen_during(asyncio.gather(*(self._clear_station(record, o) for o in holders)))
        outcomes = tuple(self._outcomes(directive_id))
        kind = DirectiveEventKind.SUPERSEDED if superseded else DirectiveEventKind.CANCELLED
        detail = None if by is None else f"superseded by {by}"
        await self._emit(DirectiveEvent(directive_id, kind, self._clock.now(), outcomes, detail))
        refreshed = self._store.directive(directive_id)
        assert refreshed is not None
        return refreshed

    def resends(self) -> list[asyncio.Task[None]]:
        """Resends to reconnected stations still under way (tests and shutdown await them)."""
        return list(self._resends)

    def in_flight(self) -> list[asyncio.Task[object]]:
        """Fan-outs and resends not finished yet: a graceful shutdown lets them complete (bounded)."""
        return [t for t in (*self._runs.values(), *self._resends) if not t.done()]

    async def close(self) -> None:
        tasks = [*self._runs.values(), *self._resends]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.flush()

    # -- writes ------------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered outcomes and audit entries now (outcomes first: the audit follows the state)."""
        self._audit.flush()

    def _save_later_outcomes(self) -> None:
        if self._later_outcomes:
            self._store.save_outcomes(self._later_outcomes, self._clock.now())
            self._later_outcomes = []

    def _later(self, outcome: StationOutcome | None = None, entry: AuditEntry | None = None) -> None:
        """Buffer a write; everything buffered in one turn of the event loop is written at the start of the next."""
        if outcome is not None:
            self._later_outcomes.append(outcome)
        if entry is not None:
            self._audit.later(entry)
        else:
            self._audit.schedule()

    def _append(self, kind: str, data: Mapping[str, Any], **fields: Any) -> None:
        """One audit entry, on disk when this returns, after (and with) everything buffered before it."""
        self._audit.append(kind, data, **fields)

    def _outcomes(self, directive_id: str) -> list[StationOutcome]:
        self.flush()
        return self._store.outcomes(directive_id)

    def _outcome(self, directive_id: str, station_id: str) -> StationOutcome | None:
        self.flush()
        return self._store.outcome(directive_id, station_id)

    # -- fan-out -----------------------------------------------------------------------------------------------

    async def _fanout(
        self,
        directive: Directive,
        number: int,
        stations: Sequence[str],
        received: datetime,
        previous: Directive | None = None,
        dropped: Sequence[StationOutcome] = (),
    ) -> list[StationOutcome]:
        if previous is not None and dropped:
            record = DirectiveRecord(number, previous, DirectiveState.ACTIVE, received, received)
            await asyncio.gather(*(self._clear_station(record, o) for o in dropped))
        outcomes = await self._apply_all(directive, number, stations, received, previous)
        await self._restorer.directive_added(directive, stations)  # ramps planned without it are planned again
        self.flush()
        now = self._clock.now()
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        current = self._store.directive(directive.id)
        if current is not None and current.state is DirectiveState.RECEIVED:
            self._store.set_directive_state(directive.id, DirectiveState.SCHEDULED, now)
            self._append("directive.scheduled", {"outcomes": counts}, at=now, directive_id=directive.id)
            refused = {OutcomeStatus.REJECTED, OutcomeStatus.NOT_SUPPORTED, OutcomeStatus.ERROR}
            kind = (
                DirectiveEventKind.REJECTED
                if outcomes and all(o.status in refused for o in outcomes)
                else DirectiveEventKind.PARTIAL
                if any(o.status is not OutcomeStatus.ACCEPTED for o in outcomes)
                else DirectiveEventKind.SCHEDULED
            )
            await self._emit(DirectiveEvent(directive.id, kind, now, tuple(outcomes)))
            for older in superseded_by(self._store, self._targets, current, outcomes, now):
                await self.cancel(older, superseded=True, by=directive.id)
            await self.tick()
        return list(outcomes)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def on_event(self, listener: EventListener) -> None:
        """Call `listener` with every DirectiveEvent (the runtime routes them to the directive's source)."""
        self._listeners.append(listener)

    async def _emit(self, event: DirectiveEvent) -> None:
        for listener in self._listeners:
            await listener(event)

    async def tick(self) -> datetime | None:
        """Move directives whose start or end has passed (scheduled -> active -> completed); return the next due
        time. Starts and ends are the directive's nominal window; stations apply their randomized own."""
        async with self._tick_lock:  # the timer and a fan-out may tick at once; each transition happens once
            return await self._tick()

    async def _tick(self) -> datetime | None:
        now = self._clock.now()
        due: list[datetime] = []
        for record in self._store.live_directives():
            if record.state is DirectiveState.RECEIVED:
                continue  # its fan-out is under way
            d = record.directive
            if d.is_default:
                if record.state is DirectiveState.SCHEDULED:
                    await self._transition(record, DirectiveState.ACTIVE, DirectiveEventKind.STARTED, now)
                continue
            start = d.start or record.created
            end = d.end(record.created)
            if record.state is DirectiveState.SCHEDULED:
                if start > now:
                    due.append(start)
                    continue
                await self._transition(record, DirectiveState.ACTIVE, DirectiveEventKind.STARTED, now)
            if end is not None and end <= now:
                await self._transition(record, DirectiveState.COMPLETED, DirectiveEventKind.COMPLETED, now)
            elif end is not None:
                due.append(end)
        due.extend(self._start_due_clears(now))
        waited, ahead = self._waits.take(now)
        for station_id in waited:  # a stack level frees: what waited for it goes out
            self._station_ready(station_id)
        due.extend(ahead)
        due.extend(self._restorer.ahead(now))
        return min(due, default=None)

    async def _transition(
        self, record: DirectiveRecord, state: DirectiveState, kind: DirectiveEventKind, now: datetime
    ) -> None:
        self._store.set_directive_state(record.directive.id, state, now)
        self._append(f"directive.{state.value}", {"number": record.number}, at=now, directive_id=record.directive.id)
        await self._emit(DirectiveEvent(record.directive.id, kind, now, tuple(self._outcomes(record.directive.id))))

    async def run_timer(self, *, max_wait_s: float = 1.0) -> None:
        """Call tick() at each due time (at least every `max_wait_s`) until cancelled."""
        while True:
            due = await self.tick()
            wait = max_wait_s if due is None else (due - self._clock.now()).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), max_wait_s))

    async def _apply_all(
        self,
        directive: Directive,
        number: int,
        stations: Sequence[str],
        received: datetime,
        previous: Directive | None,
    ) -> list[StationOutcome]:
        """Every station's outcome, in the order of `stations`.

        Stations whose capabilities are known are planned here in chunks: each chunk's plans are written in one
        transaction and its commands start at once, so the first frames leave after one small write while later
        chunks are being planned. The others (offline, or capabilities still being read) go one by one.
        """
        self._stacks[directive.id] = self._load_stacks()
        try:
            return await self._apply_stations(directive, number, stations, received, previous)
        finally:
            self._stacks.pop(directive.id, None)
            self._list_stations(directive.id)  # a fan-out that failed before its first chunk

    async def _apply_stations(
        self,
        directive: Directive,
        number: int,
        stations: Sequence[str],
        received: datetime,
        previous: Directive | None,
    ) -> list[StationOutcome]:
        waiting: list[asyncio.Future[StationOutcome]] = []
        running: list[asyncio.Future[StationOutcome]] = []
        mapped: dict[StationCapabilities, MappingResult] = {}
        chunk: list[tuple[str, StationCapabilities]] = []
        size = _FIRST_CHUNK
        for sid in stations:  # the first chunk is planned and sent before the rest are looked at
            state = self._fleet.stations.get(sid)  # None: removed by a reload since the targets were resolved
            caps = state.capabilities if state is not None else None
            if (
                caps is not None
                and state is not None
                and state.capabilities_ready.is_set()
                and self._link.is_connected(sid)
            ):
                chunk.append((sid, caps))
                if len(chunk) == size:
                    running.extend(await self._start_chunk(directive, number, chunk, received, previous, mapped))
                    chunk, size = [], min(size * 4, _MAX_CHUNK)
            else:
                waiting.append(asyncio.ensure_future(self._apply(directive, number, sid, received, previous)))
        if chunk:
            running.extend(await self._start_chunk(directive, number, chunk, received, previous, mapped))
        self._list_stations(directive.id)  # no chunk: written with what comes next
        outcomes = await asyncio.gather(*running, *waiting)
        by_station = {o.station_id: o for o in outcomes}
        return [by_station[sid] for sid in stations]

    async def _start_chunk(
        self,
        directive: Directive,
        number: int,
        chunk: Sequence[tuple[str, StationCapabilities]],
        received: datetime,
        previous: Directive | None,
        mapped: dict[StationCapabilities, MappingResult],
    ) -> list[asyncio.Future[StationOutcome]]:
        """Plan and record one chunk, start its sends, and yield so its frames go out before the next chunk."""
        plans = [self._plan(directive, number, sid, caps, received, previous, mapped) for sid, caps in chunk]
        self._commit(directive.id, plans)
        sends: list[asyncio.Future[StationOutcome]] = [
            asyncio.ensure_future(self._send(directive.id, plan)) for plan in plans
        ]
        self._list_stations(directive.id)  # after the sends: its flush runs once their frames are out
        await asyncio.sleep(0)
        return sends

    def _list_stations(self, directive_id: str) -> None:
        """Buffer the directive.stations entry of a new directive (once, after its first chunk)."""
        entry = self._station_lists.pop(directive_id, None)
        if entry is not None:
            self._audit.later(entry)

    async def _apply(
        self,
        directive: Directive,
        number: int,
        station_id: str,
        received: datetime,
        previous: Directive | None = None,
    ) -> StationOutcome:
        """One station on its own: wait (bounded) for its capabilities, then plan, record and send."""
        state = self._fleet.stations.get(station_id)
        now = self._clock.now()
        if state is None or not self._link.is_connected(station_id):  # offline, or removed by a reload
            outcome = StationOutcome(
                directive_id=directive.id, station_id=station_id, status=OutcomeStatus.OFFLINE, updated=now
            )
            self._record(outcome, "station offline: kept, sent when it reconnects")
            return outcome
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.capabilities_ready.wait(), self.settings.capabilities_wait_s)
        caps = state.capabilities
        if caps is None:
            outcome = StationOutcome(
                directive_id=directive.id, station_id=station_id, status=OutcomeStatus.OFFLINE, updated=now
            )
            self._record(outcome, "station capabilities unknown: kept, sent when they are read")
            return outcome
        plan = self._plan(directive, number, station_id, caps, received, previous, None)
        await self._commit_grouped(directive.id, [plan])
        return await self._send(directive.id, plan)

    def _plan(
        self,
        directive: Directive,
        number: int,
        station_id: str,
        caps: StationCapabilities,
        received: datetime,
        previous: Directive | None,
        mapped: dict[StationCapabilities, MappingResult] | None,
    ) -> _Plan:
        """Map the directive for one station. Without per-station randomization the mapping depends only on the
        capabilities, so `mapped` reuses it across the stations of a fan-out (the payload objects are shared and
        never mutated)."""
        own = self._variant(_for_station(directive, station_id, received), station_id)
        result = mapped.get(caps) if mapped is not None and own is directive else None
        if result is None:
            evse_id = directive.target.evse_id
            result = map_directive(own, caps, number=number, now=self._clock.now(), evse_id=evse_id)
            if previous is not None:  # a changed directive: clear the ids the new version no longer uses
                kept = {c.target_id() for c in result.commands}
                old = map_clear(previous, caps, number=number, evse_id=previous.target.evse_id)
                stale = tuple(c for c in old.commands if c.target_id() not in kept)
                result = MappingResult(commands=result.commands + stale, unsupported=result.unsupported)
            if mapped is not None and own is directive:
                mapped[caps] = result
        stacks = self._stacks.get(directive.id) or self._load_stacks()
        result, wait = stacks.restack(station_id, caps, number, result, self._clock.now())
        if wait is not None:
            self._waits.add(station_id, wait)
        return self._planned(station_id, result, wait)

    def _load_stacks(self) -> Stacks:
        return Stacks.load(self._store, self._fleet.aims_at, self._clock.now(), self.settings.restore)

    def _station_commands(self, record: DirectiveRecord, station_id: str, caps: StationCapabilities) -> MappingResult:
        """What a station is sent for a directive, as fan-out and reconciliation map it (its own window and share,
        at its stack level; a directive without a start begins when received, so the result does not depend on when
        this is called): the restorer replaces these profiles in place."""
        d = record.directive
        own = self._variant(_for_station(d, station_id, record.created), station_id)
        result = map_directive(own, caps, number=record.number, now=record.created, evse_id=d.target.evse_id)
        stacks = self._stacks.get(d.id) or self._load_stacks()
        return stacks.restack(station_id, caps, record.number, result, self._clock.now())[0]

    def _planned(self, station_id: str, result: MappingResult, deferred: datetime | None = None) -> _Plan:
        """The commands of `result` as planned for one station, each with the message id it will use."""
        return _Plan(station_id, result, [self._link.new_message_id() for _ in result.commands], deferred)

    def _commit(self, directive_id: str, plans: Sequence[_Plan]) -> None:
        """Record plans before anything of them is sent: command.sent for every command in one audit transaction
        (which also holds the entries buffered before), and their pending outcomes in the store's memory (in flight:
        the answers' outcomes are written, see Store.hold_in_flight), made only if read before the answers come."""
        now = self._clock.now()
        self._hold(directive_id, plans, now)
        self._audit.append_many(_sent_entries(directive_id, plans, now))

    async def _commit_grouped(self, directive_id: str, plans: Sequence[_Plan]) -> None:
        """As `_commit`, for one station sent to on its own (a reconnect, capabilities read late): its command.sent
        goes to disk with the other stations' of this turn of the event loop. A reconnect storm wrote (and signed)
        one transaction per station."""
        now = self._clock.now()
        await self._audit.durable(*_sent_entries(directive_id, plans, now))
        self._hold(directive_id, plans, now)

    def _hold(self, directive_id: str, plans: Sequence[_Plan], now: datetime) -> None:
        """The plans' pending outcomes, held in the store's memory while their commands are in flight."""
        self._save_later_outcomes()  # earlier outcomes first: a plan's pending outcome may replace one of them
        by_station = {p.station_id: p for p in plans}

        def pending(station_id: str) -> StationOutcome:
            plan = by_station[station_id]
            commands = [
                CommandOutcome(
                    action=c.action,
                    message_id=message_id,
                    controls=list(c.controls),
                    status=OutcomeStatus.PENDING,
                    detail=c.note,
                )
                for c, message_id in zip(plan.result.commands, plan.message_ids, strict=True)
            ]
            return _summarize(directive_id, station_id, commands, list(plan.result.unsupported), now)

        self._store.hold_in_flight(
            directive_id,
            {p.station_id: _status(_PENDING if p.message_ids else frozenset(), p.result.unsupported) for p in plans},
            pending,
        )

    async def _send(self, directive_id: str, plan: _Plan) -> StationOutcome:
        """Send one station's recorded commands in order (each waits for the previous answer)."""
        commands = [
            await self._exchange(directive_id, plan.station_id, command, message_id, command.note)
            for command, message_id in zip(plan.result.commands, plan.message_ids, strict=True)
        ]
        outcome = _summarize(directive_id, plan.station_id, commands, list(plan.result.unsupported), self._clock.now())
        note = None
        if plan.deferred is not None:  # every stack level is taken: the rest goes when one frees
            note = f"stack levels full: held back until {plan.deferred.isoformat()}"
            if not commands:
                outcome = outcome.model_copy(update={"status": OutcomeStatus.PENDING})
        self._record(outcome, note)
        return outcome

    async def _call(
        self, directive_id: str, station_id: str, command: OcppCommand, detail: str | None = None
    ) -> CommandOutcome:
        """Record and send one command on its own (clears, restores): command.sent is on disk before the frame
        leaves, written with the other stations' clears of this turn of the event loop in one transaction."""
        message_id = self._link.new_message_id()
        await self._audit.durable(sent_entry(directive_id, station_id, command, message_id, self._clock.now()))
        return await self._exchange(directive_id, station_id, command, message_id, detail)

    async def _exchange(
        self, directive_id: str, station_id: str, command: OcppCommand, message_id: str, detail: str | None
    ) -> CommandOutcome:
        """Send a command whose command.sent is on disk; buffer the answer's audit entry. `detail` goes into the
        outcome's, ahead of what the answer says."""
        reply = await self._link.call(
            station_id, command.action, command.payload, timeout=self.settings.call_timeout_s, message_id=message_id
        )
        status, answer, said = _judge(reply)
        if command.action.startswith("Clear") and answer in _CLEARED_ANSWERS:
            status = OutcomeStatus.CLEARED
        answered = self._clock.now()
        self._later(
            entry=AuditEntry(
                "station.answer",
                answer_data(reply, answer),
                answered,
                directive_id=directive_id,
                station_id=station_id,
                message_id=message_id,
            )
        )
        note = " / ".join(p for p in (detail, said) if p) or None
        return CommandOutcome(
            action=command.action,
            message_id=message_id,
            controls=list(command.controls),
            status=status,
            answer=answer,
            detail=note,
            at=answered,
        )

    def _record(self, outcome: StationOutcome, note: str | None = None) -> None:
        entry = None
        if note is not None:
            entry = AuditEntry(
                "directive.outcome",
                {"status": outcome.status.value, "note": note},
                self._clock.now(),
                directive_id=outcome.directive_id,
                station_id=outcome.station_id,
            )
        self._later(outcome, entry)

    # -- clearing and resending --------------------------------------------------------------------------------

    async def _clear_station(
        self, record: DirectiveRecord, outcome: StationOutcome, *, utility_spread: bool = False
    ) -> None:
        """Clear what one station accepted; answers that it holds nothing (NotFound, Unknown) count as cleared.
        Limit profiles are replaced by restore ramps instead (gateway/restorer.py), which lapse by themselves."""
        state = self._fleet.stations.get(outcome.station_id)
        caps = state.capabilities if state is not None else None
        if caps is None:  # capabilities unknown, or the station was removed by a reload (and disconnected)
            return
        ramps = await self._restorer.replace(record, outcome.station_id, utility_spread=utility_spread)
        ramped = {ident for ident, done in ramps if done.status is OutcomeStatus.ACCEPTED}
        result = map_clear(record.directive, caps, number=record.number, evse_id=record.directive.target.evse_id)
        directive_id = record.directive.id
        clears = [
            await self._call(directive_id, outcome.station_id, command)
            for command in result.commands
            if command.target_id() not in ramped
        ]
        done = all(c.answer in _CLEARED_ANSWERS for c in clears)
        worst = _summarize(directive_id, outcome.station_id, clears, [], self._clock.now()).status
        status = OutcomeStatus.CLEARED if done else worst
        commands = [*outcome.commands, *(ramp for _, ramp in ramps), *clears]
        self._record(outcome.model_copy(update={"status": status, "commands": commands, "updated": self._clock.now()}))

    # -- timed clears (cancel with randomization) --------------------------------------------------------------

    def _defer_clears(self, directive_id: str, station_ids: Sequence[str], bound_s: int, now: datetime) -> None:
        """Store each holder's clear at now + bound x station_fraction(directive, station, "cancel")."""
        dues = [
            (sid, now + timedelta(seconds=bound_s * station_fraction(directive_id, sid, "cancel")))
            for sid in station_ids
        ]
        self._store.add_pending_clears(directive_id, dues)
        self._append(
            "directive.outcome",
            {"status": "clear-scheduled", "randomize_s": bound_s, "stations": len(dues)},
            at=now,
            directive_id=directive_id,
        )

    def _start_due_clears(self, now: datetime) -> list[datetime]:
        """Start the owed clears that are due (each once); return the due times still ahead."""
        ahead: list[datetime] = []
        for directive_id, station_id, due in self._store.pending_clears():
            if due > now:
                ahead.append(due)
                continue
            if (directive_id, station_id) in self._clearing:
                continue
            self._clearing.add((directive_id, station_id))
            task = asyncio.ensure_future(self._timed_clear(directive_id, station_id))
            self._resends.add(task)
            task.add_done_callback(self._resends.discard)
        return ahead[:1]

    async def _timed_clear(self, directive_id: str, station_id: str) -> None:
        try:
            record = self._store.directive(directive_id)
            outcome = self._outcome(directive_id, station_id)
            if record is not None and outcome is not None and self._link.is_connected(station_id):
                await self._clear_station(record, outcome, utility_spread=True)
            # An offline station is cleared by reconciliation when it is back (the directive is no longer wanted).
            self._store.drop_pending_clear(directive_id, station_id)
        finally:
            self._clearing.discard((directive_id, station_id))

    # -- restart -----------------------------------------------------------------------------------------------

    async def resume(self) -> None:
        """After a restart (even a SIGKILL): directives whose fan-out was cut short count as scheduled, their
        stations that had not answered (or not been reached) are offline-queued, and the timer carries on from the
        store. Stations reconnect and reconciliation sends each what it lacks."""
        now = self._clock.now()
        for record in self._store.directives([DirectiveState.RECEIVED]):
            did = record.directive.id
            outcomes = {o.station_id: o for o in self._outcomes(did)}
            for sid in self._targets(record.directive):
                outcome = outcomes.get(sid) or StationOutcome(
                    directive_id=did, station_id=sid, status=OutcomeStatus.PENDING
                )
                if not outcome.status.final:  # its answer (or its turn) was lost with the process
                    self._record(
                        outcome.model_copy(update={"status": OutcomeStatus.OFFLINE, "updated": now}),
                        "fan-out cut short by a restart: kept, sent when the station reconnects",
                    )
            self._store.set_directive_state(did, DirectiveState.SCHEDULED, now)
            self._append("directive.scheduled", {"resumed": True}, at=now, directive_id=did)
        await self.tick()

    # -- reconciliation on reconnect ---------------------------------------------------------------------------

    def _station_ready(self, station_id: str) -> None:
        """A station is (back) with its capabilities read: bring what it holds in line with what should be in
        force there (docs/dispatch.md, "Reconciliation")."""
        self._spawn(self.reconcile(station_id))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    async def reconcile(self, station_id: str) -> None:
        """Query what `station_id` holds and send only the difference from what should be in force now; one at a
        time per station."""
        lock = self._reconciling.setdefault(station_id, asyncio.Lock())
        async with lock:
            self._save_later_outcomes()  # buffered outcomes of earlier fan-outs: part of what it should hold
            await self._reconcile(station_id)

    def _targets(self, directive: Directive) -> list[str]:
        try:
            return self._fleet.resolve(directive.target)
        except KeyError:
            return []

    async def _reconcile(self, station_id: str) -> None:
        # Fan-outs under way for this station finish first, so what they sent is part of what it reports.
        running = [
            run
            for did, run in list(self._runs.items())
            if not run.done()
            and (r := self._store.directive(did)) is not None
            and self._fleet.aims_at(r.directive.target, station_id)
        ]
        await asyncio.gather(*(asyncio.shield(run) for run in running), return_exceptions=True)
        state = self._fleet.stations.get(station_id)
        caps = state.capabilities if state is not None else None
        if caps is None or not self._link.is_connected(station_id):
            return
        now = self._clock.now()
        in_flight = {did for did, run in self._runs.items() if not run.done()}
        timed = {did for did, sid, _ in self._store.pending_clears() if sid == station_id}
        ramping = self._restorer.under_way(station_id, now)  # restore ramps it follows stay as they are
        self._restorer.station_back()
        keep: set[int] = set(ramping)
        desired: list[tuple[str, OcppCommand]] = []
        unsupported: dict[str, tuple[UnsupportedControl, ...]] = {}
        stacks = self._load_stacks()
        for record in self._store.live_directives():
            d = record.directive
            if not self._fleet.aims_at(d.target, station_id):
                continue
            if d.id in in_flight or record.number in ramping:  # its own fan-out sends it, or it ramps back
                keep.add(record.number)
                continue
            if not wanted_at(d, station_id, received=record.created, now=now):  # expired controls are never sent
                continue
            result = map_directive(
                self._variant(_for_station(d, station_id, record.created), station_id),
                caps,
                number=record.number,
                now=now,
                evse_id=d.target.evse_id,
            )
            result, wait = stacks.restack(station_id, caps, record.number, result, now)
            if wait is not None:
                self._waits.add(station_id, wait)
            desired.extend((d.id, c) for c in result.commands)
            unsupported[d.id] = result.unsupported
        for did in timed:
            owner = self._store.directive(did)
            if owner is not None:
                keep.add(owner.number)
        if not desired and not self._store.has_outcomes(station_id, besides=OutcomeStatus.CLEARED):
            return  # nothing of ours was ever there: no query
        held: list[Item] = []
        known = True
        if caps.version is OcppVersion.V16:
            known = False  # 1.6 cannot report its profiles: resend what should be in force
        else:
            if caps.der:
                der = await self._query(station_id, "GetDERControl", {}, "ReportDERControl")
                known = known and der is not None
                held.extend(held_der(der or []))
            profiles = await self._query(
                station_id,
                "GetChargingProfiles",
                {"chargingProfile": {"chargingLimitSource": ["CSO"]}},
                "ReportChargingProfiles",
            )
            known = known and profiles is not None
            held.extend(held_profiles(profiles or []))
        if not self._link.is_connected(station_id):
            return
        plan = diff(desired, held, ours=range(1, self._store.last_number() + 1), keep=keep)
        by_directive: dict[str, list[OcppCommand]] = {}
        for did, command in plan.send:
            by_directive.setdefault(did, []).append(command)
        for did, commands in by_directive.items():
            planned = self._planned(station_id, MappingResult(tuple(commands), unsupported.get(did, ())))
            await self._commit_grouped(did, [planned])
            await self._send(did, planned)
        self._confirm_held(station_id, plan.held, unsupported)
        cleared = [await self._clear_item(station_id, item, caps.version) for item in plan.clear]
        if not known:
            cleared.extend(await self._clear_owed(station_id, timed))
        self._later(  # a summary, nothing is sent on it: written with this turn of the event loop's others
            entry=AuditEntry(
                "station.reconciled",
                {
                    "version": caps.version.value,
                    "queried": caps.version is not OcppVersion.V16,
                    "held": len(held) if known else None,
                    "sent": {did: len(cmds) for did, cmds in by_directive.items()},
                    "already_held": plan.held,
                    "cleared": [c for c in cleared if c is not None],
                },
                self._clock.now(),
                station_id=station_id,
            )
        )

    async def _query(
        self, station_id: str, action: str, payload: dict[str, Any], report: str
    ) -> list[Mapping[str, Any]] | None:
        """Ask a station what it holds and collect the reports that follow (tbc until the last); None when the
        answer is unknown (refused, timed out), [] when it holds nothing."""
        request_id = next(self._request_ids)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        collected: list[Mapping[str, Any]] = []
        self._reports[(station_id, request_id)] = (collected, done)
        try:
            message_id = self._link.new_message_id()
            body = {"requestId": request_id, **payload}
            # On disk before the frame leaves, in one transaction with the other stations' of this turn of the
            # event loop: a reconnect storm wrote (and signed) one transaction per station and query.
            await self._audit.durable(
                AuditEntry(
                    "command.sent",
                    {"action": action, "frame": [2, message_id, action, body], "controls": []},
                    self._clock.now(),
                    station_id=station_id,
                    message_id=message_id,
                )
            )
            reply = await self._link.call(
                station_id, action, body, timeout=self.settings.call_timeout_s, message_id=message_id
            )
            answer = str((reply.payload or {}).get("status")) if reply.kind is ReplyKind.RESULT else None
            self._later(  # buffered, as a fan-out's answers are
                entry=AuditEntry(
                    "station.answer",
                    {"kind": reply.kind.value, "status": answer or reply.kind.value},
                    self._clock.now(),
                    station_id=station_id,
                    message_id=message_id,
                )
            )
            if answer in ("NotFound", "NoProfiles"):
                return []
            if answer != "Accepted":
                return None
            try:
                await asyncio.wait_for(asyncio.shield(done), self.settings.call_timeout_s)
            except TimeoutError:
                return None
            return collected
        finally:
            self._reports.pop((station_id, request_id), None)

    def _on_report(self, station_id: str, action: str, payload: Mapping[str, Any]) -> None:
        if action not in ("ReportDERControl", "ReportChargingProfiles"):
            return
        waiting = self._reports.get((station_id, payload.get("requestId", -1)))
        if waiting is None:
            return
        collected, done = waiting
        collected.append(payload)
        if not payload.get("tbc") and not done.done():
            done.set_result(None)

    def _confirm_held(
        self, station_id: str, directive_ids: Sequence[str], unsupported: Mapping[str, Sequence[UnsupportedControl]]
    ) -> None:
        """Directives the station already holds as they should be: an outcome left unsettled (a restart cut the
        answer off, or it was queued while the station was away) becomes accepted, or partial when the station
        cannot take some of its controls (`unsupported`, as mapped for it now: an outcome a restart left behind
        may not say)."""
        unsettled = {OutcomeStatus.PENDING, OutcomeStatus.SENT, OutcomeStatus.OFFLINE, OutcomeStatus.TIMEOUT}
        for did in directive_ids:
            outcome = self._outcome(did, station_id)
            if outcome is not None and outcome.status in unsettled:
                missing = list(outcome.unsupported or unsupported.get(did, ()))
                status = OutcomeStatus.PARTIAL if missing else OutcomeStatus.ACCEPTED
                self._record(
                    outcome.model_copy(update={"status": status, "unsupported": missing, "updated": self._clock.now()}),
                    "held by the station (reconciled)",
                )

    async def _clear_item(self, station_id: str, item: Item, version: OcppVersion) -> str | None:
        """Clear one item the station holds under our ids that nothing wants any more."""
        number = number_of(item)
        owner = None if number is None else self._store.directive_id_of(number)
        if owner is None:
            return None
        record = self._store.directive(owner)
        if item.kind == "profile" and record is not None and record.state in _REMOVED:  # still limits it
            ramp = await self._restorer.instead_of_clear(record, station_id, item.ident)
            if ramp is not None:  # ramped back from now rather than stepping up at once (docs/dispatch.md)
                self._append_command(owner, station_id, ramp, OutcomeStatus.CLEARED)
                return f"ramped {item.kind}:{item.ident}"
        done = await self._call(owner, station_id, clear_command(item, version))
        self._append_command(
            owner, station_id, done, OutcomeStatus.CLEARED if done.answer in _CLEARED_ANSWERS else None
        )
        return f"{item.kind}:{item.ident}"

    def _append_command(
        self, directive_id: str, station_id: str, done: CommandOutcome, status: OutcomeStatus | None
    ) -> None:
        """Add a command sent on its own to the station's outcome, with a new status (None: unchanged)."""
        outcome = self._outcome(directive_id, station_id)
        if outcome is not None:
            self._record(
                outcome.model_copy(
                    update={
                        "status": status or outcome.status,
                        "commands": [*outcome.commands, done],
                        "updated": self._clock.now(),
                    }
                )
            )

    async def _clear_owed(self, station_id: str, timed: set[str]) -> list[str | None]:
        """A station that cannot report (1.6): clear what it accepted of directives that ended meanwhile."""
        owed: list[str | None] = []
        accepted = self._store.station_outcomes(
            station_id,
            [OutcomeStatus.ACCEPTED.value, OutcomeStatus.PARTIAL.value, OutcomeStatus.OFFLINE.value],
            of=_REMOVED,
        )
        for outcome in accepted:
            record = self._store.directive(outcome.directive_id)
            if record is None:
                continue
            if outcome.directive_id in timed or not any(c.status is OutcomeStatus.ACCEPTED for c in outcome.commands):
                continue
            await self._clear_station(record, outcome)
            owed.append(f"directive:{outcome.directive_id}")
        return owed


def _sent_entries(directive_id: str, plans: Sequence[_Plan], at: datetime) -> list[AuditEntry]:
    return [
        sent_entry(directive_id, p.station_id, command, message_id, at)
        for p in plans
        for command, message_id in zip(p.result.commands, p.message_ids, strict=True)
    ]


def sent_entry(directive_id: str, station_id: str, command: OcppCommand, message_id: str, at: datetime) -> AuditEntry:
    """The command.sent entry of a command to a station (also what `dergw bench fanout --history` writes)."""
    return AuditEntry(
        "command.sent",
        {
            "action": command.action,
            "frame": [2, message_id, command.action, command.payload],
            "controls": _control_names(command.controls),
        },
        at,
        directive_id=directive_id,
        station_id=station_id,
        message_id=message_id,
    )


@functools.lru_cache(maxsize=256)
def _control_names(controls: tuple[str, ...]) -> list[str]:
    """One list per set of controls: the command.sent entries of a fan-out share it, so the audit encodes it once
    per write (its memo goes by identity). Audit entry data is never changed once made."""
    return list(controls)


def answer_data(reply: Reply, answer: str | None) -> dict[str, object]:
    """The station.answer entry's data (also what `dergw bench fanout --history` writes). The common answers (a flat
    payload of strings: {"status": "Accepted"}) are shared, one object per distinct answer, so a write of thousands
    of them encodes each distinct one once."""
    status = answer or reply.kind.value
    if reply.kind is not ReplyKind.RESULT:
        return {
            "kind": reply.kind.value,
            "status": status,
            "error": {"code": reply.error_code, "description": reply.description},
        }
    payload = reply.payload or {}
    if len(payload) <= 4 and all(type(v) is str for v in payload.values()):
        return _shared_answer(reply.kind.value, status, tuple(payload.items()))
    return {"kind": reply.kind.value, "status": status, "payload": dict(payload)}


@functools.lru_cache(maxsize=64)
def _shared_answer(kind: str, status: str, payload: tuple[tuple[str, str], ...]) -> dict[str, object]:
    return {"kind": kind, "status": status, "payload": dict(payload)}


def _judge(reply: Reply) -> tuple[OutcomeStatus, str | None, str | None]:
    """(status, station's answer, detail) for one reply."""
    if reply.kind is ReplyKind.RESULT:
        answer = str((reply.payload or {}).get("status", "Accepted"))
        info = (reply.payload or {}).get("statusInfo") or {}
        detail = info.get("reasonCode") if isinstance(info, dict) else None
        return _ANSWER_STATUS.get(answer, OutcomeStatus.ERROR), answer, detail
    if reply.kind is ReplyKind.ERROR:
        code = reply.error_code or "GenericError"
        status = OutcomeStatus.NOT_SUPPORTED if code in _UNSUPPORTED_ERRORS else OutcomeStatus.ERROR
        return status, code, reply.description or None
    if reply.kind is ReplyKind.TIMEOUT:
        return OutcomeStatus.TIMEOUT, None, reply.description
    if reply.kind is ReplyKind.OFFLINE:
        return OutcomeStatus.OFFLINE, None, reply.description
    return OutcomeStatus.ERROR, reply.error_code, f"not sent, payload failed its schema: {reply.description}"


_SEVERITY = (
    OutcomeStatus.PENDING,
    OutcomeStatus.SENT,
    OutcomeStatus.ERROR,
    OutcomeStatus.TIMEOUT,
    OutcomeStatus.OFFLINE,
    OutcomeStatus.REJECTED,
)


def _summarize(
    directive_id: str,
    station_id: str,
    commands: list[CommandOutcome],
    unsupported: list[UnsupportedControl],
    at: datetime,
) -> StationOutcome:
    """The station's outcome of `commands`, with its one status (`_status`)."""
    return StationOutcome(
        directive_id=directive_id,
        station_id=station_id,
        status=_status({c.status for c in commands}, unsupported),
        commands=commands,
        unsupported=unsupported,
        updated=at,
    )


_PENDING = frozenset({OutcomeStatus.PENDING})


def _status(statuses: AbstractSet[OutcomeStatus], unsupported: Sequence[UnsupportedControl]) -> OutcomeStatus:
    """One status for a station: the worst command status; else partial when some controls were unsupported."""
    status = next((s for s in _SEVERITY if s in statuses), None)
    if status is not None:
        return status
    if not statuses & {OutcomeStatus.ACCEPTED, OutcomeStatus.CLEARED}:
        return OutcomeStatus.NOT_SUPPORTED
    if unsupported or OutcomeStatus.NOT_SUPPORTED in statuses:
        return OutcomeStatus.PARTIAL
    return OutcomeStatus.ACCEPTED
