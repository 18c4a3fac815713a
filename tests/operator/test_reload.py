"""Station reload over real sockets, in both OCPP modes: a removed station is disconnected with a clear close code
and reason (in sidecar mode its CSMS connection too), audited, and gone from the registry without a KeyError in
dispatch, API or dashboard; a kept station keeps the very same connection."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import load_config
from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import REMOVED_REASON, Gateway
from protocols.ocpp.sidecar import SidecarProxy
from protocols.ocpp.simulator import SimStation
from tests.operator.conftest import AUTH, config_text, request
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import PASSWORD, TOKEN, raw_station

LIMIT = Directive.model_validate(
    {"id": "cap-1", "target": {"scope": "station", "ids": ["S1", "S2"]}, "duration_s": 600,
     "controls": {"import_limit_w": 5000}}
)  # fmt: skip


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    name = "message"
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


@pytest.mark.parametrize("mode", ["direct", "sidecar"])
async def test_removed_stations_are_closed_and_dropped_kept_ones_keep_their_connection(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TOKEN", TOKEN)
    async with contextlib.AsyncExitStack() as stack:
        csms = await stack.enter_async_context(UpstreamCsms()) if mode == "sidecar" else None
        ocpp = f'mode = "sidecar"\n[ocpp.upstream]\nurl = "{csms.url}"\n' if csms else ""
        path = tmp_path / "gateway.toml"
        path.write_text(config_text(["S1", "S2", "RAW"], ocpp=ocpp))
        gw = Gateway.build(load_config(path), source=path)
        await gw.start()
        stack.push_async_callback(gw.stop)
        sims = {}
        for sid in ("S1", "S2"):
            sims[sid] = SimStation(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600,
                                   reconnect_delay=None)  # fmt: skip
            stack.push_async_callback(sims[sid].stop)
            await sims[sid].start()
            await gw.fleet.stations[sid].capabilities_ready.wait()
        raw = await stack.enter_async_context(raw_station(gw.ocpp.url, "RAW"))
        # S2 accepts a limit before it is removed: cancelling it afterwards must not trip over the missing station.
        record = await gw.submit(LIMIT)
        assert [o.status for o in await gw.outcomes(record.directive.id)] == [OutcomeStatus.ACCEPTED] * 2
        proxy = gw.ocpp if isinstance(gw.ocpp, SidecarProxy) else None
        kept_session = proxy.session("S1") if proxy else None
        if csms is not None:
            await csms.until(lambda: {"S1", "S2", "RAW"} <= set(csms.connections))
            kept_upstream = csms.stations["S1"]
        http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
        resp = await stack.enter_async_context(http.get(f"{gw.api_url}/dashboard/events?token={TOKEN}"))
        stream = _events(resp)
        assert (await anext(stream))[0] == "snapshot"

        path.write_text(config_text(["S1", "S3"], ocpp=ocpp))
        status, body = await request(gw, "POST", "/api/stations/reload", headers=AUTH)
        assert (status, body) == (200, {"added": ["S3"], "removed": ["RAW", "S2"], "kept": ["S1"]})

        # The removed station's socket: closed by the gateway with 1008 (policy violation) and the reason.
        await raw.wait_closed()
        assert (raw.close_code, raw.close_reason) == (1008, REMOVED_REASON)
        assert not gw.ocpp.is_connected("S2")
        if csms is not None:  # ... and its CSMS connection, as going away, with the same reason
            gone = [csms.stations["S2"].ws, csms.stations["RAW"].ws]
            await csms.until(lambda: all(ws.close_code is not None for ws in gone))
            assert [(ws.close_code, ws.close_reason) for ws in gone] == [(1001, REMOVED_REASON)] * 2
            assert csms.stations["S1"] is kept_upstream
            assert kept_upstream.ws.close_code is None
            assert csms.connections["S1"] == 1
        closed = gw.audit.query(kind="config.changed")
        disconnected = {e.station_id: e.data for e in closed if e.data.get("event") == "station disconnected"}
        assert set(disconnected) == {"S2", "RAW"}
        expected_codes = {"station": 1008, "csms": 1001} if csms else {"station": 1008}
        assert disconnected["RAW"] == {"event": "station disconnected", "reason": REMOVED_REASON,
                                       "close_codes": expected_codes}  # fmt: skip

        # S1 kept the very same connection: no reconnect, no second boot, and its calls still get answers.
        assert sims["S1"].boot_count == 1
        if proxy is not None:
            assert proxy.session("S1") is kept_session
        assert await sims["S1"].call("Heartbeat", {})
        if csms is not None:
            await csms.until(lambda: "Heartbeat" in csms.actions("S1"))

        # Registry, API, dashboard and dispatch all without the removed stations.
        assert sorted(gw.fleet.stations) == ["S1", "S3"]
        status, listed = await request(gw, "GET", "/api/stations", headers=AUTH)
        assert status == 200
        assert sorted(s["id"] for s in listed["stations"]) == ["S1", "S3"]
        assert (await request(gw, "GET", "/api/stations/S2", headers=AUTH))[0] == 404
        seen: dict[str, Any] = {}
        async for name, data in stream:  # the station rows go, and the chart's limit counts only S1's
            seen[name] = data
            if name == "sample" and "removed" in seen:
                break
        assert seen["removed"] == ["RAW", "S2"]
        assert (seen["sample"]["limited"], seen["sample"]["limit_w"], seen["sample"]["stations"]) == (1, 5000, 2)
        before = len(sims["S1"].received)
        status, cancelled = await request(gw, "DELETE", f"/api/directives/{record.directive.id}", headers=AUTH)
        assert (status, cancelled["state"]) == (200, "cancelled")
        # The kept station's limit is replaced in place by its restore ramp (docs/dispatch.md, "Restore").
        assert [a for a, _ in sims["S1"].received[before:]] == ["SetChargingProfile"]
        fleet = await gw.submit(Directive.model_validate({**LIMIT.model_dump(mode="json"), "id": "cap-2",
                                                         "target": {"scope": "fleet"}}))  # fmt: skip
        outcomes = await gw.outcomes(fleet.directive.id)
        assert [(o.station_id, o.status) for o in outcomes] == [
            ("S1", OutcomeStatus.ACCEPTED), ("S3", OutcomeStatus.OFFLINE)
        ]  # fmt: skip
