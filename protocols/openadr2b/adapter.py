"""`OpenAdr2bAdapter`: the OpenADR 2.0b VEN as a gateway.interfaces.UtilityAdapter.

Start: registration, report registration and the first poll (openleadr's client, `protocols.openadr2b.ven`); then
openleadr polls on its own. A VTN that does not answer or does not register the VEN at start does not stop the
gateway: registration is tried again after START_RETRY_S, the wait doubling up to MAX_START_RETRY_S (with equal
jitter, gateway.backoff); each failed attempt is audited (`sink.upstream_failed`). Once registered, openleadr polls
at the VTN's fixed frequency and sends each report once: failed polls are audited at the attempts a doubling backoff
would make (gateway.backoff.worth_auditing: 1, 2, 4 ... then one per 600 s), failed reports (lost: openleadr does
not retry) as `upstream.dropped` on the same spacing, each entry counting the reports it stands for. Each new or
modified event is normalized, the opt decision is taken from what the fleet can do, and only an opted-in event's
directives are submitted to the runtime's DirectiveSink; directives a modified event no longer asks for, and all
of a cancelled or declined event's, are cancelled. Every opt-out and every signal that cannot be used is handed to
`sink.reject` (audited).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from gateway.backoff import Random, doubled, jittered, worth_auditing
from gateway.clock import Clock
from gateway.interfaces import (
    AlarmReport,
    DirectiveEvent,
    DirectiveSink,
    LinkHealth,
    Signal,
    UpstreamDrop,
    UpstreamFailure,
)
from gateway.model import Directive, SourceProtocol
from protocols.openadr2b.normalize import NormalizeError, normalize_event, resolve_target
from protocols.openadr2b.opt import FleetCapability, Opt, OptDecision, decide_opt
from protocols.openadr2b.ven import FleetData, OpenAdr2bConfig, RegistrationError, RequestFailure, Ven

log = logging.getLogger(__name__)

#: The first wait before registering again after a failed start, s; it doubles with each failure.
START_RETRY_S = 30.0
#: The longest wait between registration attempts, s.
MAX_START_RETRY_S = 600.0

Sleep = Callable[[float], Awaitable[None]]

_NO_FLEET = FleetCapability(0, 0, 0.0, can_discharge=False, can_hold_setpoint=False)

#: 2.0b service -> the operation named in the audit.
_OPERATIONS = {
    "OadrPoll": "poll",
    "EiRegisterParty": "register",
    "EiReport": "report",
    "EiEvent": "event",
    "EiOpt": "opt",
}


class OpenAdr2bAdapter:
    protocol = SourceProtocol.OPENADR2B

    def __init__(
        self,
        config: OpenAdr2bConfig,
        *,
        clock: Clock,
        fleet: FleetData,
        sleep: Sleep = asyncio.sleep,
        rand: Random = random.random,
    ) -> None:
        self.config = config
        self._clock = clock
        self._fleet = fleet
        self._sleep = sleep
        self._rand = rand
        self._retry_wait_s = START_RETRY_S
        #: The last failed request of the registration attempt under way (why it failed, for the audit).
        self._attempt_failure: RequestFailure | None = None
        #: Failed requests in a row per service once registered (0 after a success), and reports lost since the
        #: last audit entry about them.
        self.failures: dict[str, int] = {}
        self._drops_unaudited = 0
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
        self._ven = Ven(self.config, self._fleet, self._on_event, clock=self._clock, on_request=self._on_request)
        if not await self._register():
            self._retry = asyncio.create_task(self._keep_registering(), name="openadr2b-register")

    async def _register(self) -> bool:
        self._attempt_failure = None
        try:
            await self.ven.start()
        except RegistrationError as exc:
            self.start_failures += 1
            self.start_failure = str(exc)
            backoff = doubled(START_RETRY_S, self.start_failures - 1, MAX_START_RETRY_S)
            self._retry_wait_s = jittered(backoff, self._rand)
            log.warning("openadr2b: %s (attempt %d); next in %.0f s", exc, self.start_failures, self.retry_wait_s())
            cause = self._attempt_failure
            self._failed(
                "register",
                cause.error if cause else type(exc).__name__,
                f"{exc}: {cause.detail}" if cause else str(exc),
                self.start_failures,
                self._retry_wait_s,
                cause.status if cause else None,
            )
            return False
        self.start_failures = 0
        self.start_failure = None
        self.registered.set()
        return True

    def retry_wait_s(self) -> float:
        """The wait before the next registration attempt: START_RETRY_S doubled per failure after the first, at
        most MAX_START_RETRY_S, with equal jitter (between half and all of it)."""
        return self._retry_wait_s

    def _failed(
        self, operation: str, error: str, detail: str, attempt: int, retry_in_s: float | None, status: int | None
    ) -> None:
        if self._sink is not None:
            self._sink.upstream_failed(
                UpstreamFailure(
                    self.protocol, self.config.vtn_url, operation, error, detail, attempt, retry_in_s, status
                )
            )

    def _on_request(self, service: str, failure: RequestFailure | None) -> None:
        """Every request openleadr makes ends here. Registration failures are audited per attempt by `_register`;
        once registered, a link down for long writes about one entry per doubling of the outage (`worth_auditing`),
        as a backing-off link would, though openleadr keeps polling at the VTN's frequency."""
        ven = self._ven
        if ven is None or not ven.registered:
            if failure is not None:
                self._attempt_failure = failure
            return
        if failure is None:
            self.failures[service] = 0
            if service == "EiReport" and self._drops_unaudited:
                self._drop(f"{self._drops_unaudited} report(s) lost before the VTN took one again", None)
            return
        attempt = self.failures[service] = self.failures.get(service, 0) + 1
        interval = (ven.poll_interval or timedelta(seconds=10)).total_seconds()
        if service == "EiReport":  # openleadr does not send a report again: it is lost
            self._drops_unaudited += 1
            if worth_auditing(attempt, self.config.report_interval_s):
                self._drop(failure.detail, failure.status)
        elif service != "OadrPoll" or worth_auditing(attempt, interval):
            retry = interval if service == "OadrPoll" else None
            operation = _OPERATIONS.get(service, service)
            self._failed(operation, failure.error, failure.detail, attempt, retry, failure.status)

    def _drop(self, detail: str, status: int | None) -> None:
        count, self._drops_unaudited = self._drops_unaudited, 0
        if self._sink is not None:
            drop = UpstreamDrop(self.protocol, self.config.vtn_url, "report", "failed", detail, status, count=count)
            self._sink.upstream_dropped(drop)

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
