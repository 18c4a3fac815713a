"""The counterpart server: serves a scenario's resources over mutual TLS, lets tests change controls while the
gateway runs, injects faults, and records every document the gateway sends.

Resources: /dcap, /tm, /edev, /edev/{e}, /edev/{e}/rg, /edev/{e}/fsa, /edev/{e}/fsa/1/derp, /edev/{e}/derp/{p},
/edev/{e}/derp/{p}/{derc,actderc,dderc,dc}, /edev/{e}/der (one DER, /edev/{e}/der/1, whose dercap, derg, ders and
dera take PUTs and serve back what was put), /mup (POST a MirrorUsagePoint, then MirrorMeterReadings to its
/mup/{n}), POST /edev/{e}/rsps (Responses) and /edev/{e}/lel (LogEvents).
Lists honour `s` and `l`; every GET carries an ETag and answers If-None-Match with 304.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiohttp import web

from gateway.certs import lfdi as cert_lfdi
from gateway.clock import Clock
from protocols.ieee2030_5 import decode, encode, wire
from protocols.ieee2030_5.client import CONTENT_TYPE
from protocols.ieee2030_5.errors import InputError
from protocols.ieee2030_5.server import scenario as sc
from protocols.ieee2030_5.wire import EventStatusCode

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Received:
    """One document the gateway sent: where, what root element, from which certificate, and the raw bytes."""

    method: str
    path: str
    root: str
    body: bytes
    client_lfdi: str | None
    at: int


@dataclass(slots=True)
class _Program:
    index: int
    mrid: str
    primacy: int
    description: str | None
    default: wire.DefaultDERControl | None = None
    controls: dict[str, wire.DERControl] = field(default_factory=dict)
    curves: dict[str, wire.DERCurve] = field(default_factory=dict)


@dataclass(slots=True)
class _Device:
    index: int
    lfdi: str
    sfdi: int
    pin: int | None
    registered: bool
    programs: list[_Program] = field(default_factory=list)

    @property
    def href(self) -> str:
        return f"/edev/{self.index}"


@dataclass(slots=True)
class _Fault:
    prefix: str
    status: int | None  # None = hang until released
    remaining: int


class Counterpart:
    """A 2030.5 utility server driven by a scenario. Server time is `clock.now() + time_offset_s` (clock skew)."""

    def __init__(self, scenario: dict[str, Any], *, clock: Clock, time_offset_s: float = 0.0) -> None:
        self.clock = clock
        self.time_offset_s = time_offset_s
        self.poll_rate_s = int(scenario.get("poll_rate_s", 60))
        self.allow_registration = bool(scenario.get("allow_registration", True))
        #: EndDevice postRate: how often the gateway should send DER status and meter readings.
        self.post_rate_s = int(scenario.get("post_rate_s", self.poll_rate_s))
        #: Serve DERList links on EndDevices and a MirrorUsagePointList link on /dcap.
        self.offer_der = bool(scenario.get("der", True))
        self.offer_mup = bool(scenario.get("mirror_usage_points", True))
        #: MirrorUsagePoints the gateway created, in order (/mup/1 ...).
        self.mups: list[wire.MirrorUsagePoint] = []
        #: Last document PUT per path (DER status, capability, settings, availability).
        self.stored: dict[str, bytes] = {}
        self.received: list[Received] = []
        #: (method, path with query, HTTP status) of every request, in order.
        self.requests: list[tuple[str, str, int]] = []
        self._ids = itertools.count(1)
        self._faults: list[_Fault] = []
        self._raw: dict[str, bytes] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.devices: list[_Device] = []
        for i, spec in enumerate(scenario["end_devices"], start=1):
            device = _Device(
                i, str(spec["lfdi"]).lower(), int(spec["sfdi"]), spec.get("pin"), bool(spec.get("registered", True))
            )
            self.devices.append(device)
            for j, pspec in enumerate(spec.get("programs", []), start=1):
                program = _Program(
                    j, self._mrid(pspec.get("mrid")), int(pspec.get("primacy", 0)), pspec.get("description")
                )
                device.programs.append(program)
                for cspec in pspec.get("curves", []):
                    self.add_curve(device.index, program.index, cspec)
                if "default" in pspec:
                    self.set_default(device.index, program.index, pspec["default"])
                for cspec in pspec.get("controls", []):
                    self.create_control(device.index, program.index, cspec)

    # -- test and demo API -------------------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now().timestamp() + self.time_offset_s)

    def _mrid(self, given: str | None = None) -> str:
        return given.lower() if given else f"{next(self._ids):032x}"

    def _program(self, device: int, program: int) -> tuple[_Device, _Program]:
        d = self.devices[device - 1]
        return d, d.programs[program - 1]

    def _base(self, d: _Device, p: _Program, spec: dict[str, Any]) -> wire.ControlBase:
        hrefs = {m: f"{d.href}/derp/{p.index}/dc/{m}" for m in p.curves}
        return sc.control_base(spec, hrefs)

    def add_curve(self, device: int, program: int, spec: dict[str, Any]) -> str:
        d, p = self._program(device, program)
        mrid = self._mrid(spec.get("mrid"))
        p.curves[mrid] = sc.curve(spec, mrid, f"{d.href}/derp/{p.index}/dc/{mrid}", self.now())
        return mrid

    def set_default(self, device: int, program: int, spec: dict[str, Any]) -> str:
        d, p = self._program(device, program)
        mrid = self._mrid(spec.get("mrid") or (p.default.mrid if p.default else None))
        version = 0 if p.default is None else (p.default.version or 0) + 1
        p.default = wire.DefaultDERControl(
            mrid=mrid,
            base=self._base(d, p, spec.get("base", {})),
            href=f"{d.href}/derp/{p.index}/dderc",
            version=version,
            **{k: spec.get(v) for k, v in _DEFAULT_SETTINGS.items()},
        )
        return mrid

    def create_control(self, device: int, program: int, spec: dict[str, Any]) -> str:
        """A new DERControl. `start` is absolute server time, or `start_in_s` from now; `response_required` is the
        bit mask (default 3: received and specific responses)."""
        d, p = self._program(device, program)
        mrid = self._mrid(spec.get("mrid"))
        now = self.now()
        p.controls[mrid] = wire.DERControl(
            mrid=mrid,
            creation_time=now,
            event_status=wire.EventStatus(EventStatusCode.SCHEDULED, now),
            start=int(spec["start"]) if "start" in spec else now + int(spec.get("start_in_s", 0)),
            duration=int(spec.get("duration_s", 3600)),
            base=self._base(d, p, spec.get("base", {})),
            href=f"{d.href}/derp/{p.index}/derc/{mrid}",
            description=spec.get("description"),
            version=0,
            reply_to=f"{d.href}/rsps",
            response_required=int(spec.get("response_required", 3)),
            randomize_start=spec.get("randomize_start"),
            randomize_duration=spec.get("randomize_duration"),
        )
        return mrid

    def _find(self, mrid: str) -> tuple[_Program, wire.DERControl]:
        for d in self.devices:
            for p in d.programs:
                if mrid in p.controls:
                    return p, p.controls[mrid]
        raise KeyError(mrid)

    def change_control(self, mrid: str, *, base: dict[str, Any] | None = None, **times: int) -> None:
        """Change a control in place (a new version): `base` replaces DERControlBase; `start`/`duration` move it."""
        p, c = self._find(mrid)
        d = next(d for d in self.devices if p in d.programs)
        c = replace(
            c,
            version=(c.version or 0) + 1,
            start=times.get("start", c.start),
            duration=times.get("duration", c.duration),
        )
        if base is not None:
            c = replace(c, base=self._base(d, p, base))
        p.controls[mrid] = c

    def _set_status(self, mrid: str, status: EventStatusCode) -> None:
        p, c = self._find(mrid)
        p.controls[mrid] = replace(c, event_status=wire.EventStatus(status, self.now()))

    def cancel_control(self, mrid: str, *, randomized: bool = False) -> None:
        self._set_status(mrid, EventStatusCode.CANCELLED_RANDOMIZED if randomized else EventStatusCode.CANCELLED)

    def supersede_control(self, mrid: str) -> None:
        self._set_status(mrid, EventStatusCode.SUPERSEDED)

    def delete_control(self, mrid: str) -> None:
        p, _ = self._find(mrid)
        del p.controls[mrid]

    def fail(self, prefix: str, status: int, times: int = 1) -> None:
        """Answer the next `times` requests whose path starts with `prefix` with HTTP `status`."""
        self._faults.append(_Fault(prefix, status, times))

    def hang(self, prefix: str, times: int = 1) -> None:
        """Never answer the next `times` matching requests (until `release()` or stop): the client must time out."""
        self._faults.append(_Fault(prefix, None, times))

    def serve_raw(self, path: str, body: bytes | None) -> None:
        """Serve `body` verbatim at `path` (hostile or broken documents); None goes back to the real resource."""
        if body is None:
            self._raw.pop(path, None)
        else:
            self._raw[path] = body

    def release(self) -> None:
        self._release.set()

    def responses(self) -> list[wire.Response]:
        return [decode.response(decode.root(r.body, r.root)) for r in self.received if r.root == "DERControlResponse"]

    def log_events(self) -> list[wire.LogEvent]:
        return [decode.log_event(decode.root(r.body, "LogEvent")) for r in self.received if r.root == "LogEvent"]

    def meter_readings(self) -> list[tuple[str, wire.MirrorMeterReading]]:
        """(MirrorUsagePoint path, reading) of every MirrorMeterReading posted, in order."""
        return [
            (r.path, decode.mirror_meter_reading(decode.root(r.body, "MirrorMeterReading")))
            for r in self.received
            if r.root == "MirrorMeterReading"
        ]

    def der_capability(self, device: int = 1) -> wire.DERCapability | None:
        body = self.stored.get(f"/edev/{device}/der/1/dercap")
        return None if body is None else decode.der_capability(decode.root(body, "DERCapability"))

    def der_status(self, device: int = 1) -> wire.DERStatus | None:
        body = self.stored.get(f"/edev/{device}/der/1/ders")
        return None if body is None else decode.der_status(decode.root(body, "DERStatus"))

    # -- serving -----------------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self, host: str, port: int, context: ssl.SSLContext) -> int:
        self._release = asyncio.Event()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context, reuse_address=True)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        for fault in self._faults:
            if fault.remaining and request.path.startswith(fault.prefix):
                fault.remaining -= 1
                if fault.status is None:
                    await self._release.wait()
                    raise web.HTTPServiceUnavailable()
                self.requests.append((request.method, request.path_qs, fault.status))
                return web.Response(status=fault.status, text="injected fault")
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.requests.append((request.method, request.path_qs, exc.status))
            raise
        self.requests.append((request.method, request.path_qs, response.status))
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            body = self._raw.get(request.path) or self._get(request)
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(body=body, content_type=CONTENT_TYPE, headers={"ETag": etag})
        if request.method in ("POST", "PUT"):
            return await self._receive(request)
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST", "PUT"])

    def _client_lfdi(self, request: web.Request) -> str | None:
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return cert_lfdi(der).lower() if der else None

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            root = decode.parse_root_name(body)
        except InputError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        self.received.append(Received(request.method, request.path, root, body, self._client_lfdi(request), self.now()))
        parts = request.path.strip("/").split("/")
        if parts == ["edev"] and root == "EndDevice":
            return self._register(body)
        if parts == ["mup"] and request.method == "POST":
            return self._mirror(body, root)
        if len(parts) == 5 and parts[0] == "edev" and parts[2:4] == ["der", "1"] and parts[4] in _DER_PARTS:
            if request.method != "PUT" or root != _DER_PARTS[parts[4]]:
                raise web.HTTPBadRequest(text=f"{request.path} takes a PUT of {_DER_PARTS[parts[4]]}, not {root}")
            self.stored[request.path] = body
            return web.Response(status=204)
        if len(parts) == 2 and parts[0] == "mup":
            if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(self.mups):
                raise web.HTTPNotFound()
            if root != "MirrorMeterReading":
                raise web.HTTPBadRequest(text=f"{request.path} takes MirrorMeterReadings, not {root}")
        location = f"{request.path.rstrip('/')}/{next(self._ids)}"
        return web.Response(status=201 if request.method == "POST" else 204, headers={"Location": location})

    def _mirror(self, body: bytes, root: str) -> web.StreamResponse:
        """A MirrorUsagePoint POSTed to /mup: created, or found again by mRID (same Location, 2030.5 MUP rules)."""
        try:
            posted = decode.mirror_usage_point(decode.root(body, "MirrorUsagePoint"))
        except InputError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        index = next((i for i, m in enumerate(self.mups, start=1) if m.mrid == posted.mrid), None)
        if index is None:
            self.mups.append(posted)
            index = len(self.mups)
            return web.Response(status=201, headers={"Location": f"/mup/{index}"})
        return web.Response(status=204, headers={"Location": f"/mup/{index}"})

    def _register(self, body: bytes) -> web.StreamResponse:
        if not self.allow_registration:
            raise web.HTTPForbidden(text="registration is not open")
        try:
            posted = decode.end_device(decode.root(body, "EndDevice"))
        except InputError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        device = next((d for d in self.devices if d.lfdi == posted.lfdi), None)
        if device is None:
            device = _Device(len(self.devices) + 1, posted.lfdi or "", posted.sfdi, None, True)
            self.devices.append(device)
        device.registered = True
        return web.Response(status=201, headers={"Location": device.href})

    # -- documents ---------------------------------------------------------------------------------------------------

    def _get(self, request: web.Request) -> bytes:
        parts = request.path.strip("/").split("/")
        start = int(request.query.get("s", "0"))
        limit = int(request.query.get("l", "255"))
        now = self.now()
        if parts == ["dcap"]:
            return encode.device_capability(
                wire.DeviceCapability(
                    href="/dcap",
                    poll_rate=self.poll_rate_s,
                    time=wire.Link("/tm"),
                    end_devices=wire.ListLink("/edev", len(self._listed())),
                    mirror_usage_points=wire.ListLink("/mup", len(self.mups)) if self.offer_mup else None,
                )
            )
        if parts == ["tm"]:
            return encode.time(wire.Time(current_time=now, href="/tm", poll_rate=self.poll_rate_s * 10))
        if parts == ["mup"] and self.offer_mup:
            mups = [replace(m, href=f"/mup/{i}") for i, m in enumerate(self.mups, start=1)]
            return encode.mirror_usage_point_list(_page(mups, start, limit, "/mup", self.poll_rate_s))
        if len(parts) == 2 and parts[0] == "mup" and parts[1].isdigit() and 1 <= int(parts[1]) <= len(self.mups):
            return encode.mirror_usage_point(replace(self.mups[int(parts[1]) - 1], href=request.path))
        if parts == ["edev"]:
            return encode.end_device_list(
                _page([self._end_device(d) for d in self._listed()], start, limit, "/edev", self.poll_rate_s)
            )
        if (
            len(parts) < 2
            or parts[0] != "edev"
            or not parts[1].isdigit()
            or not 1 <= int(parts[1]) <= len(self.devices)
        ):
            raise web.HTTPNotFound()
        d = self.devices[int(parts[1]) - 1]
        rest = parts[2:]
        if rest == []:
            return encode.end_device(self._end_device(d))
        if rest == ["rg"] and d.pin is not None:
            return encode.registration(wire.Registration(now, d.pin, href=f"{d.href}/rg", poll_rate=self.poll_rate_s))
        if rest == ["fsa"]:
            fsa = wire.FunctionSetAssignments(
                mrid=f"{d.index:032x}",
                href=f"{d.href}/fsa/1",
                programs=wire.ListLink(f"{d.href}/fsa/1/derp", len(d.programs)),
                time=wire.Link("/tm"),
            )
            return encode.fsa_list(_page([fsa], start, limit, f"{d.href}/fsa", self.poll_rate_s))
        if rest == ["der"] and self.offer_der:
            return encode.der_list(_page([self._der(d)], start, limit, f"{d.href}/der", self.poll_rate_s))
        if rest == ["der", "1"] and self.offer_der:
            return encode.der(self._der(d))
        if len(rest) == 3 and rest[:2] == ["der", "1"] and request.path in self.stored:
            return self.stored[request.path]
        if rest == ["fsa", "1", "derp"]:
            programs = [self._program_doc(d, p) for p in d.programs]
            return encode.der_program_list(_page(programs, start, limit, f"{d.href}/fsa/1/derp", self.poll_rate_s))
        if len(rest) >= 2 and rest[0] == "derp" and rest[1].isdigit() and 1 <= int(rest[1]) <= len(d.programs):
            return self._program_part(d, d.programs[int(rest[1]) - 1], rest[2:], start, limit, now)
        raise web.HTTPNotFound()

    def _listed(self) -> list[_Device]:
        return [d for d in self.devices if d.registered]

    def _end_device(self, d: _Device) -> wire.EndDevice:
        return wire.EndDevice(
            sfdi=d.sfdi,
            changed_time=0,
            href=d.href,
            lfdi=d.lfdi,
            log_events=wire.ListLink(f"{d.href}/lel"),
            enabled=True,
            fsa_list=wire.ListLink(f"{d.href}/fsa", 1),
            registration=wire.Link(f"{d.href}/rg") if d.pin is not None else None,
            der_list=wire.ListLink(f"{d.href}/der", 1) if self.offer_der else None,
            post_rate=self.post_rate_s,
        )

    @staticmethod
    def _der(d: _Device) -> wire.DER:
        base = f"{d.href}/der/1"
        return wire.DER(
            href=base,
            availability=wire.Link(f"{base}/dera"),
            capability=wire.Link(f"{base}/dercap"),
            settings=wire.Link(f"{base}/derg"),
            status=wire.Link(f"{base}/ders"),
        )

    def _program_doc(self, d: _Device, p: _Program) -> wire.DERProgram:
        base = f"{d.href}/derp/{p.index}"
        return wire.DERProgram(
            mrid=p.mrid,
            primacy=p.primacy,
            href=base,
            description=p.description,
            active_controls=wire.ListLink(f"{base}/actderc"),
            default_control=wire.Link(f"{base}/dderc") if p.default is not None else None,
            controls=wire.ListLink(f"{base}/derc"),
            curves=wire.ListLink(f"{base}/dc", len(p.curves)) if p.curves else None,
        )

    def _program_part(self, d: _Device, p: _Program, rest: list[str], start: int, limit: int, now: int) -> bytes:
        base = f"{d.href}/derp/{p.index}"
        if rest == []:
            return encode.der_program(self._program_doc(d, p))
        if rest == ["dderc"] and p.default is not None:
            return encode.default_der_control(p.default)
        controls = [self._current(c, now) for c in p.controls.values() if c.start + c.duration > now]
        controls.sort(key=lambda c: (c.start, -c.creation_time))
        if rest == ["derc"]:
            return encode.der_control_list(_page(controls, start, limit, f"{base}/derc"))
        if rest == ["actderc"]:
            active = [c for c in controls if c.event_status.current_status == EventStatusCode.ACTIVE]
            return encode.der_control_list(_page(active, start, limit, f"{base}/actderc"))
        if len(rest) == 2 and rest[0] == "derc" and rest[1] in p.controls:
            return encode.der_control(self._current(p.controls[rest[1]], now))
        if rest == ["dc"]:
            return encode.der_curve_list(_page(list(p.curves.values()), start, limit, f"{base}/dc"))
        if len(rest) == 2 and rest[0] == "dc" and rest[1] in p.curves:
            return encode.der_curve(p.curves[rest[1]])
        raise web.HTTPNotFound()

    @staticmethod
    def _current(c: wire.DERControl, now: int) -> wire.DERControl:
        """Scheduled controls become active at their start (cancelled and superseded ones keep their status)."""
        if c.event_status.current_status == EventStatusCode.SCHEDULED and c.start <= now:
            return replace(c, event_status=wire.EventStatus(EventStatusCode.ACTIVE, c.start))
        return c


#: DER sub-resources and the document each takes.
_DER_PARTS = {"dera": "DERAvailability", "dercap": "DERCapability", "derg": "DERSettings", "ders": "DERStatus"}

_DEFAULT_SETTINGS = {
    "set_es_delay": "setESDelay",
    "set_es_high_freq": "setESHighFreq",
    "set_es_high_volt": "setESHighVolt",
    "set_es_low_freq": "setESLowFreq",
    "set_es_low_volt": "setESLowVolt",
    "set_es_ramp_tms": "setESRampTms",
    "set_es_random_delay": "setESRandomDelay",
    "set_grad_w": "setGradW",
    "set_soft_grad_w": "setSoftGradW",
}


def _page(items: list[T], start: int, limit: int, href: str, poll_rate: int | None = None) -> wire.Page[T]:
    chosen = tuple(items[start : start + limit])
    return wire.Page(items=chosen, all=len(items), results=len(chosen), href=href, poll_rate=poll_rate)
