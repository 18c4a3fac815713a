"""OpenADR 3 end to end over real HTTP: VTN event -> VEN adapter -> runtime -> OCPP stations -> report to the VTN."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.runtime import Gateway
from gateway.utility import FleetView
from protocols.ocpp.simulator import ManualClock as SimClock
from protocols.ocpp.simulator import SimStation
from protocols.openadr3.adapter import OpenAdr3Adapter, OpenAdr3Config
from protocols.openadr3.vtn import Vtn
from tests.openadr3.conftest import T0, Ticker, event_body, make_program
from tests.support import PASSWORD, make_config, station_configs

STATIONS = ("EV-1", "EV-2")
LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
KW = [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}]


async def test_event_reaches_the_stations_and_the_fleet_reports_back(vtn: Vtn, tmp_path: Path) -> None:
    clock = SimClock(T0)  # the VTN's clock starts at T0 too; gateway, adapter and stations share this one
    program = await make_program(vtn)
    body = event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW,
                      reportDescriptors=[{"payloadType": p} for p in ("USAGE", "DEMAND", "DATA_QUALITY")])  # fmt: skip
    body["intervalPeriod"] = {"start": "2025-06-01T12:00:00Z", "duration": "PT1H"}  # starts at T0
    await vtn.create("events", body)
    ticker = Ticker()
    config = OpenAdr3Config.model_validate(
        {"vtn_url": vtn.url, "version": vtn.version, "client_id": "ven-1", "client_secret": "ven-secret-1",
         "ven_name": "gateway-ven", "resources": {"site-a": {"scope": "group", "ids": ["site-a"]}}}
    )  # fmt: skip

    def make(view: FleetView) -> OpenAdr3Adapter:
        return OpenAdr3Adapter(config, clock=clock, fleet=view, sleep=ticker.sleep)

    gw = Gateway.build(make_config(tmp_path, station_configs(STATIONS, groups=["site-a"])), clock=clock,
                       adapters=[make])  # fmt: skip
    await gw.start()  # the adapter registers and polls at once: the event arrives before any station
    sims = {s: SimStation(gw.ocpp.url, s, password=PASSWORD, meter_interval=60, clock=clock) for s in STATIONS}
    try:
        [record] = gw.store.directives()
        await gw.outcomes(record.directive.id)
        await asyncio.gather(*(s.start() for s in sims.values()))
        # Offline when the event came: each station gets it as soon as its capabilities are read.
        await asyncio.gather(*(s.wait_for("SetChargingProfile") for s in sims.values()))
        await asyncio.gather(*(gw.dispatcher.resends()))
        assert [o.status.value for o in gw.store.outcomes(record.directive.id)] == ["accepted", "accepted"]
        for station in sims.values():
            [profile] = [p for a, p in station.received if a == "SetChargingProfile"]
            assert profile["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 7500
        # Each station meters 7 kW (its default demand, under the 7.5 kW cap); the gateway sums them for the site.
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        assert gw.fleet.stations["EV-1"].power_w == 7000
        clock.advance(3600)
        # The energy registers at the end of the hour: 7 kWh each since the readings at T0.
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        await gw.dispatcher.tick()  # the event's interval is over: completed -> report
        [report] = vtn.reports
        [resource] = report["resources"]
        assert resource["resourceName"] == "site-a"
        payloads = {p["type"]: p["values"] for p in resource["intervals"][0]["payloads"]}
        assert payloads == {"USAGE": [14.0], "DEMAND": [14.0], "DATA_QUALITY": ["OK"]}  # kWh, kW
        sent = gw.audit.query(kind="upstream.sent")
        assert [(e.data["what"], e.directive_id) for e in sent] == [("report", record.directive.id)]
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gw.stop()
