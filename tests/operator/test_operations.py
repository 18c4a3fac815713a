"""The operator surface over real sockets: station reload without dropping the others, in-force controls, alarms,
utility links and readiness, metrics after a directive, and the OpenAPI document against the routes and answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from websockets.exceptions import InvalidStatus

from gateway.config import load_config
from gateway.openapi import document
from gateway.runtime import Gateway
from protocols.ocpp.simulator import SimStation
from tests.operator.conftest import AUTH, config_text, request
from tests.support import PASSWORD, TOKEN, raw_station


def station(gw: Gateway, station_id: str) -> SimStation:
    return SimStation(gw.ocpp.url, station_id, password=PASSWORD, meter_interval=3600, reconnect_delay=None)


def rewrite(path: Path, text: str) -> None:
    path.write_text(text)


def check(body: Any, path: str, method: str, status: int) -> None:
    """The answer validates against the schema the OpenAPI document gives for it."""
    doc = document()
    schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]})


async def test_reload_adds_and_removes_stations_and_keeps_the_others_connected(gw: Gateway, config_file: Path) -> None:
    s1, s2 = station(gw, "S1"), station(gw, "S2")
    for s in (s1, s2):
        await s.start()
        await gw.fleet.stations[s.station_id].capabilities_ready.wait()
    try:
        rewrite(config_file, config_text(["S1", "S3"]))
        status, body = await request(gw, "POST", "/api/stations/reload", headers=AUTH)
        assert (status, body) == (200, {"added": ["S3"], "removed": ["S2"], "kept": ["S1"]})
        check(body, "/api/stations/reload", "post", 200)
        assert not gw.ocpp.is_connected("S2")
        assert sorted(gw.fleet.stations) == ["S1", "S3"]
        with pytest.raises(InvalidStatus) as refused:
            async with raw_station(gw.ocpp.url, "S2"):
                pass
        assert refused.value.response.status_code == 404
        assert await s1.call("Heartbeat", {})  # the same connection, still answered
        assert s1.boot_count == 1
        s3 = station(gw, "S3")
        await s3.start()
        try:
            await gw.fleet.stations["S3"].capabilities_ready.wait()
            assert gw.ocpp.is_connected("S3")
        finally:
            await s3.stop()
        [entry] = gw.audit.query(kind="operator.action")
        assert entry.data["action"] == "reload stations"
    finally:
        await s1.stop()
        await s2.stop()


async def test_reload_of_a_broken_file_changes_nothing(gw: Gateway, config_file: Path) -> None:
    rewrite(config_file, "[ocpp\n")
    status, body = await request(gw, "POST", "/api/stations/reload", headers=AUTH)
    assert status == 422
    assert "not valid TOML" in body["details"][0]
    assert sorted(gw.fleet.stations) == ["S1", "S2"]
    assert (await request(gw, "POST", "/api/stations/reload"))[0] == 401


async def test_stations_show_in_force_controls_alarms_and_metrics_after_a_directive(gw: Gateway) -> None:
    s1 = station(gw, "S1")
    await s1.start()
    try:
        await gw.fleet.stations["S1"].capabilities_ready.wait()
        directive = {"id": "cap-1", "target": {"scope": "station", "ids": ["S1"]}, "controls": {"import_limit_w": 4000}}
        status, body = await request(gw, "POST", "/api/directives", headers=AUTH, json=directive)
        check(body, "/api/directives", "post", status)
        await gw.dispatcher.wait("cap-1")
        await gw.dispatcher.tick()
        status, shown = await request(gw, "GET", "/api/stations/S1", headers=AUTH)
        check(shown, "/api/stations/{id}", "get", status)
        assert shown["in_force"] == [
            {"directive_id": "cap-1", "state": "active", "priority": 10, "controls": ["import_limit_w"]}
        ]
        status, listed = await request(gw, "GET", "/api/stations", headers=AUTH)
        check(listed, "/api/stations", "get", status)
        assert next(s for s in listed["stations"] if s["id"] == "S2")["in_force"] == []
        check((await request(gw, "GET", "/api/directives/cap-1", headers=AUTH))[1], "/api/directives/{id}", "get", 200)

        await s1.raise_alarm("VoltVar", "OverVoltage", extra_info="feeder 7")
        status, alarms = await request(gw, "GET", "/api/alarms?limit=10", headers=AUTH)
        check(alarms, "/api/alarms", "get", status)
        [alarm] = alarms["alarms"]
        assert (alarm["station_id"], alarm["control"], alarm["grid_event_fault"]) == ("S1", "VoltVar", "OverVoltage")
        assert (await request(gw, "GET", "/api/alarms?limit=0", headers=AUTH))[0] == 400

        status, text = await request(gw, "GET", "/metrics")
        assert status == 200
        metrics = dict((m.group(1), float(m.group(2))) for m in re.finditer(r"^(dergw_\S+) (\S+)$", text, re.MULTILINE))
        assert metrics['dergw_station_connections{version="ocpp2.1"}'] == 1.0
        assert metrics['dergw_station_connections{version="ocpp1.6"}'] == 0.0
        assert metrics['dergw_directives{state="active"}'] == 1.0
        accepted = [v for k, v in metrics.items() if k.startswith("dergw_ocpp_calls_total{") and "Accepted" in k]
        assert sum(accepted) >= 1
        assert sum(v for k, v in metrics.items() if k.startswith("dergw_ocpp_call_duration_seconds_count")) >= 1
        assert metrics["dergw_audit_checkpoint_age_seconds"] >= 0
        assert not any("S1" in k for k in metrics), "no per-station labels"
    finally:
        await s1.stop()


async def test_links_and_readiness_follow_the_configured_utility_links(tmp_path: Path) -> None:
    """An OpenADR 3 link whose VTN cannot be reached: the gateway runs, but is not ready, and says why."""
    path = tmp_path / "gateway.toml"
    extra = (
        '[openadr3]\nvtn_url = "http://127.0.0.1:9/openadr3"\nclient_id = "ven-1"\nclient_secret = "env:OADR"\n'
        'ven_name = "gw"\n'
    )
    rewrite(path, config_text(["S1"], extra))
    gw = Gateway.build(load_config(path, environ={"TEST_TOKEN": TOKEN, "OADR": "secret"}), source=path)
    await gw.start()
    try:
        status, body = await request(gw, "GET", "/api/links", headers=AUTH)
        check(body, "/api/links", "get", status)
        [link] = body["links"]
        assert (link["protocol"], link["ok"]) == ("openadr3", False)
        assert await request(gw, "GET", "/readyz") == (503, {"status": "not ready"})
        assert (await request(gw, "GET", "/livez"))[0] == 200
    finally:
        await gw.stop()


async def test_openapi_describes_every_route(gw: Gateway) -> None:
    status, doc = await request(gw, "GET", "/api/openapi.json")  # no token needed: it reads no fleet data
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    jsonschema.Draft202012Validator.check_schema(doc["components"]["schemas"]["Directive"])
    app = gw._api_runner.app
    registered = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    described = {(path, method) for path, item in doc["paths"].items() for method in item if method != "parameters"}
    assert registered == described
    check((await request(gw, "GET", "/api/audit?limit=5", headers=AUTH))[1], "/api/audit", "get", 200)
    check((await request(gw, "GET", "/api/directives/nope", headers=AUTH))[1], "/api/directives/{id}", "get", 404)
    check((await request(gw, "GET", "/readyz"))[1], "/readyz", "get", 200)
