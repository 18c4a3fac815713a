"""A gateway killed with SIGKILL mid-event and started again continues with no duplicate, lost or stale command.

A real process (`python -m gateway.cli run --config FILE`), simulated stations in the test process that reconnect to
the new process on their own; reconciliation decides what each gets. Assertions are on what the stations received.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gateway.model import OcppVersion
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, TOKEN, password_hash

V21, V201 = OcppVersion.V21, OcppVersion.V201
SETS_AND_CLEARS = ("SetDERControl", "SetChargingProfile", "ClearDERControl", "ClearChargingProfile")
CURVE = {
    "kind": "volt_var",
    "x_unit": "pct_v_nominal",
    "y_unit": "pct_max_var",
    "points": [{"x": 92, "y": -30}, {"x": 108, "y": 30}],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(tmp_path: Path, ocpp_port: int, api_port: int, ids: list[str]) -> Path:
    stations = "".join(f'[[stations]]\nid = "{sid}"\npassword_hash = "{password_hash()}"\n\n' for sid in ids)
    text = (
        'data_dir = "data"\ncerts_dir = "certs"\n\n'
        f"[ocpp]\nport = {ocpp_port}\nsecurity_profile = 1\ncall_timeout_s = 5.0\nheartbeat_s = 60\n\n"
        f'[api]\nport = {api_port}\ntoken = "{TOKEN}"\n\n{stations}'
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@asynccontextmanager
async def _process(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """The gateway as its own process, up once it prints its endpoints; killed (if still alive) on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"gateway started" not in (line := await proc.stdout.readline()):
                assert line, "gateway process ended before it was up"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _until(check: Callable[[], Any], timeout_s: float = 20.0) -> None:
    """Until `check()` (sync or async) is true; a real process offers nothing else to wait on."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


def _sets_and_clears(sim: SimStation, since: int) -> list[tuple[str, dict[str, Any]]]:
    return [(a, p) for a, p in sim.received[since:] if a in SETS_AND_CLEARS]


def _held(sim: SimStation) -> set[str]:
    return {c.control_id for c in sim.der if not c.is_default} | {str(p.profile_id) for p in sim.profiles.profiles}


async def test_sigkill_mid_event_then_restart_resends_only_what_is_missing(tmp_path: Path) -> None:
    ocpp_port, api_port = _free_port(), _free_port()
    ids = ["A21", "B201", "C201"]
    config = _write_config(tmp_path, ocpp_port, api_port, ids)
    url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    api = f"http://127.0.0.1:{api_port}/api"
    sims = {
        "A21": SimStation(url, "A21", V21, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
        "B201": SimStation(url, "B201", V201, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
        "C201": SimStation(url, "C201", V201, password=PASSWORD, meter_interval=3600, reconnect_delay=0.1),
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def show(did: str) -> dict[str, Any]:
            async with http.get(f"{api}/directives/{did}") as response:
                body: dict[str, Any] = await response.json()
                return body

        async def settled(did: str, expected: dict[str, str]) -> bool:
            body = await show(did)
            got = {o["station_id"]: o["status"] for o in body.get("outcomes", [])}
            return body["state"] != "received" and got == expected

        async def reconciled() -> set[str]:
            async with http.get(f"{api}/audit", params={"kind": "station.reconciled"}) as response:
                return {e.get("station_id") for e in (await response.json())["entries"]}

        try:
            async with _process(config) as first:
                await asyncio.gather(sims["A21"].start(), sims["B201"].start())
                event = {"id": "event", "priority": 2, "duration_s": 3600,
                         "controls": {"import_limit_w": 5000, "curves": [CURVE]}}  # fmt: skip
                gone = {"id": "gone", "priority": 5, "duration_s": 3600, "controls": {"import_limit_w": 4000}}
                for raw in (event, gone):
                    async with http.post(f"{api}/directives", json=raw) as response:
                        assert response.status == 202, await response.text()
                # 2.0.1 stations take the limit, not the curve: partial.
                await _until(lambda: settled("event", {"A21": "accepted", "B201": "partial", "C201": "offline-queued"}))
                await _until(lambda: settled("gone", {"A21": "accepted", "B201": "accepted", "C201": "offline-queued"}))
                async with http.delete(f"{api}/directives/gone") as response:
                    assert response.status == 200
                number = (await show("event"))["number"]
                gone_number = (await show("gone"))["number"]
                assert not any(h.startswith(f"g{gone_number}-") for s in sims.values() for h in _held(s))
                before = {sid: _held(sims[sid]) for sid in ("A21", "B201")}
                marks = {sid: len(s.received) for sid, s in sims.items()}
                first.send_signal(signal.SIGKILL)
                await first.wait()
            await _until(lambda: not sims["A21"].connected and not sims["B201"].connected)
            async with _process(config) as second:
                await sims["C201"].start()
                await _until(lambda: _has_all(reconciled(), set(ids)))
                # Connected stations already held everything: asked, nothing sent again, nothing stale left.
                for sid in ("A21", "B201"):
                    assert _sets_and_clears(sims[sid], marks[sid]) == [], sid
                    assert _held(sims[sid]) == before[sid], sid
                asked = [
                    a for a, _ in sims["A21"].received[marks["A21"] :] if a in ("GetDERControl", "GetChargingProfiles")
                ]
                assert asked == ["GetDERControl", "GetChargingProfiles"]
                # The station that was away gets the event once, and nothing of the cancelled directive.
                got = _sets_and_clears(sims["C201"], marks["C201"])
                assert [a for a, _ in got] == ["SetChargingProfile"]
                assert got[0][1]["chargingProfile"]["id"] // 16 == number
                assert (await show("event"))["state"] == "active"
                await _until(lambda: settled("event", {"A21": "accepted", "B201": "partial", "C201": "partial"}))
                # The restarted gateway goes on with the event: a cancel clears it everywhere.
                async with http.delete(f"{api}/directives/event") as response:
                    assert response.status == 200
                await _until(lambda: settled("event", {sid: "cleared" for sid in ids}))
                # DER controls are cleared; limits are replaced by their restore ramps, which lapse by themselves
                # (docs/dispatch.md, "Restore").
                assert all(not [c for c in s.der if not c.is_default] for s in sims.values())
                held = [p for s in sims.values() for p in s.profiles.profiles]
                assert all(len(p.schedules()[0]["chargingSchedulePeriod"]) > 1 for p in held)
                second.send_signal(signal.SIGTERM)
                await second.wait()
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))


async def _has_all(found: Any, wanted: set[str]) -> bool:
    got: set[str] = await found
    return wanted <= got
