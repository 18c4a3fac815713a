"""`dergw demo`: the whole story on one machine: utility counterparts, the gateway with its dashboard, a mixed
simulated fleet, and a scenario played end to end.

Everything talks over real sockets on 127.0.0.1: the IEEE 2030.5 utility server over TLS (a development PKI made
in the data directory), the OpenADR 3 VTN over HTTP, stations over OCPP-J (security profile 1), the sample
directive over the operator API. The scenario: a 2030.5 curtailment (import limit) starting shortly after it is
posted, an OpenADR 3 event (a two-interval import capacity limit, reported back to the VTN), the sample directive
(volt-var curve, frequency droop), a station fault reported to the 2030.5 server as a LogEvent, and the
curtailment ending, with the staggered restore ramps the stations received. The outcome
table is the proof: OCPP 2.1 stations with DER accept every control; 2.0.1 and 1.6 stations get the import limit
and report the rest as not supported, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from gateway.certs import DevPki, init_dev_pki
from gateway.clock import SystemClock
from gateway.config import ApiConfig, GatewayConfig, Iec61850Section, OcppConfig, StationConfig
from gateway.demo_openadr import RESOURCE, OpenAdrStep
from gateway.interfaces import DirectiveEvent, DirectiveEventKind, UtilityAdapter
from gateway.model import OcppVersion, OutcomeStatus, SourceProtocol, StationOutcome, Target, TargetScope
from gateway.progress import sampled, wanted
from gateway.restore_spread import restore_report
from gateway.runtime import AdapterFactory, Gateway
from gateway.tls import server_context
from gateway.utility import FleetView
from protocols.ieee2030_5.adapter import Ieee20305Adapter
from protocols.ieee2030_5.config import EndDeviceBinding, Ieee20305Config
from protocols.ieee2030_5.server import Counterpart
from protocols.ocpp.auth import hash_password
from protocols.ocpp.simulator import Fleet
from protocols.openadr3.adapter import OpenAdr3Adapter, OpenAdr3Config
from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.vtn import Vtn

#: The sample directive (kept identical to examples/directive.json by a test). The volt-var curve is load-signed like
#: every model quantity: below nominal voltage the station injects vars (negative), above it absorbs them.
SAMPLE_DIRECTIVE: dict[str, Any] = {
    "id": "demo-curtail-1",
    "source": {"protocol": "api", "program": "demo"},
    "priority": 5,
    "duration_s": 3600,
    "target": {"scope": "fleet"},
    "controls": {
        "import_limit_w": 7000,
        "export_limit_w": 3000,
        "curves": [
            {
                "kind": "volt_var",
                "x_unit": "pct_v_nominal",
                "y_unit": "pct_max_var",
                "points": [{"x": 92, "y": -30}, {"x": 98, "y": 0}, {"x": 102, "y": 0}, {"x": 108, "y": 30}],
                "response_time_s": 10,
            }
        ],
        "freq_droop": {
            "over_freq_hz": 50.2,
            "under_freq_hz": 49.8,
            "over_droop": 0.05,
            "under_droop": 0.05,
            "response_time_s": 5,
        },
    },
}

_MIX = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)
_PREFIX = "DEMO"
#: From this many stations on, the demo shows the fleet booting (on a terminal).
_PROGRESS_FROM = 100


def expected(version: OcppVersion, outcome: StationOutcome) -> str | None:
    """Why `outcome` is not what a station of `version` should reach, or None when it is."""
    if version is OcppVersion.V21:
        if outcome.status is not OutcomeStatus.ACCEPTED:
            return f"expected accepted, got {outcome.status.value}"
        return None
    applied = {c for cmd in outcome.commands if cmd.status is OutcomeStatus.ACCEPTED for c in cmd.controls}
    if "import_limit_w" not in applied:
        return f"import limit not applied ({outcome.status.value})"
    if outcome.status is not OutcomeStatus.PARTIAL or not all(u.reason for u in outcome.unsupported):
        return f"expected partial with reasons, got {outcome.status.value}"
    return None


@contextlib.contextmanager
def _data_dir(given: Path | None) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="dergw-demo-") as tmp:
        yield Path(tmp)


async def run_demo(stations: int, seconds: float, *, forever: bool, data_dir: Path | None) -> int:
    if stations < 1:
        print("--stations must be at least 1", file=sys.stderr)
        return 2
    with _data_dir(data_dir) as base:
        try:
            return await _demo(stations, seconds, forever=forever, base=base)
        except asyncio.CancelledError:  # Ctrl-C before the scenario was over (forever mode)
            print("\nstopped")
            return 0


async def _demo(count: int, seconds: float, *, forever: bool, base: Path) -> int:
    deadline = time.monotonic() + seconds
    password = secrets.token_urlsafe(24)
    token = secrets.token_urlsafe(24)
    digest = hash_password(password)
    ids = [f"{_PREFIX}{i:05d}" for i in range(1, count + 1)]
    mms_port = _free_port() if _IEC61850 else None
    config = GatewayConfig(
        data_dir=base / "data",
        certs_dir=base / "certs",
        ocpp=OcppConfig(port=0, security_profile=1, call_timeout_s=10, heartbeat_s=60),
        api=ApiConfig(port=0, token=token),
        stations=[StationConfig(id=sid, password_hash=digest, groups=[f"site-{i % 2}"]) for i, sid in enumerate(ids)],
        iec61850=Iec61850Section(port=mms_port, sample_s=1.0) if mms_port else None,
    )
    clock = SystemClock()
    if forever:  # Ctrl-C stops the demo cleanly at any step, not only once the scenario is over
        main = asyncio.current_task()
        assert main is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, main.cancel)
    async with _Utilities(base, clock, ids) as utilities:
        gateway = Gateway.build(config, clock=clock, adapters=utilities.adapters())
        watch = _Watch(gateway)
        gateway.dispatcher.on_event(watch)
        await gateway.start()
        fleet = Fleet(gateway.ocpp.url, count, list(_MIX), prefix=_PREFIX, password=password, meter_interval=5.0)
        try:
            print(f"gateway: OCPP {gateway.ocpp.url}/{{stationId}}  API {gateway.api_url}  (SQLite in {base})")
            print(f"dashboard: {gateway.api_url}/dashboard/#token={token}")
            if mms_port:
                print(f"IEC 61850: the fleet is the virtual IED DERGW on mms://127.0.0.1:{mms_port}")
            else:
                print("IEC 61850: not in this demo (install the optional extra: pip install 'der-gateway[iec61850]')")
            print(f"fleet: connecting {count} simulated stations ...")
            if count >= _PROGRESS_FROM and wanted(False):  # on a terminal, show a large fleet booting
                await sampled(fleet.start(), lambda: fleet.booted, count, "fleet: stations booted")
            else:
                await fleet.start()
            print(f"fleet: {fleet.booted}/{count} stations booted ({_mix_text(count)})")
            ready = [s.capabilities_ready.wait() for s in gateway.fleet.stations.values()]
            try:
                await asyncio.wait_for(asyncio.gather(*ready), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                print("not every station reported its capabilities in time", file=sys.stderr)
                return 1
            curtail_s = 120.0 if forever else 8.0
            curtailment = await _curtail(utilities.server, watch, curtail_s, deadline)
            # The timed steps (the curtailment's end, the OpenADR event's intervals) may outlast --seconds.
            ends_by = max(deadline, time.monotonic() + curtail_s + 30)
            openadr = OpenAdrStep(utilities.vtn, watch.first)
            await openadr.post(interval_s=60 if forever else 3, start_in_s=3)
            if curtailment is None or not await openadr.dispatched(deadline, _counts):
                return 1
            print(
                "\nscenario 3/5: the operator adds the sample directive (volt-var curve, frequency droop) via the API"
            )
            outcomes = await _apply_sample(gateway, token, deadline)
            if outcomes is None:
                return 1
            failures = _print_table(gateway, outcomes)
            print(f"\n{count - len(failures)}/{count} stations reached their expected outcome")
            for line in failures:
                print(f"  {line}", file=sys.stderr)
            played = await _fault_and_restore(gateway, fleet, utilities.server, watch, curtailment, ends_by)
            played = await openadr.reported(ends_by) and played
            if mms_port:
                played = await _scada_reads(mms_port, ends_by) and played
            if forever:
                print(f"\nrunning until Ctrl-C. Dashboard: {gateway.api_url}/dashboard/#token={token}")
                print(f"Try: dergw directive --api {gateway.api_url} --token {token} list")
                await _until_interrupted()
            return 0 if not failures and played else 1
        finally:
            await fleet.stop()
            await gateway.stop()


#: IEC 61850 joins the demo when its optional (GPL) binding is installed (`make run` installs the dev extras).
_IEC61850 = importlib.util.find_spec("pyiec61850") is not None

#: The demo's 2030.5 EndDevice: the whole fleet behind one site (values as in the 2030.5 tests' scenario).
_SITE_LFDI = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"
_SITE_SFDI = 1111
_SITE_PIN = 111115
_VEN = ("dergw-ven", secrets.token_urlsafe(16))


class _Utilities:
    """The utility side on 127.0.0.1: the 2030.5 server over TLS with a fresh development PKI, and the OpenADR 3
    VTN with one program; `adapters()` gives the gateway's links to both."""

    def __init__(self, base: Path, clock: SystemClock, ids: list[str]) -> None:
        self._base, self._clock, self._ids = base, clock, ids
        self.server = Counterpart(
            {
                "poll_rate_s": 2,
                "end_devices": [
                    {
                        "lfdi": _SITE_LFDI,
                        "sfdi": _SITE_SFDI,
                        "pin": _SITE_PIN,
                        "programs": [{"description": "DOE", "primacy": 1}],
                    }
                ],
            },
            clock=clock,
        )
        self.vtn = Vtn(OpenAdrVersion.V3_1_0, dict([_VEN]), clock=clock)
        self._pki: DevPki | None = None
        self._port = 0

    async def __aenter__(self) -> _Utilities:
        print(f"utility: making a development PKI in {self._base / 'pki'} ...")
        self._pki = init_dev_pki(self._base / "pki", stations=[], now=datetime.now(UTC))
        context = server_context(
            self._pki.server.cert, self._pki.server.key, client_ca=self._pki.ca.cert, require_client_cert=True
        )
        self._port = await self.server.start("127.0.0.1", 0, context)
        await self.vtn.start()
        await self.vtn.create("programs", {"programName": "demo-flex"})
        print(
            f"utility: IEEE 2030.5 server https://127.0.0.1:{self._port}/dcap (mutual TLS),"
            f" OpenADR 3 VTN {self.vtn.url}"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.vtn.stop()
        await self.server.stop()

    def adapters(self) -> list[UtilityAdapter | AdapterFactory]:
        assert self._pki is not None
        sep_config = Ieee20305Config(
            server=f"https://127.0.0.1:{self._port}",
            ca=self._pki.ca.cert,
            cert=self._pki.gateway_client.cert,
            key=self._pki.gateway_client.key,
            devices=(
                EndDeviceBinding(
                    name="demo-site",
                    lfdi=_SITE_LFDI,
                    sfdi=_SITE_SFDI,
                    target=Target(scope=TargetScope.FLEET),
                    stations=tuple(self._ids),
                    pin=_SITE_PIN,
                ),
            ),
            default_poll_s=2,
        )
        vtn_url, clock = self.vtn.url, self._clock

        def ieee(view: FleetView) -> UtilityAdapter:
            return Ieee20305Adapter(sep_config, clock=clock, fleet=view)

        def openadr(view: FleetView) -> UtilityAdapter:
            config = OpenAdr3Config(
                vtn_url=vtn_url,
                client_id=_VEN[0],
                client_secret=_VEN[1],
                ven_name="dergw-demo",
                poll_interval_s=2,
                resources={RESOURCE: Target(scope=TargetScope.FLEET)},
            )
            return OpenAdr3Adapter(config, clock=clock, fleet=view)

        return [ieee, openadr]


class _Watch:
    """Every directive event, so the scenario can wait for one (woken by events, bounded by the demo's deadline)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.events: list[DirectiveEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: DirectiveEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def source(self, event: DirectiveEvent) -> SourceProtocol | None:
        record = self._gateway.store.directive(event.directive_id)
        return record.directive.source.protocol if record else None

    async def first(self, match: Callable[[DirectiveEvent], bool], deadline: float) -> DirectiveEvent | None:
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                while True:
                    found = next((e for e in self.events if match(e)), None)
                    if found is not None:
                        return found
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return None


def _counts(event: DirectiveEvent) -> str:
    counts: dict[str, int] = {}
    for o in event.outcomes:
        counts[o.status.value] = counts.get(o.status.value, 0) + 1
    return ", ".join(f"{k}={n}" for k, n in sorted(counts.items())) or "-"


async def _curtail(server: Counterpart, watch: _Watch, duration_s: float, deadline: float) -> str | None:
    """Post a 2030.5 import limit starting shortly; return the gateway's directive id once it is on the stations."""
    start_in = 3
    server.create_control(
        1,
        1,
        {
            "start_in_s": start_in,
            "duration_s": int(duration_s),
            "base": {"opModImpLimW": {"value": 5, "multiplier": 3}},
        },
    )
    print(
        f"\nscenario 1/5: the utility posts a 2030.5 curtailment (import <= 5 kW)"
        f" starting in {start_in} s for {duration_s:g} s"
    )
    planned = {DirectiveEventKind.SCHEDULED, DirectiveEventKind.PARTIAL, DirectiveEventKind.REJECTED}
    event = await watch.first(lambda e: e.kind in planned and watch.source(e) is SourceProtocol.IEEE2030_5, deadline)
    if event is None:
        print("the 2030.5 curtailment did not reach the stations in time", file=sys.stderr)
        return None
    print(f"  polled, translated and sent as {event.directive_id}: station outcomes {_counts(event)}")
    return event.directive_id


def _mix_text(count: int) -> str:
    return ", ".join(f"{sum(1 for i in range(count) if _MIX[i % 3] is v)} x {v.value}" for v in _MIX)


async def _apply_sample(gateway: Gateway, token: str, deadline: float) -> list[StationOutcome] | None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{gateway.api_url}/api/directives", json=SAMPLE_DIRECTIVE) as resp:
            body = await resp.json()
            if resp.status != 202:
                print(f"directive refused: {resp.status} {body}", file=sys.stderr)
                return None
        print(f"directive {body['id']} submitted: import <= 7 kW, export <= 3 kW, volt-var curve, frequency droop")
        try:
            await asyncio.wait_for(gateway.dispatcher.wait(body["id"]), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            print("not every station answered in time", file=sys.stderr)
        async with http.get(f"{gateway.api_url}/api/directives/{body['id']}") as resp:
            shown = await resp.json()
    return [StationOutcome.model_validate(o) for o in shown["outcomes"]]


def _print_table(gateway: Gateway, outcomes: list[StationOutcome]) -> list[str]:
    """One line per station (what it applied, what it could not), then each distinct reason once."""
    print(
        f"\n{'station':<11} {'version':<10} {'outcome':<10} {'applied (station answered Accepted)':<60} not supported"
    )
    failures = []
    reasons: dict[tuple[str, str], str] = {}
    for o in outcomes:
        version = gateway.fleet.stations[o.station_id].version or OcppVersion.V21
        applied = ", ".join(c for cmd in o.commands if cmd.status is OutcomeStatus.ACCEPTED for c in cmd.controls)
        refused = ", ".join(u.control for u in o.unsupported)
        print(f"{o.station_id:<11} {version.value:<10} {o.status.value:<10} {applied or '-':<60} {refused or '-'}")
        for u in o.unsupported:
            reasons.setdefault((version.value, u.control), u.reason)
        problem = expected(version, o)
        if problem:
            failures.append(f"{o.station_id} ({version.value}): {problem}")
    if reasons:
        print("\nwhy not supported:")
        for (version_name, control), reason in sorted(reasons.items()):
            print(f"  {version_name:<10} {control:<16} {reason}")
    return failures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _scada_reads(port: int, deadline: float) -> bool:
    """Utility SCADA's view of the same fleet over IEC 61850 MMS: power and the fault, read from the virtual IED."""
    from protocols.iec61850.clib import Fc
    from protocols.iec61850.client import ScadaClient

    print("SCADA: reading the virtual IED over IEC 61850 MMS")
    scada = await asyncio.to_thread(ScadaClient, "127.0.0.1", port, origin="demo-scada")
    try:
        power = await asyncio.to_thread(scada.read, "MMXU1.TotW.mag.f", Fc.MX)
        alarms = await asyncio.to_thread(scada.read, "GGIO1.IntIn1.stVal", Fc.ST)
        connected = await asyncio.to_thread(scada.read, "GGIO1.IntIn2.stVal", Fc.ST)
    finally:
        await asyncio.to_thread(scada.close)
    print(f"  MMXU1.TotW = {float(power) / 1000:.1f} kW, stations connected = {connected}, open alarms = {alarms}")
    return time.monotonic() < deadline


async def _fault_and_restore(
    gateway: Gateway, fleet: Fleet, server: Counterpart, watch: _Watch, curtailment: str, deadline: float
) -> bool:
    """A station fault reported upstream, then the curtailment's end and the staggered restore it calls for."""
    faulty = next(s for s in fleet.stations if s.version is OcppVersion.V21)
    print(f"\nscenario 4/5: {faulty.station_id} raises NotifyDERAlarm (OverVoltage on its volt-var control)")
    await faulty.raise_alarm("VoltVar", grid_event_fault="OverVoltage", extra_info="demo: inverter fault")
    await gateway.alarms.flush()  # the relay classifies alarms on a timer; the demo does not wait for it
    logged = [e for e in server.log_events() if faulty.station_id in (e.details or "")]
    if not logged:
        print("the alarm did not reach the 2030.5 server", file=sys.stderr)
        return False
    print(f"  the 2030.5 server received LogEvent {logged[-1].log_event_code}: {logged[-1].details}")
    print("\nscenario 5/5: waiting for the curtailment to end ...")
    ended = await watch.first(
        lambda e: e.directive_id == curtailment and e.kind is DirectiveEventKind.COMPLETED, deadline
    )
    if ended is None:
        print("the curtailment did not end in time", file=sys.stderr)
        return False
    print(f"  {curtailment} completed; the restore ramps the stations hold (gateway/restorer.py):")
    for line in restore_report(gateway, fleet.stations, curtailment):
        print(line)
    return True


async def _until_interrupted() -> None:
    """Until the signal handlers installed by `_demo` cancel the demo."""
    await asyncio.Event().wait()
