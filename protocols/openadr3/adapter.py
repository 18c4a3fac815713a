"""`OpenAdr3Adapter`: the OpenADR 3 VEN as a gateway.interfaces.UtilityAdapter.

Start: token, VEN and resource registration, programs, optional webhook subscription, first poll; then it polls
every `poll_interval_s` (the main path: webhooks only make changes arrive sooner). Each new or changed event is
normalized into directives submitted to the runtime's DirectiveSink; directives an event no longer asks for, and
all of a deleted event's, are cancelled. Payloads that cannot be used are handed to `sink.reject` (audited), never
fatal. Reports follow each event's reportDescriptors (reports.report_plans: startInterval, numIntervals, frequency,
repeat): the loop wakes, by the injected clock and sleep, when the next report is due (or for the next poll, if
sooner), and a completed directive sends what is due at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from gateway.clock import Clock
from gateway.interfaces import (
    AlarmReport,
    DirectiveEvent,
    DirectiveEventKind,
    DirectiveSink,
    LinkHealth,
    Signal,
)
from gateway.model import Directive, SourceProtocol, Target
from protocols.openadr3.client import OpenAdrHttpError, VenClient
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
from protocols.openadr3.wire import Event, Notification, Program, WireError, parse

log = logging.getLogger(__name__)

#: The longest wait between polls while the VTN keeps failing (5xx, down, timeouts), s.
MAX_POLL_BACKOFF_S = 600.0

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
    event: Event | None
    directives: dict[str, Directive] = field(default_factory=dict)
    #: When this adapter first saw the event: the start of intervals without one; reports due earlier are not sent.
    first_seen: datetime | None = None
    plans: list[ReportPlan] = field(default_factory=list)
    #: Keys of the plans already sent (or failed: reports are not retried).
    done: set[str] = field(default_factory=set)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class OpenAdr3Adapter:
    protocol = SourceProtocol.OPENADR3

    def __init__(self, config: OpenAdr3Config, *, clock: Clock, fleet: FleetData, sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self._clock = clock
        self._fleet = fleet
        self._sleep = sleep
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

    @property
    def client(self) -> VenClient:
        if self._client is None:
            raise RuntimeError("adapter not started")
        return self._client

    async def start(self, sink: DirectiveSink) -> None:
        self._sink = sink
        self._session = aiohttp.ClientSession()
        c = self.config
        self._client = VenClient(
            self._session, c.vtn_url, c.version, c.client_id, c.client_secret, clock=self._clock, token_url=c.token_url
        )
        ven = await self.client.register_ven(c.ven_name)
        self.ven_id = str(ven["id"])
        for name in c.resources:
            await self.client.register_resource(self.ven_id, name)
        await self._load_programs()
        if c.webhook is not None:
            self._webhook = WebhookServer(
                self._on_notification, c.webhook.bearer_token, host=c.webhook.host, port=c.webhook.port,
                path=c.webhook.path,
            )  # fmt: skip
            await self._webhook.start()
            url = c.webhook.public_url or self._webhook.url
            for program in self._programs.values():
                sub = await self.client.subscribe(c.ven_name, program.id, url, c.webhook.bearer_token)
                self.subscriptions.append(str(sub["id"]))
        await self.poll_once()
        self._task = asyncio.create_task(self._loop(), name="openadr3-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for sub in self.subscriptions:
            try:
                await self.client.unsubscribe(sub)
            except (aiohttp.ClientError, OpenAdrHttpError, WireError, TimeoutError) as exc:
                log.warning("openadr3: could not delete subscription %s: %s", sub, exc)
        self.subscriptions.clear()
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
        MAX_POLL_BACKOFF_S (or the interval, when that is longer)."""
        interval = self.config.poll_interval_s
        return min(interval * (1 << min(self.poll_failures, 32)), max(interval, MAX_POLL_BACKOFF_S))

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
        """Sleep (injected) until the next poll or the next due report, whichever is sooner; a schedule change (a
        webhook notification) cuts the sleep short so the wait is worked out again."""
        poll_at = self._clock.now() + timedelta(seconds=self.config.poll_interval_s)
        while True:
            self._wake.clear()
            now = self._clock.now()
            poll_wait = max(0.0, (poll_at - now).total_seconds())
            due = self.next_report_due()
            report_wait = None if due is None else max(0.0, (due - now).total_seconds())
            for_poll = report_wait is None or poll_wait <= report_wait
            sleeper = asyncio.ensure_future(self._sleep(poll_wait if for_poll or report_wait is None else report_wait))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                done, _ = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    task.cancel()
            if sleeper not in done:
                continue
            if for_poll:
                try:
                    await self.poll_once()
                    self.poll_failures = 0
                except (aiohttp.ClientError, OpenAdrHttpError, WireError, TimeoutError) as exc:
                    # What was received stays in force; the VTN is asked again later and later.
                    self.poll_failures += 1
                    self._health = LinkHealth(ok=False, last_seen=self._health.last_seen, detail=str(exc))
                    log.warning("openadr3: poll failed (%d in a row): %s", self.poll_failures, exc)
                poll_at = self._clock.now() + timedelta(seconds=self.poll_wait_s())
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
            for raw in raws:
                event_id = raw.get("id")
                if isinstance(event_id, str):
                    seen.add(event_id)
                await self._apply(raw, _canonical(raw))
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
        if tracked is not None and tracked.digest == digest:
            return
        try:
            event = parse(Event, raw)
        except WireError as exc:
            self._reject(raw, body, f"event: {exc}", "invalid_event")
            if isinstance(event_id, str) and event_id not in self._events:
                self._events[event_id] = _Tracked(digest, None)
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
        if tracked is not None and tracked.event is not None and event.directive_id in tracked.directives:
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
        assert tracked.event is not None
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
        try:
            await self.client.create_report(built.body)
            self.reports_sent.append(built.body)
            if self._sink is not None:
                self._sink.sent_upstream("report", {"report": built.body}, directive_id=directive_id)
        except (aiohttp.ClientError, OpenAdrHttpError, WireError, TimeoutError) as exc:
            self.report_errors.append(f"report {plan.key} of event {event.id}: {exc}")

    async def alarm(self, report: AlarmReport) -> None:
        """OpenADR 3 has no alarm message; station faults reach the VTN as OPERATING_STATE in reports."""
        log.info("openadr3: %d alarm(s) (grid event: %s) noted", len(report.alarms), report.grid_event)
