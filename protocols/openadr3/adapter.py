"""`OpenAdr3Adapter`: the OpenADR 3 VEN as a gateway.interfaces.UtilityAdapter.

Start: token, VEN and resource registration, programs, optional webhook subscription, first poll; then it polls
every `poll_interval_s` (the main path: webhooks only make changes arrive sooner). Each new or changed event is
normalized into directives submitted to the runtime's DirectiveSink; directives an event no longer asks for, and
all of a deleted event's, are cancelled. Payloads that cannot be used are handed to `sink.reject` (audited), never
fatal. Reports follow each event's reportDescriptors (reports.report_plans: startInterval, numIntervals, frequency,
repeat): the loop wakes, by the injected clock and sleep, when the next report is due (or for the next poll, if
sooner), and a completed directive sends what is due at once.

Faults: a VTN that fails (down, 5xx, any error answer, a malformed body) never withdraws what was received; the
wait before the next poll doubles up to MAX_POLL_BACKOFF_S (with equal jitter, gateway.backoff), and registration
at start is retried the same way. Reports the VTN could not take (transport errors, 5xx, 408, 429) wait in a
bounded in-memory outbox, retried in order with the same backoff and right after the next successful poll. Every
failed attempt is audited (`sink.upstream_failed`: one entry per attempt, so per backoff step), every report given
up on too (`sink.upstream_dropped`: refused for good, pushed out of a full outbox, or still waiting at stop). An
event that does not parse is refused once per version (audited); an event older than the version held
(modificationDateTime) is refused as stale.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from gateway.backoff import Random, doubled, jittered
from gateway.clock import Clock
from gateway.interfaces import (
    AlarmReport,
    DirectiveEvent,
    DirectiveEventKind,
    DirectiveSink,
    LinkHealth,
    Signal,
    UpstreamDrop,
    UpstreamFailure,
)
from gateway.model import Directive, SourceProtocol, Target
from protocols.openadr3.client import MalformedBodyError, OpenAdrHttpError, VenClient
from protocols.openadr3.normalize import NormalizeError, directive_prefix, normalize_event, resolve_target
from protocols.openadr3.policy import NormalizeConfig
from protocols.openadr3.reports import (
    ReportPlan,
    ResourceSample,
    build_intervals_report,
    event_periods,
    report_plans,
)
from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.webhook import WebhookServer
from protocols.openadr3.wire import Event, Notification, Program, WireError, parse, parse_start

log = logging.getLogger(__name__)

#: The longest wait between polls (or report retries) while the VTN keeps failing (5xx, down, timeouts), s.
MAX_POLL_BACKOFF_S = 600.0
#: The most reports kept for retry while the VTN cannot take them; beyond it the oldest is dropped (and logged).
MAX_OUTBOX = 256

#: What a failing VTN link raises (the poll, registration, a report POST).
LinkError = (aiohttp.ClientError, OpenAdrHttpError, WireError, TimeoutError)


def _retryable(exc: Exception) -> bool:
    """A report POST worth trying again: the VTN unreachable or failing, or asking to slow down. Other answers
    (400, 404 ...) would refuse the same body again; a malformed answer to a 2xx means it was taken."""
    if isinstance(exc, OpenAdrHttpError):
        return exc.status >= 500 or exc.status in (408, 429)
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


Sleep = Callable[[float], Awaitable[None]]


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    path: str = "/openadr3/callback"
    #: The URL the VTN should call, when it differs from the listening address (behind a proxy or TLS terminator).
    public_url: str | None = None
    bearer_token: str = Field(min_length=16)


class OpenAdr3Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vtn_url: str
    version: OpenAdrVersion = OpenAdrVersion.V3_1_0
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    #: Overrides token endpoint discovery (3.1 /auth/server, 3.0.1 <vtn_url>/auth/token).
    token_url: str | None = None
    ven_name: str = Field(min_length=1, max_length=128)
    #: OpenADR resource name -> the stations or group it stands for (registered at start, used in reports).
    resources: dict[str, Target] = Field(default_factory=dict)
    #: Program names to follow; empty = every program the VTN shows us.
    programs: list[str] = Field(default_factory=list)
    poll_interval_s: float = Field(default=30.0, gt=0)
    webhook: WebhookConfig | None = None
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)


class FleetData(Protocol):
    """What the adapter needs to know about the fleet (the runtime implements it)."""

    def sample(self, target: Target, start: datetime, end: datetime) -> ResourceSample: ...

    def demand_w(self, target: Target) -> float | None:
        """Current import of the target, W (the baseline of DISPATCH_SETPOINT_RELATIVE)."""
        ...


@dataclass
class _Tracked:
    digest: str
    event: Event
    directives: dict[str, Directive] = field(default_factory=dict)
    #: When this adapter first saw the event: the start of intervals without one; reports due earlier are not sent.
    first_seen: datetime | None = None
    plans: list[ReportPlan] = field(default_factory=list)
    #: Keys of the plans already sent, queued for retry or dropped.
    done: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _PendingReport:
    key: str
    event_id: str
    body: dict[str, Any]
    directive_id: str | None


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _older(event: Event, held: Event) -> bool:
    """`event` was modified before the version held (both carry a readable modificationDateTime)."""
    if event.modification_date_time is None or held.modification_date_time is None:
        return False
    try:
        new, old = parse_start(event.modification_date_time), parse_start(held.modification_date_time)
    except WireError:
        return False
    return new is not None and old is not None and new < old


class OpenAdr3Adapter:
    protocol = SourceProtocol.OPENADR3

    def __init__(
        self,
        config: OpenAdr3Config,
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
        self._sink: DirectiveSink | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client: VenClient | None = None
        self._webhook: WebhookServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._health = LinkHealth(ok=False, last_seen=None, detail="not started")
        self._programs: dict[str, Program] = {}
        self._events: dict[str, _Tracked] = {}
        self._owner: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.ven_id: str | None = None
        self.subscriptions: list[str] = []
        #: Reports posted (bodies) and report failures, for health and tests.
        self.reports_sent: list[dict[str, Any]] = []
        self.report_errors: list[str] = []
        self._wake = asyncio.Event()
        #: Failed polls in a row (0 after a success): the wait before the next poll doubles with each.
        self.poll_failures = 0
        self._poll_wait_s = config.poll_interval_s
        self._report_wait_s = config.poll_interval_s
        #: Registered (VEN, resources, programs, subscriptions) since start; until then each poll registers first.
        self.connected = False
        self._subscribed: dict[str, str] = {}
        #: Digests of event bodies refused as invalid: each version is refused (audited) once, not on every poll.
        self._refused: set[str] = set()
        #: Reports waiting for the VTN, oldest first, and the failed attempts in a row to deliver them.
        self.outbox: deque[_PendingReport] = deque()
        self.report_failures = 0
        self._report_retry_at: datetime | None = None
        self._flushing = asyncio.Lock()

    @property
    def client(self) -> VenClient:
        if self._client is None:
            raise RuntimeError("adapter not started")
        return self._client

    async def start(self, sink: DirectiveSink) -> None:
        """Register and poll once; a VTN that fails here does not stop the gateway: the loop tries again with
        backoff (health says why)."""
        self._sink = sink
        self._session = aiohttp.ClientSession()
        c = self.config
        self._client = VenClient(
            self._session, c.vtn_url, c.version, c.client_id, c.client_secret, clock=self._clock, token_url=c.token_url
        )
        if not await self._poll_step():
            log.warning("openadr3: the VTN at %s failed at start; retrying in %.0f s", c.vtn_url, self.poll_wait_s())
        self._task = asyncio.create_task(self._loop(), name="openadr3-poll")

    async def _connect(self) -> None:
        c = self.config
        ven = await self.client.register_ven(c.ven_name)
        self.ven_id = str(ven["id"])
        for name in c.resources:
            await self.client.register_resource(self.ven_id, name)
        await self._load_programs()
        if c.webhook is not None:
            if self._webhook is None:
                self._webhook = WebhookServer(
                    self._on_notification, c.webhook.bearer_token, host=c.webhook.host, port=c.webhook.port,
                    path=c.webhook.path,
                )  # fmt: skip
                await self._webhook.start()
            url = c.webhook.public_url or self._webhook.url
            for program in self._programs.values():
                if program.id not in self._subscribed:
                    sub = await self.client.subscribe(c.ven_name, program.id, url, c.webhook.bearer_token)
                    self._subscribed[program.id] = str(sub["id"])
                    self.subscriptions.append(str(sub["id"]))
        self.connected = True

    async def _poll_step(self) -> bool:
        """Register if not yet done, then poll; False (and the failure counted, health down) if the VTN failed."""
        try:
            if not self.connected:
                await self._connect()
            await self.poll_once()
        except LinkError as exc:
            # What was received stays in force; the VTN is asked again later and later.
            operation = "token" if exc is self.client.token_error else "poll" if self.connected else "register"
            self.poll_failures += 1
            self._poll_wait_s = jittered(self._backoff(self.poll_failures), self._rand)
            self._health = LinkHealth(ok=False, last_seen=self._health.last_seen, detail=str(exc))
            log.warning("openadr3: %s failed (%d in a row): %s", operation, self.poll_failures, exc)
            self._failed(operation, exc, self.poll_failures, self._poll_wait_s)
            if isinstance(exc, MalformedBodyError):
                self._reject(None, exc.raw, str(exc), "invalid_response")
            return False
        self.poll_failures = 0
        self._poll_wait_s = self.config.poll_interval_s
        return True

    def _failed(self, operation: str, exc: Exception, attempt: int, retry_in_s: float) -> None:
        if self._sink is None:
            return
        self._sink.upstream_failed(
            UpstreamFailure(
                protocol=self.protocol,
                server=self.config.vtn_url,
                operation=operation,
                error=type(exc).__name__,
                detail=str(exc),
                attempt=attempt,
                retry_in_s=retry_in_s,
                status=exc.status if isinstance(exc, OpenAdrHttpError) else None,
            )
        )

    def _dropped(self, pending: _PendingReport, reason: str, detail: str, status: int | None = None) -> None:
        if self._sink is None:
            return
        self._sink.upstream_dropped(
            UpstreamDrop(
                protocol=self.protocol,
                server=self.config.vtn_url,
                what="report",
                reason=reason,
                detail=f"report {pending.key} of event {pending.event_id}: {detail}",
                status=status,
                directive_id=pending.directive_id,
            )
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for sub in self.subscriptions:
            try:
                await self.client.unsubscribe(sub)
            except LinkError as exc:
                log.warning("openadr3: could not delete subscription %s: %s", sub, exc)
        self.subscriptions.clear()
        self._subscribed.clear()
        if self.outbox:
            log.warning("openadr3: %d report(s) not delivered at stop are lost", len(self.outbox))
            for pending in self.outbox:
                self._dropped(pending, "stopped", "not delivered when the link stopped")
            self.outbox.clear()
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._health = LinkHealth(ok=False, last_seen=self._health.last_seen, detail="stopped")

    def health(self) -> LinkHealth:
        """The last poll's result, and not healthy when no poll succeeded within three poll waits (a stalled
        loop would otherwise look healthy for ever)."""
        health, window = self._health, timedelta(seconds=3 * self.poll_wait_s())
        if health.ok and health.last_seen is not None and self._clock.now() - health.last_seen > window:
            return LinkHealth(ok=False, last_seen=health.last_seen, detail=f"no successful poll for {window}")
        return health

    def poll_wait_s(self) -> float:
        """The wait before the next poll: `poll_interval_s`, doubled after each failed poll in a row, at most
        MAX_POLL_BACKOFF_S (or the interval, when that is longer), with equal jitter (between half and all of it)."""
        return self._poll_wait_s

    def report_retry_wait_s(self) -> float:
        """The wait before reports in the outbox are tried again, by the same rule as polls."""
        return self._report_wait_s

    def _backoff(self, failures: int) -> float:
        """The un-jittered wait after `failures` failed polls in a row."""
        interval = self.config.poll_interval_s
        return doubled(interval, failures, max(interval, MAX_POLL_BACKOFF_S))

    def next_report_due(self) -> datetime | None:
        """When the earliest report not yet sent is due (None: none is scheduled)."""
        dues = [
            p.due
            for t in self._events.values()
            for p in t.plans
            if p.due is not None and p.key not in t.done and (t.first_seen is None or p.due >= t.first_seen)
        ]
        return min(dues, default=None)

    async def _loop(self) -> None:
        """Sleep (injected) until the next poll, the next due report or the next report retry, whichever is
        soonest; a schedule change (a webhook notification) cuts the sleep short so the wait is worked out again."""
        poll_at = self._clock.now() + timedelta(seconds=self.poll_wait_s())
        while True:
            self._wake.clear()
            now = self._clock.now()
            wakes = [("poll", poll_at)]
            due = self.next_report_due()
            if due is not None:
                wakes.append(("report", due))
            if self.outbox and self._report_retry_at is not None:
                wakes.append(("retry", self._report_retry_at))
            what, at = min(wakes, key=lambda w: w[1])  # the poll first on a tie
            sleeper = asyncio.ensure_future(self._sleep(max(0.0, (at - now).total_seconds())))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
            if sleeper not in done:
                continue
            if what == "poll":
                back = await self._poll_step()
                poll_at = self._clock.now() + timedelta(seconds=self.poll_wait_s())
                if back and self.outbox:
                    await self.flush_reports()  # the VTN answers again: deliver what waited
            elif what == "retry":
                await self.flush_reports()
            await self.send_due_reports()

    async def _load_programs(self) -> None:
        programs: dict[str, Program] = {}
        for raw in await self.client.programs():
            try:
                program = parse(Program, raw)
            except WireError as exc:
                self._reject(raw, _canonical(raw), f"program: {exc}", "invalid_program")
                continue
            if not self.config.programs or program.program_name in self.config.programs:
                programs[program.id] = program
        self._programs = programs

    async def poll_once(self) -> None:
        """Fetch the events of the followed programs and apply every difference to what was submitted."""
        raws: list[dict[str, Any]] = []
        if self.config.programs:
            for program_id in list(self._programs):
                raws.extend(await self.client.events(program_id))
        else:
            raws = await self.client.events()
        async with self._lock:
            seen: set[str] = set()
            digests: set[str] = set()
            for raw in raws:
                event_id = raw.get("id")
                if isinstance(event_id, str):
                    seen.add(event_id)  # a listed event that no longer parses keeps what it had
                body = _canonical(raw)
                digests.add(hashlib.sha256(body).hexdigest())
                await self._apply(raw, body)
            self._refused &= digests
            for event_id in [e for e in self._events if e not in seen]:
                await self._withdraw(event_id, _canonical({"id": event_id, "deleted": True}))
        self._health = LinkHealth(ok=True, last_seen=self._clock.now())

    def _signal(self, raw: bytes, event_id: str | None) -> Signal:
        return Signal(
            protocol=SourceProtocol.OPENADR3,
            source=self.config.vtn_url,
            digest=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            received_at=self._clock.now(),
            signal_id=event_id,
        )

    def _reject(self, raw: Any, body: bytes, reason: str, code: str) -> None:
        assert self._sink is not None
        event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        self._sink.reject(self._signal(body, event_id), reason, code=code)

    async def _apply(self, raw: dict[str, Any], body: bytes) -> None:
        assert self._sink is not None
        digest = hashlib.sha256(_canonical(raw)).hexdigest()
        event_id = raw.get("id")
        tracked = self._events.get(event_id) if isinstance(event_id, str) else None
        if (tracked is not None and tracked.digest == digest) or digest in self._refused:
            return
        try:
            event = parse(Event, raw)
        except WireError as exc:
            self._refused.add(digest)
            self._reject(raw, body, f"event: {exc}", "invalid_event")
            return
        if tracked is not None and _older(event, tracked.event):
            self._refused.add(digest)
            reason = (
                f"event {event.id}: modificationDateTime {event.modification_date_time} is older than the "
                f"{tracked.event.modification_date_time} held; ignored"
            )
            self._reject(raw, body, reason, "stale_event")
            return
        if event.program_id not in self._programs and self.config.programs:
            return
        if event.program_id not in self._programs:
            await self._load_programs()
        signal = self._signal(body, event.id)
        now = self._clock.now()
        try:
            baseline = self._fleet.demand_w(resolve_target(event, self.config.normalize))
        except NormalizeError:
            baseline = None
        result = normalize_event(
            event,
            self._programs.get(event.program_id),
            self.config.normalize,
            now,
            server=self.config.vtn_url,
            baseline_w=baseline,
        )
        previous = tracked.directives if tracked else {}
        current = {d.id: d for d in result.directives}
        first_seen = tracked.first_seen if tracked and tracked.first_seen else now
        plans, cannot = report_plans(event, event_periods(event, first_seen))
        for why in cannot:
            self.report_errors.append(f"event {event.id}: {why}")
        done = tracked.done if tracked else set()
        self._events[event.id] = _Tracked(digest, event, current, first_seen, plans, done)
        self._wake.set()
        for directive in result.directives:
            self._owner[directive.id] = event.id
            await self._sink.submit(directive, signal)
        for gone_id, gone in previous.items():
            end = gone.end(now)
            if gone_id not in current and (end is None or end > now):
                await self._sink.cancel(gone_id, signal)
        for r in result.rejected:
            where = "" if r.interval_id is None else f" (interval {r.interval_id})"
            self._sink.reject(signal, f"event {event.id}{where}: {r.reason}", code=r.code)

    async def _withdraw(self, event_id: str, body: bytes) -> None:
        assert self._sink is not None
        tracked = self._events.pop(event_id, None)
        if tracked is None:
            return
        now = self._clock.now()
        signal = self._signal(body, event_id)
        for directive_id, directive in tracked.directives.items():
            end = directive.end(now)
            if end is None or end > now:
                await self._sink.cancel(directive_id, signal)

    async def _on_notification(self, notification: Notification, raw: bytes) -> None:
        async with self._lock:
            if notification.object_type == "PROGRAM":
                await self._load_programs()
            elif notification.object_type == "EVENT":
                event_id = notification.object.get("id")
                if notification.operation == "DELETE" and isinstance(event_id, str):
                    await self._withdraw(event_id, raw)
                elif notification.operation in ("CREATE", "UPDATE"):
                    await self._apply(notification.object, raw)
            self._health = LinkHealth(ok=True, last_seen=self._clock.now())

    async def directive_event(self, event: DirectiveEvent) -> None:
        """A completed directive sends the reports due by then, and those over intervals without an end that it
        closes (an event `until cancelled` cannot announce when they are due)."""
        if event.kind is not DirectiveEventKind.COMPLETED:
            return
        event_id = self._owner.get(event.directive_id)
        tracked = self._events.get(event_id) if event_id else None
        if tracked is not None and event.directive_id in tracked.directives:
            position = event.directive_id.removeprefix(directive_prefix(tracked.event.id)).split(".")[0]
            for plan in tracked.plans:
                if plan.due is None and plan.key not in tracked.done and str(plan.periods[-1].position) == position:
                    await self._send_report(tracked, plan, event.at)
        await self.send_due_reports()

    async def send_due_reports(self) -> int:
        """Post every report due by the clock (not those due before the event was first seen: a restarted VEN
        would repeat them); returns how many were attempted."""
        now = self._clock.now()
        sent = 0
        for tracked in list(self._events.values()):
            for plan in tracked.plans:
                if plan.due is None or plan.due > now or plan.key in tracked.done:
                    continue
                if tracked.first_seen is not None and plan.due < tracked.first_seen:
                    continue
                await self._send_report(tracked, plan, plan.due)
                sent += 1
        return sent

    async def _send_report(self, tracked: _Tracked, plan: ReportPlan, end: datetime) -> None:
        tracked.done.add(plan.key)
        event = tracked.event
        rows = []
        for period in plan.periods:
            until = period.end or end
            samples = {name: self._fleet.sample(t, period.start, until) for name, t in self.config.resources.items()}
            rows.append((period.id, period.start, (until - period.start).total_seconds(), samples))
        last = f"{directive_prefix(event.id)}{plan.periods[-1].position}."
        directive_id = next((d for d in sorted(tracked.directives) if d.startswith(last)), None)
        built = build_intervals_report(
            self.config.version,
            event,
            self.config.ven_name,
            rows,
            descriptors=plan.descriptors,
            report_name=f"{event.id}.{plan.periods[0].id}-{plan.periods[-1].id}",
        )
        self.report_errors.extend(built.skipped)
        if not built.body["resources"]:
            return
        if len(self.outbox) >= MAX_OUTBOX:
            dropped = self.outbox.popleft()
            self.report_errors.append(f"report {dropped.key} of event {dropped.event_id}: dropped, outbox full")
            log.warning("openadr3: outbox full (%d): report %s dropped", MAX_OUTBOX, dropped.key)
            self._dropped(dropped, "outbox_full", f"{MAX_OUTBOX} reports waiting for the VTN; the oldest is dropped")
        self.outbox.append(_PendingReport(plan.key, event.id, built.body, directive_id))
        if self._report_retry_at is None:  # not while backing off: it waits its turn behind the others
            await self.flush_reports()

    async def flush_reports(self) -> int:
        """POST the outbox in order until it is empty or the VTN fails; returns how many were delivered. A report
        the VTN refuses for good (4xx other than 408/429) is dropped and noted in `report_errors`."""
        async with self._flushing:  # the loop and a completed directive may both flush: one POST per report
            return await self._flush()

    async def _flush(self) -> int:
        delivered = 0
        while self.outbox:
            pending = self.outbox[0]
            try:
                await self.client.create_report(pending.body)
            except LinkError as exc:
                if _retryable(exc):
                    self.report_failures += 1
                    wait = self._report_wait_s = jittered(self._backoff(self.report_failures - 1), self._rand)
                    self._report_retry_at = self._clock.now() + timedelta(seconds=wait)
                    log.warning(
                        "openadr3: %d report(s) waiting, retry in %.0f s: %s", len(self.outbox), wait, exc
                    )  # fmt: skip
                    self._failed("report", exc, self.report_failures, wait)
                    return delivered
                self.outbox.popleft()
                self.report_errors.append(f"report {pending.key} of event {pending.event_id}: {exc}")
                if not isinstance(exc, WireError):  # refused: the same body would be refused again
                    log.warning("openadr3: report %s refused, not retried: %s", pending.key, exc)
                    status = exc.status if isinstance(exc, OpenAdrHttpError) else None
                    self._dropped(pending, "refused", str(exc), status)
                    continue
                # a 2xx with an unexpected body: taken, so not sent again
            else:
                self.outbox.popleft()
            delivered += 1
            self.reports_sent.append(pending.body)
            if self._sink is not None:
                self._sink.sent_upstream("report", {"report": pending.body}, directive_id=pending.directive_id)
        self.report_failures = 0
        self._report_retry_at = None
        return delivered

    async def alarm(self, report: AlarmReport) -> None:
        """OpenADR 3 has no alarm message; station faults reach the VTN as OPERATING_STATE in reports."""
        log.info("openadr3: %d alarm(s) (grid event: %s) noted", len(report.alarms), report.grid_event)
