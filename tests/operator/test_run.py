"""`dergw run` as operators run it: a real process, JSON log lines on stdout, SIGHUP reloading the station list
without dropping the others, and SIGTERM finishing the fan-out under way before a clean exit with a verifiable
audit log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from gateway.audit import AuditLog
from gateway.store import Store
from protocols.ocpp.simulator import SimStation
from protocols.ocpp.simulator.station import SimBehaviour
from tests.operator.conftest import AUTH, config_text
from tests.support import PASSWORD, TOKEN, raw_station


def rewrite(path: Path, text: str) -> None:
    path.write_text(text)


async def next_log(proc: asyncio.subprocess.Process, lines: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """Read JSON log lines until one whose message starts with `message` (every line must be JSON)."""
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert raw, f"dergw run ended before logging {message!r}"
        entry: dict[str, Any] = json.loads(raw)
        lines.append(entry)
        if entry["message"].startswith(message):
            return entry


async def test_run_reloads_on_sighup_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    rewrite(path, config_text(["S1", "S2"]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "run", "--config", str(path), "--grace", "20",
        env={**os.environ, "TEST_TOKEN": TOKEN}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[dict[str, Any]] = []
    s1: SimStation | None = None
    try:
        started = await next_log(proc, lines, "gateway started")
        ocpp, api = started["ocpp_url"], started["api_url"]
        s1 = SimStation(
            ocpp, "S1", password=PASSWORD, meter_interval=3600, reconnect_delay=None,
            behaviour=SimBehaviour(delays={"SetChargingProfile": 1.0}),
        )  # fmt: skip
        await s1.start()
        async with raw_station(ocpp, "S2") as s2:
            rewrite(path, config_text(["S1", "S3"]))
            proc.send_signal(signal.SIGHUP)
            await asyncio.wait_for(s2.wait_closed(), 10)
            assert s2.close_code == 1008
        reloaded = await next_log(proc, lines, "stations reloaded")
        assert (reloaded["added"], reloaded["removed"], reloaded["kept"]) == (["S3"], ["S2"], ["S1"])
        async with raw_station(ocpp, "S3"):
            pass  # a station added by the reload is let in
        assert await s1.call("Heartbeat", {})
        assert s1.boot_count == 1  # S1 kept its connection through the reload

        directive = {"id": "late-1", "target": {"scope": "station", "ids": ["S1"]}, "controls": {"import_limit_w": 5e3}}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{api}/api/directives", json=directive, headers=AUTH) as resp,
        ):
            assert resp.status == 202
        proc.send_signal(signal.SIGTERM)  # while the station takes a second to answer
        await next_log(proc, lines, "gateway stopped")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if s1 is not None:
            await s1.stop()
    assert {"time", "level", "logger", "message"} <= set(lines[0])

    db, certs = tmp_path / "data" / "dergw.sqlite", tmp_path / "certs"
    store = Store(db)
    [outcome] = store.outcomes("late-1")
    store.close()
    assert outcome.status.value == "accepted"  # the fan-out under way at SIGTERM finished
    with AuditLog.open(db, certs) as audit:
        assert [e.data["status"] for e in audit.query(directive_id="late-1", kind="station.answer")] == ["Accepted"]
        assert audit.query(kind="config.changed")[-1].data == {"event": "gateway stopped"}
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "audit", "verify", "--keys", str(certs), str(db),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out.decode()
