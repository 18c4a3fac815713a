"""Fan-out of directives to the fleet and collection of per-station outcomes.

For each target station: map the directive for its capabilities (mappings/), write the planned commands to the
store and the audit log, then send them one after another on that station's link. Stations are handled
concurrently, so a slow or dead station only delays itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.clock import Clock
from gateway.fleet import Fleet
from gateway.interfaces import AuditSink, DirectiveEvent, DirectiveEventKind, Reply, ReplyKind, StationLink
from gateway.model import (
    CommandOutcome,
    Directive,
    DirectiveState,
    OutcomeStatus,
    StationOutcome,
    UnsupportedControl,
)
from gateway.schedule import station_window
from gateway.store import DirectiveRecord, Store
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
#: Answers to a clear that leave the station without the directive's controls.
_CLEARED_ANSWERS = frozenset({"Accepted", "NotFound", "Unknown"})
#: CALLERROR codes that mean "this station cannot do that" rather than a fault.
_UNSUPPORTED_ERRORS = frozenset({"NotSupported", "NotImplemented"})
#: States in which an offline station still owes a directive.
RESEND_STATUSES = (OutcomeStatus.OFFLINE.value,)


class TargetError(ValueError):
    """A directive names stations or groups the gateway does not know."""


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    call_timeout_s: float = 30.0
    #: How long to wait for a connected station's capabilities before mapping for it.
    capabilities_wait_s: float = 15.0


class Dispatcher:
    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        link: StationLink,
        audit: AuditSink,
        clock: Clock,
        settings: DispatchSettings | None = None,
    ) -> None:
        self._store = store
        self._fleet = fleet
        self._link = link
        self._audit = audit
        self._clock = clock
        self.settings = settings or DispatchSettings()
        self._runs: dict[str, asyncio.Task[list[StationOutcome]]] = {}
        self._resends: set[asyncio.Task[None]] = set()
        self._listeners: list[EventListener] = []
        self._tick_lock = asyncio.Lock()
        fleet.on_ready(self._station_ready)

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
        self._audit.append(
            "directive.created",
            {"directive": directive.model_dump(mode="json"), "number": number, "stations": stations},
            at=now,
            directive_id=directive.id,
            signal_id=directive.source.signal_id,
        )
        await self._emit(DirectiveEvent(directive.id, DirectiveEventKind.RECEIVED, now))
        self._runs[directive.id] = asyncio.create_task(self._fanout(directive, number, stations, now))
        record = self._store.directive(directive.id)
        assert record is not None
        return record

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
        self._audit.append(
            "directive.created",
            {
                "directive": directive.model_dump(mode="json"),
                "number": previous.number,
                "stations": stations,
                "changed": True,
            },
            at=now,
            directive_id=directive.id,
            signal_id=directive.source.signal_id,
        )
        await self._emit(DirectiveEvent(directive.id, DirectiveEventKind.RECEIVED, now))
        dropped = [o for o in self._store.outcomes(directive.id) if o.station_id not in stations]
        self._runs[directive.id] = asyncio.create_task(
            self._fanout(directive, previous.number, stations, previous.created, previous.directive, dropped)
        )
        record = self._store.directive(directive.id)
        assert record is not None
        return record

    async def wait(self, directive_id: str) -> list[StationOutcome]:
        """Outcomes once the fan-out of `directive_id` has finished."""
        run = self._runs.get(directive_id)
        if run is not None:
            await asyncio.shield(run)
        return self._store.outcomes(directive_id)

    async def cancel(self, directive_id: str, *, superseded: bool = False) -> DirectiveRecord:
        """Remove a directive from every station that holds it (ClearDERControl / ClearChargingProfile);
        `superseded` when the utility replaced it with another (2030.5 EventStatus superseded).

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
        self._audit.append(f"directive.{state.value}", {"number": record.number}, at=now, directive_id=directive_id)
        holders = [
            o for o in self._store.outcomes(directive_id) if any(c.status is OutcomeStatus.ACCEPTED for c in o.commands)
        ]
        await asyncio.gather(*(self._clear_station(record, o) for o in holders))
        outcomes = tuple(self._store.outcomes(directive_id))
        kind = DirectiveEventKind.SUPERSEDED if superseded else DirectiveEventKind.CANCELLED
        await self._emit(DirectiveEvent(directive_id, kind, self._clock.now(), outcomes))
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
        outcomes = await asyncio.gather(*(self._apply(directive, number, sid, received, previous) for sid in stations))
        now = self._clock.now()
        counts: dict[str, int] = {}
        for o in outcomes:
            counts[o.status.value] = counts.get(o.status.value, 0) + 1
        current = self._store.directive(directive.id)
        if current is not None and current.state is DirectiveState.RECEIVED:
            self._store.set_directive_state(directive.id, DirectiveState.SCHEDULED, now)
            self._audit.append("directive.scheduled", {"outcomes": counts}, at=now, directive_id=directive.id)
            refused = {OutcomeStatus.REJECTED, OutcomeStatus.NOT_SUPPORTED, OutcomeStatus.ERROR}
            kind = (
                DirectiveEventKind.REJECTED
                if outcomes and all(o.status in refused for o in outcomes)
                else DirectiveEventKind.PARTIAL
                if any(o.status is not OutcomeStatus.ACCEPTED for o in outcomes)
                else DirectiveEventKind.SCHEDULED
            )
            await self._emit(DirectiveEvent(directive.id, kind, now, tuple(outcomes)))
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
        for record in self._store.directives([DirectiveState.SCHEDULED, DirectiveState.ACTIVE]):
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
        return min(due, default=None)

    async def _transition(
        self, record: DirectiveRecord, state: DirectiveState, kind: DirectiveEventKind, now: datetime
    ) -> None:
        self._store.set_directive_state(record.directive.id, state, now)
        self._audit.append(
            f"directive.{state.value}", {"number": record.number}, at=now, directive_id=record.directive.id
        )
        await self._emit(
            DirectiveEvent(record.directive.id, kind, now, tuple(self._store.outcomes(record.directive.id)))
        )

    async def run_timer(self, *, max_wait_s: float = 1.0) -> None:
        """Call tick() at each due time (at least every `max_wait_s`) until cancelled."""
        while True:
            due = await self.tick()
            wait = max_wait_s if due is None else (due - self._clock.now()).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), max_wait_s))

    async def _apply(
        self,
        directive: Directive,
        number: int,
        station_id: str,
        received: datetime,
        previous: Directive | None = None,
    ) -> StationOutcome:
        state = self._fleet.stations[station_id]
        now = self._clock.now()
        if not self._link.is_connected(station_id):
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
        result = map_directive(
            _for_station(directive, station_id, received),
            caps,
            number=number,
            now=self._clock.now(),
            evse_id=directive.target.evse_id,
        )
        if previous is not None:  # a changed directive: clear the ids the new version no longer uses
            kept = {_target_id(c) for c in result.commands}
            old = map_clear(previous, caps, number=number, evse_id=previous.target.evse_id)
            stale = tuple(c for c in old.commands if _target_id(c) not in kept)
            result = MappingResult(commands=result.commands + stale, unsupported=result.unsupported)
        return await self._send(directive.id, station_id, result)

    async def _send(self, directive_id: str, station_id: str, result: MappingResult) -> StationOutcome:
        """Send the mapped commands to one station in order, recording the plan before anything leaves."""
        ids = [self._link.new_message_id() for _ in result.commands]
        planned = [
            CommandOutcome(
                action=c.action, message_id=mid, controls=list(c.controls), status=OutcomeStatus.PENDING, detail=c.note
            )
            for c, mid in zip(result.commands, ids, strict=True)
        ]
        unsupported = list(result.unsupported)
        self._store.save_outcomes(
            [_summarize(directive_id, station_id, planned, unsupported, self._clock.now())], self._clock.now()
        )
        commands = [
            await self._call(directive_id, station_id, command, plan)
            for command, plan in zip(result.commands, planned, strict=True)
        ]
        outcome = _summarize(directive_id, station_id, commands, unsupported, self._clock.now())
        self._record(outcome)
        return outcome

    async def _call(
        self, directive_id: str, station_id: str, command: OcppCommand, planned: CommandOutcome
    ) -> CommandOutcome:
        message_id = planned.message_id
        assert message_id is not None
        now = self._clock.now()
        self._audit.append(
            "command.sent",
            {
                "action": command.action,
                "frame": [2, message_id, command.action, command.payload],
                "controls": list(command.controls),
            },
            at=now,
            directive_id=directive_id,
            station_id=station_id,
            message_id=message_id,
        )
        reply = await self._link.call(
            station_id, command.action, command.payload, timeout=self.settings.call_timeout_s, message_id=message_id
        )
        status, answer, detail = _judge(reply)
        if command.action.startswith("Clear") and answer in _CLEARED_ANSWERS:
            status = OutcomeStatus.CLEARED
        answered = self._clock.now()
        data: dict[str, object] = {"kind": reply.kind.value, "status": answer or reply.kind.value}
        if reply.kind is ReplyKind.RESULT:
            data["payload"] = dict(reply.payload or {})
        else:
            data["error"] = {"code": reply.error_code, "description": reply.description}
        self._audit.append(
            "station.answer",
            data,
            at=answered,
            directive_id=directive_id,
            station_id=station_id,
            message_id=message_id,
        )
        note = " / ".join(p for p in (planned.detail, detail) if p) or None
        return planned.model_copy(update={"status": status, "answer": answer, "detail": note, "at": answered})

    def _record(self, outcome: StationOutcome, note: str | None = None) -> None:
        self._store.save_outcomes([outcome], self._clock.now())
        if note is not None:
            self._audit.append(
                "directive.outcome",
                {"status": outcome.status.value, "note": note},
                at=self._clock.now(),
                directive_id=outcome.directive_id,
                station_id=outcome.station_id,
            )

    # -- clearing and resending --------------------------------------------------------------------------------

    async def _clear_station(self, record: DirectiveRecord, outcome: StationOutcome) -> None:
        """Clear what one station accepted; answers that it holds nothing (NotFound, Unknown) count as cleared."""
        caps = self._fleet.stations[outcome.station_id].capabilities
        if caps is None:
            return
        result = map_clear(record.directive, caps, number=record.number, evse_id=record.directive.target.evse_id)
        directive_id = record.directive.id
        clears = [
            await self._call(
                directive_id,
                outcome.station_id,
                command,
                CommandOutcome(
                    action=command.action,
                    message_id=self._link.new_message_id(),
                    controls=list(command.controls),
                    status=OutcomeStatus.PENDING,
                ),
            )
            for command in result.commands
        ]
        done = all(c.answer in _CLEARED_ANSWERS for c in clears)
        worst = _summarize(directive_id, outcome.station_id, clears, [], self._clock.now()).status
        status = OutcomeStatus.CLEARED if done else worst
        self._record(
            outcome.model_copy(
                update={"status": status, "commands": [*outcome.commands, *clears], "updated": self._clock.now()}
            )
        )

    def _station_ready(self, station_id: str) -> None:
        """A station is back: send what it missed while offline, if still in force."""
        pending = self._store.station_outcomes(station_id, RESEND_STATUSES)
        if not pending:
            return
        task = asyncio.ensure_future(self._resend(station_id, [o.directive_id for o in pending]))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    async def _resend(self, station_id: str, directive_ids: Sequence[str]) -> None:
        now = self._clock.now()
        for directive_id in directive_ids:
            record = self._store.directive(directive_id)
            if record is None or record.state in (DirectiveState.CANCELLED, DirectiveState.COMPLETED):
                continue
            end = record.directive.end(record.created)
            if end is not None and end <= now:  # expired controls are never sent
                continue
            await self._apply(record.directive, record.number, station_id, record.created)


def _for_station(directive: Directive, station_id: str, received: datetime) -> Directive:
    """The directive as one station runs it: its own randomized start and duration (reproducible, see
    gateway.schedule.randomize); unchanged when the directive is not randomized."""
    if directive.is_default or not (directive.randomize_start_s or directive.randomize_duration_s):
        return directive
    window = station_window(directive, station_id, received=received)
    duration = None if window.end is None else max(1.0, (window.end - window.start).total_seconds())
    return directive.model_copy(update={"start": window.start, "duration_s": duration})


def _target_id(command: OcppCommand) -> str | None:
    """The station-side id a command sets or clears (controlId, charging profile id), to match sets and clears."""
    p = command.payload
    found = (
        p.get("controlId")
        or p.get("chargingProfileId")
        or p.get("id")
        or (p.get("chargingProfile") or {}).get("id")
        or (p.get("csChargingProfiles") or {}).get("chargingProfileId")
    )
    return None if found is None else str(found)


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
    """One status for the station: the worst command status; else partial when some controls were unsupported."""
    statuses = {c.status for c in commands}
    status = next((s for s in _SEVERITY if s in statuses), None)
    if status is None:
        refused = statuses & {OutcomeStatus.NOT_SUPPORTED}
        accepted = statuses & {OutcomeStatus.ACCEPTED, OutcomeStatus.CLEARED}
        if not accepted:
            status = OutcomeStatus.NOT_SUPPORTED
        elif unsupported or refused:
            status = OutcomeStatus.PARTIAL
        else:
            status = OutcomeStatus.ACCEPTED
    return StationOutcome(
        directive_id=directive_id,
        station_id=station_id,
        status=status,
        commands=commands,
        unsupported=unsupported,
        updated=at,
    )
