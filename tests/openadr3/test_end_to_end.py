"""OpenADR 3 end to end over real HTTP: VTN event -> VEN adapter -> runtime -> OCPP stations -> report to the VTN."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

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


QUARTER = 900
STEPS_KW = (6.0, 4.0, 2.0)  # under each station's 7 kW demand, so each limit shows in the metered power


async def test_multi_interval_event_becomes_profiles_that_start_at_each_boundary(vtn: Vtn, tmp_path: Path) -> None:
    await _three_quarters(vtn, tmp_path, held=False)


async def test_multi_interval_event_limits_are_all_held_and_take_effect(vtn: Vtn, tmp_path: Path) -> None:
    await _three_quarters(vtn, tmp_path, held=True)


async def _three_quarters(vtn: Vtn, tmp_path: Path, *, held: bool) -> None:
    """Three quarter hours from 12:15, each with its own IMPORT_CAPACITY_LIMIT and one report per interval. With
    `held`, also what the stations hold and draw at each boundary, and the energy each report carries."""
    clock = SimClock(T0)
    program = await make_program(vtn)
    ticker = Ticker()
    config = OpenAdr3Config.model_validate(
        {"vtn_url": vtn.url, "version": vtn.version, "client_id": "ven-1", "client_secret": "ven-secret-1",
         "ven_name": "gateway-ven", "resources": {"site-a": {"scope": "group", "ids": ["site-a"]}}}
    )  # fmt: skip

    def make(view: FleetView) -> OpenAdr3Adapter:
        return OpenAdr3Adapter(config, clock=clock, fleet=view, sleep=ticker.sleep)

    gw = Gateway.build(make_config(tmp_path, station_configs(STATIONS, groups=["site-a"])), clock=clock,
                       adapters=[make])  # fmt: skip
    await gw.start()
    sims = {s: SimStation(gw.ocpp.url, s, password=PASSWORD, meter_interval=3600, clock=clock) for s in STATIONS}
    try:
        await asyncio.gather(*(s.start() for s in sims.values()))
        await asyncio.gather(*(gw.fleet.stations[s].capabilities_ready.wait() for s in STATIONS))
        body = event_body(
            vtn, program["id"], [], payloadDescriptors=KW,
            intervals=[{"id": i, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]}]}
                       for i, kw in enumerate(STEPS_KW)],
            reportDescriptors=[{"payloadType": p, "startInterval": 0, "numIntervals": 1, "frequency": 1,
                                "repeat": -1}
                               for p in ("USAGE", "DEMAND")],
        )  # fmt: skip
        body["intervalPeriod"] = {"start": "2025-06-01T12:15:00Z", "duration": "PT15M"}
        event = await vtn.create("events", body)
        ticker.tick()  # the next poll fetches it: every interval is sent ahead, each with its own start
        await asyncio.gather(*(s.wait_for("SetChargingProfile", len(STEPS_KW)) for s in sims.values()))
        records = sorted(gw.store.directives(), key=lambda r: r.directive.id)
        assert len(records) == len(STEPS_KW)
        for record in records:
            assert [o.status.value for o in await gw.outcomes(record.directive.id)] == ["accepted"] * len(sims)
        starts = [T0 + timedelta(seconds=QUARTER * (i + 1)) for i in range(len(STEPS_KW))]
        assert [r.directive.start for r in records] == starts
        for station in sims.values():
            sent = [p["chargingProfile"] for a, p in station.received if a == "SetChargingProfile"]
            schedules = sorted((p["chargingSchedule"][0] for p in sent), key=lambda s: s["startSchedule"])
            assert [
                (s["startSchedule"], s["duration"], s["chargingSchedulePeriod"][0]["limit"]) for s in schedules
            ] == [
                (f"{start:%Y-%m-%dT%H:%M:%SZ}", QUARTER, kw * 1000) for start, kw in zip(starts, STEPS_KW, strict=True)
            ]
            assert station.power_w() == 7000  # nothing in force before 12:15
            if held:
                assert len(station.profiles.profiles) == len(STEPS_KW)
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        for i, (start, kw) in enumerate(zip(starts, STEPS_KW, strict=True)):
            clock.set(start)
            # Stations meter at the boundary, then the gateway completes the interval before and reports it.
            await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
            await gw.dispatcher.tick()
            assert [_state(gw, r.directive.id) for r in records] == (
                ["completed"] * i + ["active"] + ["scheduled"] * (len(STEPS_KW) - i - 1)
            )
            assert len(vtn.reports) == i  # each interval's report goes when its directive completes
            if held:
                assert [s.power_w() for s in sims.values()] == [kw * 1000] * len(sims)
            await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        clock.set(starts[-1] + timedelta(seconds=QUARTER))
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        await gw.dispatcher.tick()
        assert [_state(gw, r.directive.id) for r in records] == ["completed"] * len(STEPS_KW)
        assert [s.power_w() for s in sims.values()] == [7000, 7000]  # the event is over: no limit remains in force
        assert len(vtn.reports) == len(STEPS_KW)
        for i, (report, kw) in enumerate(zip(vtn.reports, STEPS_KW, strict=True)):
            assert report["eventID"] == event["id"]
            [resource] = report["resources"]
            assert resource["resourceName"] == "site-a"
            [interval] = resource["intervals"]
            assert interval["id"] == i
            payloads = {p["type"]: p["values"] for p in interval["payloads"]}
            assert set(payloads) == {"USAGE", "DEMAND"}
            if held:  # two stations at the interval's limit for a quarter hour
                assert payloads["USAGE"] == [pytest.approx(2 * kw / 4)]
        sent = gw.audit.query(kind="upstream.sent")
        assert len([e for e in sent if e.data["what"] == "report"]) == len(STEPS_KW)
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gw.stop()


def _state(gw: Gateway, directive_id: str) -> str:
    record = gw.store.directive(directive_id)
    assert record is not None
    return record.state.value


async def test_vtn_down_keeps_the_directive_and_the_report_arrives_when_it_is_back(vtn: Vtn, tmp_path: Path) -> None:
    """Through the runtime: the VTN goes down during the event; the stations keep their limit, the directive
    completes at its end, and the report it owes waits in the adapter's outbox until the VTN answers again."""
    clock = SimClock(T0)
    program = await make_program(vtn)
    body = event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW, reportDescriptors=[{"payloadType": "USAGE"}])
    body["intervalPeriod"] = {"start": "2025-06-01T12:00:00Z", "duration": "PT1H"}
    await vtn.create("events", body)
    ticker = Ticker()
    adapters: list[OpenAdr3Adapter] = []
    config = OpenAdr3Config.model_validate(
        {"vtn_url": vtn.url, "version": vtn.version, "client_id": "ven-1", "client_secret": "ven-secret-1",
         "ven_name": "gateway-ven", "resources": {"site-a": {"scope": "group", "ids": ["site-a"]}}}
    )  # fmt: skip

    def make(view: FleetView) -> OpenAdr3Adapter:
        adapters.append(OpenAdr3Adapter(config, clock=clock, fleet=view, sleep=ticker.sleep))
        return adapters[-1]

    gw = Gateway.build(make_config(tmp_path, station_configs(STATIONS, groups=["site-a"])), clock=clock,
                       adapters=[make])  # fmt: skip
    await gw.start()
    sims = {s: SimStation(gw.ocpp.url, s, password=PASSWORD, meter_interval=3600, clock=clock) for s in STATIONS}
    try:
        [adapter] = adapters
        [record] = gw.store.directives()
        await asyncio.gather(*(s.start() for s in sims.values()))
        await asyncio.gather(*(s.wait_for("SetChargingProfile") for s in sims.values()))
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        await vtn.stop()
        clock.advance(1800)
        await gw.dispatcher.tick()
        assert [s.power_w() for s in sims.values()] == [7000, 7000]  # the limit still held (7.5 kW cap)
        assert _state(gw, record.directive.id) == "active"
        clock.advance(1800)
        await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
        await gw.dispatcher.tick()  # completed at its end: the report's POST is refused (connection refused)
        assert _state(gw, record.directive.id) == "completed"
        assert len(adapter.outbox) == 1
        assert gw.audit.query(kind="upstream.sent") == []
        await vtn.start()
        ticker.tick()  # the next poll succeeds and the outbox is delivered
        for _ in range(500):
            if vtn.reports:
                break
            await asyncio.sleep(0.01)
        [report] = vtn.reports
        payloads = {p["type"]: p["values"] for p in report["resources"][0]["intervals"][0]["payloads"]}
        assert payloads == {"USAGE": [14.0]}  # two stations at 7 kW for the hour
        assert not adapter.outbox
        sent = gw.audit.query(kind="upstream.sent")
        assert [(e.data["what"], e.directive_id) for e in sent] == [("report", record.directive.id)]
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gw.stop()
