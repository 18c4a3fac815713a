"""`OpenAdr2bAdapter`: the OpenADR 2.0b VEN as a gateway.interfaces.UtilityAdapter.

Start: registration, report registration and the first poll (openleadr's client, `protocols.openadr2b.ven`); then
openleadr polls on its own. A VTN that does not answer or does not register the VEN at start does not stop the
gateway: registration is tried again after START_RETRY_S, the wait doubling up to MAX_START_RETRY_S. Each new or
modified event is normalized, the opt decision is taken from what the fleet can do, and only an opted-in event's
directives are submitted to the runtime's DirectiveSink; directives a modified event no longer asks for, and all
of a cancelled or declined event's, are cancelled. Every opt-out and every signal that cannot be used is handed to
`sink.reject` (audited).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from gateway.clock import Clock
from gateway.interfaces import AlarmReport, DirectiveEvent, DirectiveSink, LinkHealth, Signal
from gateway.model import Directive, SourceProtocol
from protocols.openadr2b.normalize import NormalizeError, normalize_event, resolve_target
from protocols.openadr2b.opt import FleetCapability, Opt, OptDecision, decide_opt
from protocols.openadr2b.ven import FleetData, OpenAdr2bConfig, RegistrationError, Ven

log = logging.getLogger(__name__)

#: The first wait before registering again after a failed start, s; it doubles with each failure.
START_RETRY_S = 30.0
#: The longest wait between registration attempts, s.
MAX_START_RETRY_S = 600.0

Sleep = Callable[[float], Awaitable[None]]

_NO_FLEET = FleetCapability(0, 0, 0.0, can_discharge=False, can_hold_setpoint=False)


class OpenAdr2bAdapter:
    protocol = SourceProtocol.OPENADR2B

    def __init__(
        self, config: OpenAdr2bConfig, *, clock: Clock, fleet: FleetData, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.config = config
        self._clock = clock
        self._fleet = fleet
        self._sleep = sleep
        self._sink: DirectiveSink | None = None
        self._ven: Ven | None = None
        self._retry: asyncio.Task[None] | None = None
        #: Why the last registration attempt failed (None once registered).
        self.start_failure: str | None = None
        #: Failed registration attempts in a row.
        self.start_failures = 0
        #: Set once registration, report registration and the first poll are done.
        self.registered = asyncio.Event()
        self._events: dict[str, dict[str, Directive]] = {}
        #: The last answer given per event id, for health pages and tests.
        self.opts: dict[str, OptDecision] = {}
        #: The latest directive events the runtime reported: 2.0b has no per-directive message to carry them.
        self.noted: deque[DirectiveEvent] = deque(maxlen=256)

    @property
    def ven(self) -> Ven:
        if self._ven is None:
            raise RuntimeError("adapter not started")
        return self._ven

    async def start(self, sink: DirectiveSink) -> None:
        """Register; when that fails, return anyway and keep trying in the background (see `retry_wait_s`)."""
        self._sink = sink
        self._ven = Ven(self.config, self._fleet, self._on_event, clock=self._clock)
        if not await self._register():
            self._retry = asyncio.create_task(self._keep_registering(), name="openadr2b-register")

    async def _register(self) -> bool:
        try:
            await self.ven.start()
        except RegistrationError as exc:
            self.start_failures += 1
            self.start_failure = str(exc)
            log.warning("openadr2b: %s (attempt %d); next in %.0f s", exc, self.start_failures, self.retry_wait_s())
            return False
        self.start_failures = 0
        self.start_failure = None
        self.registered.set()
        return True

    def retry_wait_s(self) -> float:
        """The wait before the next registration attempt: START_RETRY_S doubled per failure after the first."""
        return min(START_RETRY_S * (1 << min(max(self.start_failures - 1, 0), 32)), MAX_START_RETRY_S)

    async def _keep_registering(self) -> None:
        while True:
            await self._sleep(self.retry_wait_s())
            if await self._register():
                return

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
            self._retry = None
        if self._ven is not None:
            await self._ven.stop()

    def health(self) -> LinkHealth:
        """Healthy while registered and the VTN answered within three poll intervals."""
        ven = self._ven
        if ven is None or not ven.registered:
            detail = self.start_failure or "not registered"
            return LinkHealth(ok=False, last_seen=None if ven is None else ven.last_seen, detail=detail)
        interval = ven.poll_interval or timedelta(seconds=10)
        if ven.last_seen is None or self._clock.now() - ven.last_seen > 3 * interval:
            return LinkHealth(ok=False, last_seen=ven.last_seen, detail=f"no answer from the VTN for {3 * interval}")
        return LinkHealth(ok=True, last_seen=ven.last_seen)

    def _signal(self, raw: bytes, event_id: str) -> Signal:
        return Signal(
            protocol=SourceProtocol.OPENADR2B,
            source=self.config.vtn_url,
            digest=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            received_at=self._clock.now(),
            signal_id=event_id or None,
        )

    async def _on_event(self, event: dict[str, Any], raw: bytes) -> Opt:
        assert self._sink is not None
        descriptor = event.get("event_descriptor") or {}
        event_id = str(descriptor.get("event_id") or "")
        signal = self._signal(raw, event_id)
        if descriptor.get("event_status") == "cancelled":
            await self._withdraw(event_id, signal)
            self.opts[event_id] = OptDecision(Opt.IN, "cancelled")
            return Opt.IN
        config = self.config.normalize
        try:
            target = resolve_target(event, config)
        except NormalizeError:
            target = None  # normalize_event reports why
        baseline = None if target is None else self._fleet.demand_w(target)
        capability = _NO_FLEET if target is None else self._fleet.capability(target)
        now = self._clock.now()
        result = normalize_event(event, config, now, server=self.config.vtn_url, baseline_w=baseline)
        decision = decide_opt(result, capability)
        self.opts[event_id] = decision
        if decision.opt is Opt.OUT:
            self._sink.reject(signal, f"event {event_id}: opted out: {decision.reason}", code=decision.code)
            await self._withdraw(event_id, signal)
            return Opt.OUT
        previous = self._events.get(event_id, {})
        current = {d.id: d for d in result.directives}
        self._events[event_id] = current
        for directive in result.directives:
            await self._sink.submit(directive, signal)
        for gone_id, gone in previous.items():
            end = gone.end(now)
            if gone_id not in current and (end is None or end > now):
                await self._sink.cancel(gone_id, signal)
        for noted in result.rejected:
            self._sink.reject(signal, f"event {event_id}: {noted.reason}", code=noted.code)
        return Opt.IN

    async def _withdraw(self, event_id: str, signal: Signal) -> None:
        assert self._sink is not None
        now = self._clock.now()
        for directive_id, directive in self._events.pop(event_id, {}).items():
            end = directive.end(now)
            if end is None or end > now:
                await self._sink.cancel(directive_id, signal)

    async def directive_event(self, event: DirectiveEvent) -> None:
        """Noted only: after oadrCreatedEvent, 2.0b has no message for one directive's progress."""
        self.noted.append(event)
        log.info("openadr2b: directive %s %s", event.directive_id, event.kind)

    async def alarm(self, report: AlarmReport) -> None:
        """2.0b has no alarm message; station faults show in TELEMETRY_STATUS (share of stations online)."""
        log.info("openadr2b: %d alarm(s) (grid event: %s) noted", len(report.alarms), report.grid_event)
