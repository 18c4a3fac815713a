"""The operator API over real HTTP: auth, precise errors for bad input (audited), submit/show/cancel, CLI client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cli import main
from gateway.demo import SAMPLE_DIRECTIVE
from gateway.runtime import Gateway
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, TOKEN, make_config, running, station_configs

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running(make_config(tmp_path, station_configs(["S1", "S2"], groups=["site-a"]))) as gateway:
        yield gateway


async def _request(gw: Gateway, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, gw.api_url + path, **kwargs) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_api_needs_the_bearer_token(gw: Gateway, headers: dict[str, str]) -> None:
    status, body = await _request(gw, "GET", "/api/stations", headers=headers)
    assert status == 401
    assert body["error"] == "missing or wrong bearer token"


async def test_health_probes_need_no_token(gw: Gateway) -> None:
    assert await _request(gw, "GET", "/livez") == (200, {"status": "alive"})
    assert await _request(gw, "GET", "/readyz") == (200, {"status": "ready"})


async def test_invalid_json_is_refused_and_audited(gw: Gateway) -> None:
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, data=b"{not json")
    assert status == 400
    assert body["error"].startswith("invalid JSON")
    [entry] = gw.audit.query(kind="input.rejected")
    assert entry.data["source"] == "api"
    assert entry.data["reason"].startswith("invalid JSON")


async def test_invalid_directive_lists_each_problem_by_location(gw: Gateway) -> None:
    raw = {
        "controls": {
            "import_limit_w": -5,
            "curves": [{"kind": "volt_var", "x_unit": "Hz", "y_unit": "pct_max_var", "points": [{"x": 50, "y": 0}]}],
        }
    }
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw)
    assert status == 422
    locations = {d["loc"] for d in body["details"]}
    assert locations == {"controls.import_limit_w", "controls.curves.0"}
    assert gw.audit.query(kind="input.rejected")[0].data["reason"] == "invalid directive"


async def test_unknown_targets_and_duplicates_are_refused(gw: Gateway) -> None:
    raw = {"target": {"scope": "station", "ids": ["S1", "NOPE"]}, "controls": {"import_limit_w": 1000}}
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw)
    assert (status, body["error"]) == (422, "unknown station(s): NOPE")
    raw = {"target": {"scope": "group", "ids": ["site-z"]}, "controls": {"import_limit_w": 1000}}
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw)
    assert (status, body["error"]) == (422, "unknown group(s): site-z")
    raw = {"id": "twice", "controls": {"import_limit_w": 1000}}
    assert (await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw))[0] == 202
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw)
    assert (status, body["error"]) == (409, "directive twice already exists")


async def test_oversized_body_is_refused(gw: Gateway) -> None:
    status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, data=b"x" * 2_000_000)
    assert status == 413
    assert "larger than" in body["error"]


async def test_submit_show_and_cancel(gw: Gateway) -> None:
    station = SimStation(gw.ocpp.url, "S1", password=PASSWORD, meter_interval=3600)
    await station.start()
    try:
        await gw.fleet.stations["S1"].capabilities_ready.wait()
        status, body = await _request(gw, "POST", "/api/directives", headers=AUTH, json=SAMPLE_DIRECTIVE)
        assert status == 202
        assert body["number"] >= 1
        await gw.dispatcher.wait(body["id"])
        status, shown = await _request(gw, "GET", f"/api/directives/{body['id']}", headers=AUTH)
        assert status == 200
        assert shown["summary"] == {"accepted": 1, "offline-queued": 1}
        assert shown["state"] == "active"
        stations = (await _request(gw, "GET", "/api/stations", headers=AUTH))[1]["stations"]
        s1 = next(s for s in stations if s["id"] == "S1")
        assert s1["connected"] is True
        assert "VoltVar" in s1["capabilities"]["der_modes"]
        status, cancelled = await _request(gw, "DELETE", f"/api/directives/{body['id']}", headers=AUTH)
        assert status == 200
        assert cancelled["state"] == "cancelled"
        assert cancelled["summary"]["cleared"] == 1
        actions = [e.data["action"] for e in gw.audit.query(directive_id=body["id"], kind="operator.action")]
        assert actions == ["submit", "cancel"]
    finally:
        await station.stop()


async def test_unknown_directive_is_404(gw: Gateway) -> None:
    assert (await _request(gw, "GET", "/api/directives/nope", headers=AUTH))[0] == 404
    assert (await _request(gw, "DELETE", "/api/directives/nope", headers=AUTH))[0] == 404


async def test_cli_client_submits_and_waits_for_outcomes(
    gw: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    station = SimStation(gw.ocpp.url, "S2", password=PASSWORD, meter_interval=3600)
    await station.start()
    try:
        await gw.fleet.stations["S2"].capabilities_ready.wait()
        path = tmp_path / "d.json"
        path.write_text(
            json.dumps(
                {"id": "cli-1", "target": {"scope": "station", "ids": ["S2"]}, "controls": {"import_limit_w": 4000}}
            )
        )
        args = ["directive", "--api", gw.api_url, "--token", TOKEN, "submit", str(path), "--wait", "20"]
        code = await asyncio.to_thread(main, args)
        assert code == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["outcomes"][0]["status"] == "accepted"
        bad = ["directive", "--api", gw.api_url, "--token", "wrong", "show", "cli-1"]
        assert await asyncio.to_thread(main, bad) == 1
    finally:
        await station.stop()


async def test_audit_query_by_directive_station_kind_and_time(gw: Gateway) -> None:
    raw = {"id": "q1", "target": {"scope": "station", "ids": ["S1"]}, "controls": {"import_limit_w": 1000}}
    assert (await _request(gw, "POST", "/api/directives", headers=AUTH, json=raw))[0] == 202
    await gw.dispatcher.wait("q1")
    status, body = await _request(gw, "GET", "/api/audit?directive=q1", headers=AUTH)
    assert status == 200
    kinds = [e["kind"] for e in body["entries"]]
    assert kinds[0] == "directive.created"
    assert "directive.outcome" in kinds  # S1 is offline: kept for later
    seqs = [e["seq"] for e in body["entries"]]
    assert seqs == sorted(seqs)
    status, body = await _request(gw, "GET", "/api/audit?station=S1&kind=directive.outcome&limit=1", headers=AUTH)
    assert [(e["station_id"], e["data"]["status"]) for e in body["entries"]] == [("S1", "offline-queued")]
    status, body = await _request(gw, "GET", "/api/audit?directive=q1&until=2000-01-01T00:00:00Z", headers=AUTH)
    assert body["entries"] == []
    for bad in ("since=yesterday", "until=2026-01-01T00:00:00", "limit=0", "colour=red"):
        status, body = await _request(gw, "GET", f"/api/audit?{bad}", headers=AUTH)
        assert status == 400, bad
    assert (await _request(gw, "GET", "/api/audit"))[0] == 401
