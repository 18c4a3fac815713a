"""The IEEE 2030.5 utility adapter: discovers our EndDevices, polls their DER programs, hands directives to the
runtime and reports back (Responses, LogEvents, and with fleet data DER status/capability/settings/availability and
the site power as a MirrorMeterReading).

Everything that can fail on the wire fails one poll: it is logged with a precise message, audited (the document
rejected, `input.rejected`, where one was involved; the failed attempt, `upstream.failed`, always: one entry per
attempt, so per backoff step of that resource), retried with jittered backoff, and nothing already handed to the
runtime is withdrawn. Reports wait in a bounded outbox for the next run; one the server refuses for good (a 4xx
other than 408/429) or that a full outbox pushes out is dropped and audited (`upstream.dropped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from gateway.backoff import Random
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
from gateway.model import OutcomeStatus, SourceProtocol
from gateway.tls import client_context
from protocols.ieee2030_5 import decode, encode, fleet, safexml, wire
from protocols.ieee2030_5.client import Client
from protocols.ieee2030_5.config import CIPHERS, EndDeviceBinding, Ieee20305Config
from protocols.ieee2030_5.errors import InputError, TransportError
from protocols.ieee2030_5.fleet import FleetData, FleetRatings
from protocols.ieee2030_5.normalize import (
    EventAction,
    NormalizationError,
    control_directive,
    default_directive,
    directive_id,
    event_action,
)
from protocols.ieee2030_5.polling import PollPlan
from protocols.ieee2030_5.wire import EventStatusCode, ResponseStatus

log = logging.getLogger("protocols.ieee2030_5")
T = TypeVar("T")

_EVENT_STATUS: dict[DirectiveEventKind, ResponseStatus] = {
    DirectiveEventKind.RECEIVED: ResponseStatus.RECEIVED,
    DirectiveEventKind.STARTED: ResponseStatus.STARTED,
    DirectiveEventKind.COMPLETED: ResponseStatus.COMPLETED,
    DirectiveEventKind.CANCELLED: ResponseStatus.CANCELLED,
    DirectiveEventKind.SUPERSEDED: ResponseStatus.SUPERSEDED,
    # The fleet cannot fully meet it: 2030.5 has no "partial", opt-out is the honest answer.
    DirectiveEventKind.PARTIAL: ResponseStatus.OPT_OUT,
}
#: The most reports kept for the next run while the server cannot take them; beyond it the oldest is dropped.
MAX_OUTBOX = 256
#: Poll keys (their part before ":") -> the operation named in the audit.
_OPERATIONS = {"dcap": "discover", "time": "time", "programs": "poll", "der": "der_report"}
#: LogEvent codes (vendor-defined, profileID 1): grid event vs local fault, started vs ended.
LOG_GRID_STARTED, LOG_GRID_ENDED, LOG_LOCAL_STARTED, LOG_LOCAL_ENDED = 0, 1, 2, 3


def wants(response_required: int, status: ResponseStatus) -> bool:
    """responseRequired bit 0 asks for 'received', bit 1 for specific responses; rejections go on either."""
    if status is ResponseStatus.RECEIVED:
        return bool(response_required & 0x01)
    if status >= ResponseStatus.REJECTED_NOT_APPLICABLE:
        return bool(response_required & 0x03)
    return bool(response_required & 0x02)


@dataclass(slots=True)
class _Known:
    binding: EndDeviceBinding
    mrid: str
    fingerprint: bytes
    reply_to: str | None = None
    response_required: int = 0
    end: datetime | None = None
    closed: bool = False
    sent: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Device:
    binding: EndDeviceBinding
    end_device: wire.EndDevice
    program_lists: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Doc:
    url: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _ProgramRead:
    """One program as read in one poll: its default, its controls (with the page each came on), its curves."""

    program: wire.DERProgram
    default: tuple[wire.DefaultDERControl, _Doc] | None
    controls: list[tuple[wire.DERControl, _Doc]]
    curves: dict[str, wire.DERCurve]


class Ieee20305Adapter:
    """gateway.interfaces.UtilityAdapter for one 2030.5 server.

    `autorun=False` leaves scheduling to the caller, who steps it with `run_due()` against its own clock: the
    tests do so with a ManualClock, so no test waits on wall time.
    """

    protocol = SourceProtocol.IEEE2030_5

    def __init__(
        self,
        config: Ieee20305Config,
        *,
        clock: Clock,
        autorun: bool = True,
        client: Client | None = None,
        fleet: FleetData | None = None,
        rand: Random = random.random,
    ) -> None:
        self.config = config
        self.clock = clock
        self.autorun = autorun
        #: Where DER status, capability, settings, availability and site power come from (None: nothing reported).
        self.fleet = fleet
        self.client = client or Client(
            config.server,
            client_context(config.ca, cert=config.cert, key=config.key, tls12_only=True, ciphers=CIPHERS),
            timeout_s=config.request_timeout_s,
        )
        self.plan = PollPlan(config.backoff_base_s, config.backoff_cap_s, rand)
        #: Server clock minus ours, seconds (from the Time resource).
        self.clock_offset_s = 0.0
        self.devices: dict[str, _Device] = {}
        self._known: dict[str, _Known] = {}
        #: (method, href, document) waiting to be sent, in order.
        self._outbox: list[tuple[str, str, bytes]] = []
        #: Failed deliveries in a row (0 after one goes through).
        self.report_failures = 0
        self._flush_lock = asyncio.Lock()
        #: Last DERCapability / DERSettings queued per href (PUT again only when it changes).
        self._put_last: dict[str, bytes] = {}
        #: MirrorUsagePoint location per binding name, once the server created it.
        self._mups: dict[str, str] = {}
        #: setGradW of the DefaultDERControl last read, per binding name (reported in DERSettings).
        self._grad: dict[str, int | None] = {}
        #: Ratings last reported per binding name and when they changed (DERSettings updatedTime).
        self._ratings: dict[str, tuple[FleetRatings, int]] = {}
        self._sink: DirectiveSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._dcap: wire.DeviceCapability | None = None
        self._last_ok: datetime | None = None
        self._last_error = ""
        self._log_event_id = 0

    # -- UtilityAdapter ----------------------------------------------------------------------------------------------

    async def start(self, sink: DirectiveSink) -> None:
        self._sink = sink
        self.plan.add("dcap", self.clock.now(), self.config.default_poll_s)
        if self.autorun:
            self._task = asyncio.create_task(self._run(), name="ieee2030_5")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    def health(self) -> LinkHealth:
        keys = ("dcap", "time", *(f"{kind}:{n}" for n in self.devices for kind in ("programs", "der")))
        failing = any(self.plan.failures(k) for k in keys)
        overdue = self.plan.overdue(self.clock.now())
        ok = self._last_ok is not None and not failing and not overdue
        detail = f"not polled within its window: {', '.join(overdue)}" if overdue and not failing else self._last_error
        return LinkHealth(ok=ok, last_seen=self._last_ok, detail="" if ok else detail)

    async def directive_event(self, event: DirectiveEvent) -> None:
        known = self._known.get(event.directive_id)
        if known is None:
            return
        if event.kind is DirectiveEventKind.REJECTED:
            unsupported = any(o.status is OutcomeStatus.NOT_SUPPORTED for o in event.outcomes)
            status = ResponseStatus.REJECTED_NOT_APPLICABLE if unsupported else ResponseStatus.REJECTED_INVALID
        elif event.kind in _EVENT_STATUS:
            status = _EVENT_STATUS[event.kind]
        else:
            return
        self._respond(known, status)
        await self._flush()

    async def alarm(self, report: AlarmReport) -> None:
        for alarm in report.alarms:
            if report.grid_event:
                code = LOG_GRID_ENDED if alarm.ended else LOG_GRID_STARTED
            else:
                code = LOG_LOCAL_ENDED if alarm.ended else LOG_LOCAL_STARTED
            for device in self.devices.values():
                if not device.binding.covers(alarm.station_id):
                    continue
                if device.end_device.log_events is None:
                    log.warning(
                        "EndDevice %s has no LogEventListLink: alarm of %s not reported",
                        device.binding.name,
                        alarm.station_id,
                    )
                    continue
                self._log_event_id = (self._log_event_id + 1) % 0x10000
                event = wire.LogEvent(
                    created_date_time=self._server_now(alarm.at),
                    function_set=0,
                    log_event_code=code,
                    log_event_id=self._log_event_id,
                    log_event_pen=self.config.log_event_pen,
                    profile_id=1,
                    details=f"{alarm.station_id}:{alarm.grid_event_fault or alarm.control}"[:32],
                    extended_data=alarm.evse_id,
                )
                self._queue(("POST", device.end_device.log_events.href, encode.log_event(event)))
        await self._flush()

    # -- scheduling --------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self.run_due()
            due = self.plan.next_due()
            delay = self.config.default_poll_s if due is None else (due - self.clock.now()).total_seconds()
            await asyncio.sleep(max(0.0, delay))

    def next_due(self) -> datetime | None:
        return self.plan.next_due()

    async def run_due(self) -> None:
        """Run every poll that is due now, then send whatever reports are waiting."""
        done: set[str] = set()
        # Discovery adds keys that are due at once; each key runs at most once per call.
        while pending := [k for k in self.plan.due(self.clock.now()) if k not in done]:
            key = pending[0]
            done.add(key)
            try:
                poll_s = await self._poll(key)
            except (InputError, TransportError) as exc:
                delay = self.plan.failed(key, self.clock.now())
                self._last_error = f"{key}: {exc}"
                log.error("2030.5 %s failed (%s); retry in %.0f s", key, exc, delay)
                operation = _OPERATIONS[key.partition(":")[0]]
                self._failed(operation, exc, f"{key}: {exc.message}", self.plan.failures(key), delay)
            else:
                self._last_ok = self.clock.now()
                self.plan.succeeded(key, self._last_ok, poll_s)
        await self._flush()

    async def _poll(self, key: str) -> float | None:
        if key == "dcap":
            return await self._discover()
        if key == "time":
            return await self._read_time()
        if key.startswith("der:"):
            return await self._report_der(self.devices[key.removeprefix("der:")])
        return await self._read_programs(self.devices[key.removeprefix("programs:")])

    # -- reading -----------------------------------------------------------------------------------------------------

    def _signal(self, doc: _Doc, signal_id: str | None = None) -> Signal:
        return Signal(
            protocol=SourceProtocol.IEEE2030_5,
            source=doc.url,
            digest=hashlib.sha256(doc.body).hexdigest(),
            size=len(doc.body),
            received_at=self.clock.now(),
            signal_id=signal_id,
        )

    def _reject(self, doc: _Doc, exc: InputError, signal_id: str | None = None) -> None:
        log.error("2030.5 input refused: %s (%s)", exc, doc.url)
        if self._sink is not None:
            self._sink.reject(self._signal(doc, signal_id), exc.message, code=exc.code)

    async def _read(self, href: str, root: str, decoder: Callable[[decode.Reader], T]) -> tuple[T, _Doc]:
        fetched = await self.client.get(href)
        doc = _Doc(fetched.url, fetched.body)
        try:
            return decoder(decode.root(fetched.body, root)), doc
        except InputError as exc:
            self._reject(doc, exc)
            raise

    async def _read_list(
        self, href: str, root: str, item: str, decoder: Callable[[decode.Reader], T]
    ) -> tuple[list[tuple[T, _Doc]], int | None]:
        """Every item of a list with the page it came on, reading `s`/`l` pages until `all` are read or a page is
        empty; and the list's pollRate."""
        items: list[tuple[T, _Doc]] = []
        poll_rate: int | None = None
        while True:
            fetched = await self.client.get(href, f"s={len(items)}&l={self.config.page_limit}")
            doc = _Doc(fetched.url, fetched.body)
            try:
                page = decode.page(decode.root(fetched.body, root), item, decoder)
            except InputError as exc:
                self._reject(doc, exc)
                raise
            items.extend((entry, doc) for entry in page.items)
            poll_rate = page.poll_rate if poll_rate is None else poll_rate
            if page.results == 0 or len(items) >= page.all:
                return items, poll_rate

    async def _read_time(self) -> float | None:
        if self._dcap is None or self._dcap.time is None:
            return None
        tm, _ = await self._read(self._dcap.time.href, "Time", decode.time)
        now = self.clock.now()
        self.clock_offset_s = tm.current_time - now.timestamp()
        if abs(self.clock_offset_s) > 60:
            log.warning(
                "2030.5 server clock differs from ours by %.0f s; event times are corrected", self.clock_offset_s
            )
        return tm.poll_rate

    def _server_now(self, at: datetime) -> int:
        return int(at.timestamp() + self.clock_offset_s)

    async def _discover(self) -> float | None:
        dcap, _ = await self._read(self.config.dcap_path, "DeviceCapability", decode.device_capability)
        self._dcap = dcap
        now = self.clock.now()
        if dcap.time is not None:
            self.plan.add("time", now, self.config.default_poll_s)
            if self.plan.due_at("time") <= now:
                self.plan.succeeded("time", now, await self._read_time())
        if dcap.end_devices is None:
            raise InputError("discovery.no_edev", f"{self.config.dcap_path} has no EndDeviceListLink")
        devices, _ = await self._read_list(dcap.end_devices.href, "EndDeviceList", "EndDevice", decode.end_device)
        for binding in self.config.devices:
            found = next((d for d, _ in devices if _matches(d, binding)), None)
            if found is None:
                found = await self._register(dcap.end_devices.href, binding)
            programs = await self._program_lists(found, binding, dcap)
            self.devices[binding.name] = _Device(binding, found, programs)
            self.plan.add(f"programs:{binding.name}", self.clock.now(), self.config.default_poll_s)
            if self.fleet is not None and (found.der_list is not None or dcap.mirror_usage_points is not None):
                self.plan.add(f"der:{binding.name}", self.clock.now(), self.config.default_poll_s)
        return dcap.poll_rate

    async def _register(self, edev_list: str, binding: EndDeviceBinding) -> wire.EndDevice:
        if not self.config.register:
            raise InputError("discovery.not_registered", f"no EndDevice with LFDI {binding.lfdi} on the server")
        body = encode.end_device(
            wire.EndDevice(sfdi=binding.sfdi, lfdi=binding.lfdi, changed_time=self._server_now(self.clock.now()))
        )
        location = await self.client.post(edev_list, body)
        if location is None:
            raise InputError("discovery.register", f"server created EndDevice {binding.lfdi} without a Location")
        log.info("2030.5 registered EndDevice %s at %s", binding.lfdi, location)
        found, _ = await self._read(location, "EndDevice", decode.end_device)
        return found

    async def _program_lists(
        self, device: wire.EndDevice, binding: EndDeviceBinding, dcap: wire.DeviceCapability
    ) -> tuple[str, ...]:
        if device.registration is not None and binding.pin is not None:
            reg, doc = await self._read(device.registration.href, "Registration", decode.registration)
            if reg.pin != binding.pin:
                exc = InputError("registration.pin", f"EndDevice {binding.name}: server PIN does not match ours")
                self._reject(doc, exc)
                raise exc
        lists = [dcap.programs.href] if dcap.programs is not None else []
        if device.fsa_list is not None:
            fsas, _ = await self._read_list(
                device.fsa_list.href,
                "FunctionSetAssignmentsList",
                "FunctionSetAssignments",
                decode.function_set_assignments,
            )
            lists.extend(f.programs.href for f, _ in fsas if f.programs is not None)
        return tuple(dict.fromkeys(lists))

    async def _read_programs(self, device: _Device) -> float | None:
        """Read every program of one EndDevice, then reconcile what is in force with what the server lists."""
        poll: int | None = None
        reads: list[_ProgramRead] = []
        for href in device.program_lists:
            programs, rate = await self._read_list(href, "DERProgramList", "DERProgram", decode.der_program)
            poll = rate if poll is None else poll
            for program, _ in programs:
                default = None
                if program.default_control is not None:
                    default = await self._read(
                        program.default_control.href, "DefaultDERControl", decode.default_der_control
                    )
                controls: dict[str, tuple[wire.DERControl, _Doc]] = {}
                for link in (program.controls, program.active_controls):
                    if link is not None:
                        items, _ = await self._read_list(link.href, "DERControlList", "DERControl", decode.der_control)
                        for c, doc in items:
                            controls.setdefault(c.mrid, (c, doc))
                curves: dict[str, wire.DERCurve] = {}
                if program.curves is not None:
                    found, _ = await self._read_list(program.curves.href, "DERCurveList", "DERCurve", decode.der_curve)
                    curves = {c.href: c for c, _ in found if c.href}
                reads.append(_ProgramRead(program, default, list(controls.values()), curves))
        await self._reconcile(device, reads)
        return poll

    # -- reconciling -------------------------------------------------------------------------------------------------

    async def _reconcile(self, device: _Device, reads: list[_ProgramRead]) -> None:
        assert self._sink is not None
        binding, now = device.binding, self.clock.now()
        seen: set[str] = set()
        for read in reads:
            if read.default is not None:
                await self._default(binding, read.program, *read.default, read.curves, seen)
            for control, doc in read.controls:
                await self._control(binding, read.program, control, doc, read.curves, seen, now)
        for did, known in list(self._known.items()):
            if known.binding is not binding or did in seen:
                continue
            del self._known[did]
            if not known.closed and (known.end is None or known.end > now):
                log.info("2030.5 %s no longer listed by the server: cancelled", did)
                await self._sink.cancel(
                    did, Signal(SourceProtocol.IEEE2030_5, self.config.server, "", 0, now, known.mrid)
                )

    async def _default(
        self,
        binding: EndDeviceBinding,
        program: wire.DERProgram,
        default: wire.DefaultDERControl,
        doc: _Doc,
        curves: dict[str, wire.DERCurve],
        seen: set[str],
    ) -> None:
        assert self._sink is not None
        did = directive_id(binding, default.mrid)
        seen.add(did)
        self._grad[binding.name] = default.set_grad_w
        fingerprint = encode.default_der_control(default) + program.mrid.encode() + bytes([program.primacy])
        known = self._known.get(did)
        if known is not None and known.fingerprint == fingerprint:
            return
        self._known[did] = _Known(binding, default.mrid, fingerprint)
        try:
            normalized = default_directive(
                default, program, binding, curves, server=self.config.server, nominal_hz=self.config.nominal_hz
            )
        except NormalizationError as exc:
            self._reject(doc, exc, default.mrid)
            return
        if normalized.unexpressed:
            log.warning("2030.5 %s: not expressible in the model: %s", did, ", ".join(normalized.unexpressed))
        await self._sink.submit(normalized.directive, self._signal(doc, default.mrid))

    async def _control(
        self,
        binding: EndDeviceBinding,
        program: wire.DERProgram,
        control: wire.DERControl,
        doc: _Doc,
        curves: dict[str, wire.DERCurve],
        seen: set[str],
        now: datetime,
    ) -> None:
        assert self._sink is not None
        did = directive_id(binding, control.mrid)
        seen.add(did)
        fingerprint = _fingerprint(control) + program.mrid.encode() + bytes([program.primacy])
        known = self._known.get(did)
        if known is not None and known.fingerprint == fingerprint:
            return
        if known is None:
            known = self._known[did] = _Known(binding, control.mrid, fingerprint)
        known.fingerprint = fingerprint
        known.reply_to, known.response_required = control.reply_to, control.response_required
        signal = self._signal(doc, control.mrid)
        try:
            action, randomize = event_action(control)
            if action is EventAction.SUBMIT:
                normalized = control_directive(
                    control,
                    program,
                    binding,
                    curves,
                    server=self.config.server,
                    offset_s=self.clock_offset_s,
                    now=now,
                    nominal_hz=self.config.nominal_hz,
                )
        except NormalizationError as exc:
            self._reject(doc, exc, control.mrid)
            known.closed = True
            self._respond(known, exc.status)
            return
        if action is EventAction.SUBMIT:
            if normalized.unexpressed:
                log.warning("2030.5 %s: not expressible in the model: %s", did, ", ".join(normalized.unexpressed))
            await self._sink.submit(normalized.directive, signal)
            known.end, known.closed = normalized.directive.end(now), False
            self._respond(known, ResponseStatus.RECEIVED)
            return
        if not known.closed:
            superseded = action is EventAction.SUPERSEDED
            await self._sink.cancel(did, signal, randomize_s=randomize, superseded=superseded)
            known.closed = True
        self._respond(
            known, ResponseStatus.SUPERSEDED if action is EventAction.SUPERSEDED else ResponseStatus.CANCELLED
        )

    # -- reporting ---------------------------------------------------------------------------------------------------

    def _respond(self, known: _Known, status: ResponseStatus) -> None:
        if known.reply_to is None or status in known.sent or not wants(known.response_required, status):
            return
        known.sent.add(status)
        body = encode.response(
            wire.Response(
                end_device_lfdi=known.binding.lfdi,
                subject=known.mrid,
                status=status,
                created_date_time=self._server_now(self.clock.now()),
            )
        )
        self._queue(("POST", known.reply_to, body))

    def _put(self, href: str, body: bytes) -> None:
        """Queue a PUT; one still waiting for the same resource is replaced (the latest state is what counts)."""
        self._outbox = [o for o in self._outbox if not (o[0] == "PUT" and o[1] == href)]
        self._queue(("PUT", href, body))

    def _put_changed(self, href: str, body: bytes) -> None:
        if self._put_last.get(href) != body:
            self._put_last[href] = body
            self._put(href, body)

    async def _report_der(self, device: _Device) -> float | None:
        """PUT the DER documents built from fleet data and POST the site power reading. Capability and settings
        go when they change; status, availability and the reading every time. The cadence is the EndDevice's
        postRate, else the DERList's pollRate, else `default_poll_s`."""
        assert self.fleet is not None
        binding, end_device = device.binding, device.end_device
        now = self._server_now(self.clock.now())
        ratings, state = self.fleet.ratings(binding.target), self.fleet.der_state(binding.target)
        cadence: int | None = end_device.post_rate
        if end_device.der_list is not None:
            ders, rate = await self._read_list(end_device.der_list.href, "DERList", "DER", decode.der)
            cadence = cadence or rate
            if len(ders) > 1:
                log.warning("EndDevice %s lists %d DERs: the first stands for its stations", binding.name, len(ders))
            if ders:
                der = ders[0][0]
                previous = self._ratings.get(binding.name)
                if previous is None or previous[0] != ratings:
                    self._ratings[binding.name] = (ratings, now)
                updated = self._ratings[binding.name][1]
                if der.capability is not None:
                    self._put_changed(der.capability.href, encode.der_capability(fleet.capability(ratings)))
                if der.settings is not None:
                    settings = fleet.settings(ratings, updated=updated, set_grad_w=self._grad.get(binding.name))
                    self._put_changed(der.settings.href, encode.der_settings(settings))
                if der.status is not None:
                    self._put(der.status.href, encode.der_status(fleet.status(state, at=now)))
                if der.availability is not None:
                    self._put(der.availability.href, encode.der_availability(fleet.availability(state, at=now)))
        mups = self._dcap.mirror_usage_points if self._dcap is not None else None
        if mups is not None:
            location = self._mups.get(binding.name)
            if location is None:
                location = await self._register_mup(mups.href, binding, cadence)
            if state.power_w is not None:
                reading = fleet.site_reading(binding.lfdi, state.power_w, at=now)
                self._queue(("POST", location, encode.mirror_meter_reading(reading)))
        return cadence

    async def _register_mup(self, href: str, binding: EndDeviceBinding, post_rate: int | None) -> str:
        body = encode.mirror_usage_point(fleet.usage_point(binding.lfdi, post_rate=post_rate))
        location = await self.client.post(href, body)
        if location is None:
            raise InputError("mup.location", f"MirrorUsagePoint of {binding.name} created without a Location")
        log.info("2030.5 MirrorUsagePoint of %s at %s", binding.name, location)
        self._mups[binding.name] = location
        if self._sink is not None:
            self._sink.sent_upstream("MirrorUsagePoint", {"href": href, "document": body.decode("utf-8")})
        return location

    async def _flush(self) -> None:
        """Send waiting reports in order; stop at the first failure and keep the rest for the next run.

        One flush at a time (polls and directive events both flush), and the document in flight is taken out of
        the outbox, so a newer document queued meanwhile (a status replacing a status) is never popped unsent."""
        async with self._flush_lock:
            while self._outbox:
                if not await self._send_first():
                    return

    async def _send_first(self) -> bool:
        method, href, body = item = self._outbox.pop(0)
        try:
            if method == "PUT":
                await self.client.put(href, body)
            else:
                await self.client.post(href, body)
        except TransportError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
                log.error("2030.5 %s to %s refused (%s); dropped", method, href, exc)
                self._drop(item, "refused", exc.message, exc.status)
                return True  # the same document would be refused again: the next one goes
            self.report_failures += 1
            self._last_error = f"report to {href}: {exc}"
            log.error("2030.5 %s to %s failed (%s); kept for the next poll", method, href, exc)
            self._failed("report", exc, f"{method} {href}: {exc.message}", self.report_failures, None)
            if not (method == "PUT" and any(o[0] == "PUT" and o[1] == href for o in self._outbox)):
                self._outbox.insert(0, item)  # unless a newer document for the same resource replaced it
            return False
        self.report_failures = 0
        if self._sink is not None:
            data = {"href": href, "method": method, "document": body.decode("utf-8")}
            self._sink.sent_upstream(_root_name(body), data)
        return True

    def pending_reports(self) -> int:
        return len(self._outbox)

    def _queue(self, item: tuple[str, str, bytes]) -> None:
        if len(self._outbox) >= MAX_OUTBOX:
            dropped = self._outbox.pop(0)
            log.error("2030.5 outbox full (%d): %s to %s dropped", MAX_OUTBOX, dropped[0], dropped[1])
            self._drop(dropped, "outbox_full", f"{MAX_OUTBOX} documents waiting for the server; the oldest is dropped")
        self._outbox.append(item)

    def _failed(
        self, operation: str, exc: InputError | TransportError, detail: str, attempt: int, retry: float | None
    ) -> None:
        if self._sink is None:
            return
        status = exc.status if isinstance(exc, TransportError) else None
        self._sink.upstream_failed(
            UpstreamFailure(self.protocol, self.config.server, operation, exc.code, detail, attempt, retry, status)
        )

    def _drop(self, item: tuple[str, str, bytes], reason: str, detail: str, status: int | None = None) -> None:
        if self._sink is None:
            return
        method, href, body = item
        what = _root_name(body)
        self._sink.upstream_dropped(
            UpstreamDrop(self.protocol, self.config.server, what, reason, f"{method} {href}: {detail}", status)
        )


def _root_name(document: bytes) -> str:
    """The root element's local name (Response, LogEvent ...), for the audit entry of what was sent."""
    tag: str = safexml.parse(document).tag
    return tag.rpartition("}")[2]


def _fingerprint(control: wire.DERControl) -> bytes:
    """What makes a control new to the runtime: not the server moving it from scheduled to active."""
    if control.event_status.current_status in (EventStatusCode.SCHEDULED, EventStatusCode.ACTIVE):
        control = replace(control, event_status=replace(control.event_status, current_status=0, date_time=0))
    return encode.der_control(control)


def _matches(device: wire.EndDevice, binding: EndDeviceBinding) -> bool:
    if device.lfdi is not None:
        return device.lfdi.lower() == binding.lfdi.lower()
    return device.sfdi == binding.sfdi
