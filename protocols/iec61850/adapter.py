"""Iec61850Adapter: the fleet as a virtual DER IED (gateway.interfaces.UtilityAdapter).

SCADA writes settings and operates controls over MMS; each accepted command becomes the directive of its function
(one id per function, changed in place) with the configured priority, held until SCADA changes it or, when a hold
time is configured, until it runs out. Refusals are answered on MMS (AddCause / access error) and audited.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gateway.interfaces import (
    AlarmReport,
    DirectiveEvent,
    DirectiveEventKind,
    DirectiveSink,
    LinkHealth,
)
from gateway.model import Directive, SourceProtocol
from protocols.iec61850.datamodel import NODES, Function, find
from protocols.iec61850.server import Command, Handlers, MmsServer
from protocols.iec61850.translate import (
    CURVE_FUNCTIONS,
    HoldPolicy,
    Refusal,
    StationReading,
    Value,
    check_value,
    directive_for,
    directive_id,
    enabled,
    measurements,
    signal,
)

log = logging.getLogger(__name__)
_HEALTH_OK, _HEALTH_WARNING, _HEALTH_ALARM = 1, 2, 3


class FleetData(Protocol):
    """The fleet's latest meter values, by station id (the runtime's gateway.utility.FleetView implements it)."""

    def readings(self) -> Mapping[str, StationReading]: ...


@dataclass(frozen=True, slots=True)
class Iec61850Config:
    host: str = "127.0.0.1"
    port: int = 102
    ied_name: str = "DERGW"
    #: Priority of SCADA directives (lower wins); SCADA is the grid operator's real-time hand, so high by default.
    priority: int = 1
    #: Seconds a SCADA command holds when not renewed; None = until changed.
    hold_s: float | None = None
    #: How often `run_sampling` refreshes MMXU from the fleet (an IED's sampling period).
    sample_s: float = 1.0


class Iec61850Adapter(Handlers):
    protocol = SourceProtocol.IEC61850

    def __init__(
        self,
        config: Iec61850Config,
        fleet: FleetData | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.policy = HoldPolicy(config.ied_name, config.priority, config.hold_s)
        self._fleet = fleet
        self._clock = clock
        # Written on the library's thread (handlers) and read there and on the loop: guarded.
        self._lock = threading.Lock()
        self._settings: dict[str, Value] = {}
        self._seq = itertools.count(1)
        self._alarms: dict[str, str] = {}
        self._last_seen: datetime | None = None
        self._server: MmsServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sink: DirectiveSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- UtilityAdapter -------------------------------------------------------------------------------------------

    async def start(self, sink: DirectiveSink) -> None:
        self._sink, self._loop = sink, asyncio.get_running_loop()
        self._server = MmsServer(self.config.ied_name, self)
        self._server.start(self.config.host, self.config.port)
        self._server.set_value("LLN0.Mod", 1)
        self._server.set_value("LLN0.Beh", 1)
        self._server.set_value("LLN0.Health", _HEALTH_OK)
        self._server.set_value("LPHD1.PhyHealth", _HEALTH_OK)
        self._server.set_value("LPHD1.Proxy", True)
        self._server.set_value("CSWI1.Pos", True)
        self._settings["CSWI1.Pos"] = True
        if self._fleet is not None and self.config.sample_s > 0:
            self._spawn(self._sample_forever())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await asyncio.to_thread(self._server.close)
            self._server = None

    def health(self) -> LinkHealth:
        running = self._server is not None and self._server.running
        detail = f"{self._server.connections()} MMS connection(s)" if self._server and running else "not running"
        return LinkHealth(ok=running, last_seen=self._last_seen, detail=detail)

    async def directive_event(self, event: DirectiveEvent) -> None:
        """A hold that ran out (completed) switches its curve function off, so SCADA sees it is no longer applied."""
        if event.kind is not DirectiveEventKind.COMPLETED or self._server is None:
            return
        for fn in CURVE_FUNCTIONS:
            if event.directive_id == directive_id(self.policy, fn):
                ln = next(ln for ln in NODES if any(do.function is fn for do in ln.data))
                with self._lock:
                    self._settings[f"{ln.name}.ModEna"] = False
                self._server.set_value(f"{ln.name}.ModEna", False)

    async def alarm(self, report: AlarmReport) -> None:
        """Station alarms become GGIO1 indications, the alarm count and text, and LLN0.Health."""
        if self._server is None:
            return
        for a in report.alarms:
            if a.ended:
                self._alarms.pop(a.station_id, None)
            else:
                self._alarms[a.station_id] = f"{a.station_id}: {a.control} {a.grid_event_fault or ''}".strip()
        latest = next((a for a in reversed(report.alarms) if not a.ended), None)
        srv = self._server
        srv.set_value("GGIO1.Ind1", bool(self._alarms))
        srv.set_value("GGIO1.Ind2", report.grid_event and bool(self._alarms))
        srv.set_value("GGIO1.IntIn1", len(self._alarms))
        if latest is not None:
            srv.set_value("GGIO1.AlmTxt", self._alarms[latest.station_id])
        health = _HEALTH_ALARM if report.grid_event and self._alarms else _HEALTH_WARNING if self._alarms else 1
        srv.set_value("LLN0.Health", health)

    # -- measurements ---------------------------------------------------------------------------------------------

    def sample(self) -> None:
        """Publish the fleet's current totals on MMXU1 and the connected count on GGIO1.IntIn2."""
        if self._server is None or self._fleet is None:
            return
        m = measurements(self._fleet.readings())
        srv = self._server
        srv.set_value("MMXU1.TotW", float(m.tot_w))
        srv.set_value("MMXU1.TotVAr", float(m.tot_var))
        if m.hz is not None:
            srv.set_value("MMXU1.Hz", float(m.hz))
        if m.phase_w is not None:
            for phase, w in zip(("phsA", "phsB", "phsC"), m.phase_w, strict=True):
                srv.set_value(f"MMXU1.W.{phase}.cVal.mag.f", float(w))
        srv.set_value("GGIO1.IntIn2", m.connected)

    async def _sample_forever(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.config.sample_s)

    # -- MMS handlers (library thread) ----------------------------------------------------------------------------

    def check(self, command: Command) -> Refusal | None:
        refusal = check_value(command.ref, command.value)
        if refusal is None:
            refusal = self._would_apply(command)
        if refusal is not None:
            self._hand_over(self._refused, command, refusal)
        return refusal

    def _would_apply(self, command: Command) -> Refusal | None:
        """A value that makes its function's directive invalid (a curve whose x no longer increases) is refused now,
        not discovered after the fleet got it."""
        _, do = find(command.ref)
        assert do.function is not None
        with self._lock:
            candidate = {**self._settings, command.ref: command.value}
        if not enabled(do.function, candidate):
            return None
        result = directive_for(do.function, candidate, self.policy, self._clock(), command.peer)
        return result if isinstance(result, Refusal) else None

    def accepted(self, command: Command) -> None:
        if command.service == "select":
            return
        _, do = find(command.ref)
        assert do.function is not None
        with self._lock:
            self._settings[command.ref] = command.value
            settings = dict(self._settings)
        fn = do.function
        if fn in CURVE_FUNCTIONS and not enabled(fn, settings):
            if do.name == "ModEna":
                self._hand_over(self._cancel, command, fn)
            return
        result = directive_for(fn, settings, self.policy, self._clock(), command.peer)
        if isinstance(result, Directive):
            self._hand_over(self._submit, command, result)

    def _hand_over(self, fn: Callable[..., object], command: Command, arg: object) -> None:
        """From the library's thread to the event loop: never await or touch the sink here."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        seq = next(self._seq)
        loop.call_soon_threadsafe(fn, command, arg, seq)

    def _refused(self, command: Command, refusal: Refusal, seq: int) -> None:
        assert self._sink is not None
        sig = signal(command.ref, command.service, command.value, command.peer, self._clock(), seq)
        self._last_seen = sig.received_at
        self._sink.reject(sig, refusal.reason, code=refusal.code)

    def _submit(self, command: Command, directive: Directive, seq: int) -> None:
        assert self._sink is not None
        sig = signal(command.ref, command.service, command.value, command.peer, self._clock(), seq)
        self._last_seen = sig.received_at
        self._spawn(self._sink.submit(directive, sig))

    def _cancel(self, command: Command, fn: Function, seq: int) -> None:
        assert self._sink is not None
        sig = signal(command.ref, command.service, command.value, command.peer, self._clock(), seq)
        self._last_seen = sig.received_at
        self._spawn(self._sink.cancel(directive_id(self.policy, fn), sig))

    def _spawn(self, coro: object) -> None:
        assert asyncio.iscoroutine(coro)
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("iec61850: handing a SCADA command to the runtime failed", exc_info=task.exception())
