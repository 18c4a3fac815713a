"""IEEE 2030.5 end to end over real TLS: utility server -> adapter -> runtime -> OCPP stations -> Responses.

Everything runs on one ManualClock (server, adapter, gateway, stations): time moves only when the test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.certs import DevPki
from gateway.runtime import Gateway
from gateway.schedule import station_window
from gateway.utility import FleetView
from mappings.units import timestamp
from protocols.ieee2030_5 import fleet
from protocols.ieee2030_5.adapter import Ieee20305Adapter
from protocols.ieee2030_5.config import Ieee20305Config
from protocols.ieee2030_5.server import Counterpart
from protocols.ieee2030_5.wire import ResponseStatus
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.ieee2030_5.conftest import T0, _server_ctx, binding, scenario
from tests.support import PASSWORD, make_config, station_configs

STATIONS = ("CS-001", "CS-002")


@dataclass
class World:
    server: Counterpart
    adapter: Ieee20305Adapter
    gateway: Gateway
    stations: dict[str, SimStation]
    clock: ManualClock

    async def settle(self) -> None:
        """Let every fan-out the adapter started finish (event-driven: awaits the dispatcher's tasks)."""
        for record in self.gateway.store.directives():
            await self.gateway.dispatcher.wait(record.directive.id)

    async def at(self, seconds: float) -> None:
        """Move time, then let the gateway and the adapter do what is due."""
        self.clock.advance(seconds)
        await self.gateway.dispatcher.tick()
        await self.adapter.run_due()
        await self.settle()


@pytest.fixture
async def world(pki: DevPki, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock(T0)
    server = Counterpart(scenario(), clock=clock)
    port = await server.start("127.0.0.1", 0, _server_ctx(pki))
    config = Ieee20305Config(
        server=f"https://127.0.0.1:{port}",
        ca=pki.ca.cert,
        cert=pki.gateway_client.cert,
        key=pki.gateway_client.key,
        devices=(binding(pin=111115),),
    )
    made: list[Ieee20305Adapter] = []

    def make(view: FleetView) -> Ieee20305Adapter:  # the runtime hands the adapter its fleet data
        made.append(Ieee20305Adapter(config, clock=clock, autorun=False, fleet=view))
        return made[0]

    gateway = Gateway.build(
        make_config(tmp_path, station_configs(STATIONS, groups=["site1"])), clock=clock, adapters=[make]
    )
    [adapter] = made
    await gateway.start()
    sims = {
        sid: SimStation(gateway.ocpp.url, sid, password=PASSWORD, meter_interval=3600, clock=clock) for sid in STATIONS
    }
    await asyncio.gather(*(s.start() for s in sims.values()))
    await asyncio.gather(*(gateway.fleet.stations[sid].capabilities_ready.wait() for sid in STATIONS))
    try:
        yield World(server, adapter, gateway, sims, clock)
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gateway.stop()
        await server.stop()


async def test_control_reaches_the_stations_and_responses_follow_its_life(world: World) -> None:
    await world.adapter.run_due()  # discovery: the DefaultDERControl becomes a default directive
    await world.settle()
    for sid in STATIONS:
        defaults = [p for a, p in world.stations[sid].received if a == "SetDERControl" and p["isDefault"]]
        assert [p["controlType"] for p in defaults] == ["Gradients"]  # setGradW, default-only (R04.FR.14)
    mrid = world.server.create_control(
        1, 1, {"start_in_s": 120, "duration_s": 600, "base": {"opModImpLimW": {"value": 7, "multiplier": 3}}}
    )
    await world.at(60)  # the next poll finds it
    for sid in STATIONS:
        [profile] = [p for a, p in world.stations[sid].received[-1:] if a == "SetChargingProfile"]
        schedule = profile["chargingProfile"]["chargingSchedule"][0]
        assert schedule["startSchedule"] == "2026-03-01T12:02:00Z"  # sent ahead of its start
        assert schedule["chargingSchedulePeriod"][0]["limit"] == 7000
    statuses = [r.status for r in world.server.responses() if r.subject == mrid]
    assert statuses == [ResponseStatus.RECEIVED]
    await world.at(60)  # its start
    await world.at(600)  # its end
    statuses = [r.status for r in world.server.responses() if r.subject == mrid]
    assert statuses == [ResponseStatus.RECEIVED, ResponseStatus.STARTED, ResponseStatus.COMPLETED]
    sent = [e.data["what"] for e in world.gateway.audit.query(kind="upstream.sent")]
    assert sent.count("DERControlResponse") == 3


async def test_station_alarm_arrives_at_the_utility_as_a_log_event(world: World) -> None:
    await world.adapter.run_due()
    await world.settle()
    await world.stations["CS-002"].raise_alarm("FreqDroop", grid_event_fault="OverFrequency")
    await world.gateway.alarms.flush()
    [event] = world.server.log_events()
    assert "CS-002" in (event.details or "")


async def test_cancel_and_supersede_behave_as_2030_5_says(world: World) -> None:
    await world.adapter.run_due()
    await world.settle()
    limit = {"opModImpLimW": {"value": 5, "multiplier": 3}}
    first = world.server.create_control(1, 1, {"start_in_s": 300, "duration_s": 600, "base": limit})
    # Starts later, so it does not cover the first (the gateway would report that one superseded itself).
    second = world.server.create_control(1, 1, {"start_in_s": 400, "duration_s": 600, "base": limit})
    await world.at(60)
    world.server.cancel_control(first)
    world.server.supersede_control(second)
    await world.at(60)
    by_subject: dict[str, list[int]] = {}
    for r in world.server.responses():
        by_subject.setdefault(r.subject, []).append(r.status)
    assert by_subject[first] == [ResponseStatus.RECEIVED, ResponseStatus.CANCELLED]
    assert by_subject[second] == [ResponseStatus.RECEIVED, ResponseStatus.SUPERSEDED]
    # Both were cleared from every station that held them, and neither ever starts.
    for sid in STATIONS:
        cleared = [p for a, p in world.stations[sid].received if a == "ClearChargingProfile"]
        assert len(cleared) == 2
    await world.at(300)
    assert [r.status for r in world.server.responses() if r.subject in (first, second)].count(
        ResponseStatus.STARTED
    ) == 0


async def test_metered_site_power_and_fleet_ratings_reach_the_utility(world: World) -> None:
    await world.adapter.run_due()  # discovery, DERList, MirrorUsagePoint; the stations have not metered yet
    await world.settle()
    server = world.server
    assert server.meter_readings() == []  # no site power known: nothing invented
    caps = [world.gateway.fleet.stations[sid].capabilities for sid in STATIONS]
    max_w = sum(c.max_w or c.max_charge_rate_w or 0.0 for c in caps if c is not None)
    capability = server.der_capability()
    assert capability is not None
    assert max_w > 0
    assert capability.rtg_max_w == fleet.power(max_w)
    assert capability.der_type == fleet.DER_TYPE_EVSE
    status = server.der_status()
    assert status is not None
    assert status.gen_connect_status == fleet.CONNECTED | fleet.AVAILABLE  # online, nothing metered yet
    await asyncio.gather(*(s.send_meter_values() for s in world.stations.values()))
    site_w = sum(world.gateway.fleet.stations[sid].power_w or 0.0 for sid in STATIONS)
    assert site_w > 0
    await world.at(server.post_rate_s)  # the EndDevice's postRate
    [(path, reading)] = server.meter_readings()
    assert path == "/mup/1"
    assert reading.value == round(site_w)
    [mup] = server.mups
    assert mup.device_lfdi == world.adapter.config.devices[0].lfdi
    status = server.der_status()
    assert status is not None
    assert status.gen_connect_status == fleet.CONNECTED | fleet.AVAILABLE | fleet.OPERATING
    await world.stations["CS-002"].raise_alarm("FreqDroop", grid_event_fault="OverFrequency")
    await world.at(server.post_rate_s)
    status = server.der_status()
    assert status is not None
    assert status.gen_connect_status is not None
    assert status.gen_connect_status & fleet.FAULT
    sent = [e.data["what"] for e in world.gateway.audit.query(kind="upstream.sent")]
    assert sent.count("MirrorMeterReading") == 2
    assert {"MirrorUsagePoint", "DERCapability", "DERSettings", "DERStatus", "DERAvailability"} <= set(sent)


async def test_default_applies_when_no_event_is_active(world: World) -> None:
    """The DefaultDERControl (import <= 9 kW) holds before and after an event (import <= 7 kW): stations compose
    the default's stack level 0 profile under the event's, and the utility's change of the default replaces it."""
    await world.adapter.run_due()
    await world.settle()
    world.server.set_default(1, 1, {"base": {"opModImpLimW": {"value": 9, "multiplier": 3}}})
    await world.at(60)
    station = world.stations["CS-001"]
    assert station.rates(1).limit_w == 9_000
    world.server.create_control(1, 1, {"start_in_s": 120, "duration_s": 600,
                                       "base": {"opModImpLimW": {"value": 7, "multiplier": 3}}})  # fmt: skip
    await world.at(60)
    assert station.rates(1).limit_w == 9_000  # sent ahead, not yet in force
    await world.at(60)
    assert station.rates(1).limit_w == 7_000
    await world.at(600)
    assert station.rates(1).limit_w == 9_000


async def test_randomized_start_gives_each_station_its_own_reproducible_start(world: World) -> None:
    await world.adapter.run_due()
    await world.settle()
    world.server.create_control(1, 1, {"start_in_s": 300, "duration_s": 600, "randomize_start": 120,
                                       "base": {"opModImpLimW": {"value": 6, "multiplier": 3}}})  # fmt: skip
    await world.at(60)
    [record] = [r for r in world.gateway.store.directives() if r.directive.randomize_start_s]
    starts = {}
    for sid in STATIONS:
        profile = [p for a, p in world.stations[sid].received if a == "SetChargingProfile"][-1]
        starts[sid] = profile["chargingProfile"]["chargingSchedule"][0]["startSchedule"]
        expected = station_window(record.directive, sid, received=record.created).start
        assert starts[sid] == timestamp(expected)
        assert T0 + timedelta(seconds=300) <= expected < T0 + timedelta(seconds=420)
    assert len(set(starts.values())) == len(STATIONS)
