"""`dergw demo`: the gateway on embedded defaults, a mixed simulated fleet, and one sample directive end to end.

Everything talks over real sockets on 127.0.0.1: stations over OCPP-J (security profile 1), the directive over
the operator API. The outcome table is the proof: OCPP 2.1 stations with DER accept every control; 2.0.1 and 1.6
stations get the import limit and report the rest as not supported, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import ApiConfig, GatewayConfig, OcppConfig, StationConfig
from gateway.model import OcppVersion, OutcomeStatus, StationOutcome
from gateway.runtime import Gateway
from protocols.ocpp.auth import hash_password
from protocols.ocpp.simulator import Fleet

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
        return await _demo(stations, seconds, forever=forever, base=base)


async def _demo(count: int, seconds: float, *, forever: bool, base: Path) -> int:
    deadline = time.monotonic() + seconds
    password = secrets.token_urlsafe(24)
    token = secrets.token_urlsafe(24)
    digest = hash_password(password)
    ids = [f"{_PREFIX}{i:05d}" for i in range(1, count + 1)]
    config = GatewayConfig(
        data_dir=base / "data",
        certs_dir=base / "certs",
        ocpp=OcppConfig(port=0, security_profile=1, call_timeout_s=10, heartbeat_s=60),
        api=ApiConfig(port=0, token=token),
        stations=[StationConfig(id=sid, password_hash=digest, groups=[f"site-{i % 2}"]) for i, sid in enumerate(ids)],
    )
    gateway = Gateway.build(config)
    await gateway.start()
    fleet = Fleet(gateway.ocpp.url, count, list(_MIX), prefix=_PREFIX, password=password, meter_interval=5.0)
    try:
        print(f"gateway: OCPP {gateway.ocpp.url}/{{stationId}}  API {gateway.api_url}  (SQLite in {base})")
        await fleet.start()
        print(f"fleet: {fleet.booted}/{count} stations booted ({_mix_text(count)})")
        ready = [s.capabilities_ready.wait() for s in gateway.fleet.stations.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*ready), max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            print("not every station reported its capabilities in time", file=sys.stderr)
            return 1
        outcomes = await _apply_sample(gateway, token, deadline)
        if outcomes is None:
            return 1
        failures = _print_table(gateway, outcomes)
        print(f"\n{count - len(failures)}/{count} stations reached their expected outcome")
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        if forever:
            print(f"\nrunning until Ctrl-C. Try: dergw directive --api {gateway.api_url} --token {token} list")
            await _until_interrupted()
        return 0 if not failures else 1
    finally:
        await fleet.stop()
        await gateway.stop()


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


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
