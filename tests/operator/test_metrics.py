"""/metrics counts utility signals by protocol and refused inputs by reason (issue 8, item 4), over real sockets:
an OpenADR 3 VTN whose events the gateway's VEN fetches, one of them unusable, and a station frame refused."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.clock import ManualClock
from gateway.runtime import Gateway
from gateway.utility import FleetView
from protocols.openadr3.adapter import OpenAdr3Adapter, OpenAdr3Config
from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.vtn import Vtn
from tests.openadr3.conftest import T0, Ticker, event_body, make_program
from tests.operator.conftest import request
from tests.support import call, make_config, raw_station, station_configs


def scrape(text: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"^(dergw_\S+) (\S+)$", text, re.MULTILINE)}


async def test_signals_by_protocol_and_translation_errors_by_reason(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    async with Vtn(OpenAdrVersion.V3_1_0, {"ven-1": "ven-secret-1", "bl": "bl-secret"}, clock=clock) as vtn:
        program = await make_program(vtn)
        usable = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
        await vtn.create("events", event_body(vtn, program["id"], usable))
        await vtn.create("events", event_body(vtn, program["id"], [{"type": "NOT_A_PAYLOAD", "values": [1]}]))
        config = OpenAdr3Config(vtn_url=vtn.url, client_id="ven-1", client_secret="ven-secret-1", ven_name="gw")

        def make(view: FleetView) -> OpenAdr3Adapter:
            return OpenAdr3Adapter(config, clock=clock, fleet=view, sleep=Ticker().sleep)

        gw = Gateway.build(make_config(tmp_path, station_configs(["S1"])), clock=clock, adapters=[make])
        await gw.start()  # the VEN polls at once: both events are read before start returns
        try:
            async with raw_station(gw.ocpp.url, "S1") as ws:
                answer = await call(ws, "m-1", "Heartbeat", {"unexpected": True})
            assert answer[0] == 4  # CALLERROR: the frame does not follow the Heartbeat schema
            status, text = await request(gw, "GET", "/metrics")
        finally:
            await gw.stop()
    assert status == 200
    metrics = scrape(text)
    # The usable event is a signal received; the other is counted as refused instead.
    assert metrics['dergw_utility_signals_total{protocol="openadr3"}'] == 1.0
    assert metrics['dergw_translation_errors_total{reason="unknown_payload_type"}'] == 1.0
    assert metrics[f'dergw_translation_errors_total{{reason="{answer[2]}"}}'] == 1.0
    assert metrics["dergw_stations_configured"] == 1.0
