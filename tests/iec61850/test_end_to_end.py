"""IEC 61850 end to end (issue 6): SCADA client -> MMS on 127.0.0.1 -> Iec61850Adapter (built by the runtime from
the `[iec61850]` section) -> Gateway -> simulated OCPP 2.1 stations, and back: MeterValues -> MMXU, NotifyDERAlarm
-> GGIO1/LLN0.Health.

Time: gateway, adapter and stations share one ManualClock, so directives start when submitted and nothing times
out on its own. Synchronisation is on events (the stations' wait_for, the dispatcher's fan-out, the alarm relay's
flush); the one exception is MMXU, which the adapter refreshes on its sampling period with no event a test could
await, so `until_read` polls the client for a bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Iec61850Section
from gateway.runtime import Gateway
from protocols.iec61850.adapter import Iec61850Adapter
from protocols.iec61850.clib import AddCause, ClientError, Fc
from protocols.iec61850.client import ScadaClient
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.iec61850.conftest import free_port
from tests.support import PASSWORD, make_config, station_configs

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STATIONS = ("CS-001", "CS-002")


@dataclass
class World:
    gateway: Gateway
    adapter: Iec61850Adapter
    stations: dict[str, SimStation]
    scada: ScadaClient

    async def settle(self) -> None:
        """Let every fan-out started so far finish (awaits the dispatcher's tasks)."""
        for record in self.gateway.store.directives():
            await self.gateway.dispatcher.wait(record.directive.id)

    async def mms(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A blocking MMS client call, off the event loop (the loop must keep running the gateway meanwhile)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def until_read(self, ref: str, fc: Fc, expected: object, timeout_s: float = 10.0) -> None:
        """Bounded poll: MMXU is refreshed every `sample_s` by the adapter's sampling task and neither the adapter
        nor libiec61850 signals "sampled", so read until the value is there or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        seen = await self.mms(self.scada.read, ref, fc)
        while seen != expected:
            assert time.monotonic() < deadline, f"{ref} is {seen!r}, expected {expected!r}"
            await asyncio.sleep(0.02)
            seen = await self.mms(self.scada.read, ref, fc)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock(T0)
    config = make_config(tmp_path, station_configs(STATIONS))
    section = Iec61850Section(port=free_port(), sample_s=0.05)
    gateway = Gateway.build(config.model_copy(update={"iec61850": section}), clock=clock)
    [adapter] = gateway.adapters
    assert isinstance(adapter, Iec61850Adapter)
    await gateway.start()
    sims = {
        sid: SimStation(gateway.ocpp.url, sid, password=PASSWORD, meter_interval=3600, clock=clock, power=power)
        for sid, power in zip(STATIONS, (7000.0, 4000.0), strict=True)
    }
    await asyncio.gather(*(s.start() for s in sims.values()))
    await asyncio.gather(*(gateway.fleet.stations[sid].capabilities_ready.wait() for sid in STATIONS))
    scada = await asyncio.to_thread(ScadaClient, "127.0.0.1", section.port, origin="scada-e2e")
    try:
        yield World(gateway, adapter, sims, scada)
    finally:
        await asyncio.to_thread(scada.close)
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gateway.stop()


def _profiles(station: SimStation) -> list[dict[str, Any]]:
    return [p["chargingProfile"] for a, p in station.received if a == "SetChargingProfile"]


async def test_limit_and_setpoint_reach_the_stations_as_ocpp(world: World) -> None:
    assert await world.mms(world.scada.write_setting, "DECP1.ImpLimW", 11000.0) == ClientError.OK
    for station in world.stations.values():
        await station.wait_for("SetChargingProfile")
        [limit] = _profiles(station)
        assert limit["chargingProfilePurpose"] == "ChargingStationMaxProfile"
        assert limit["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 11000
    result = await world.mms(world.scada.operate, "DWGC1.WSpt", -5000.0)
    assert result.ok
    for station in world.stations.values():
        await station.wait_for("SetChargingProfile", 2)
        setpoint = _profiles(station)[-1]
        assert setpoint["chargingProfilePurpose"] == "TxDefaultProfile"
        [period] = setpoint["chargingSchedule"][0]["chargingSchedulePeriod"]
        assert (period["operationMode"], period["setpoint"]) == ("CentralSetpoint", -5000)
    await world.settle()
    records = {r.directive.id: r for r in world.gateway.store.directives()}
    assert set(records) == {"iec61850.DERGW.import_limit", "iec61850.DERGW.active_power_setpoint"}
    assert all(r.directive.priority == 1 and r.directive.start == T0 for r in records.values())
    received = [e.data for e in world.gateway.audit.query(kind="signal.received")]
    assert [d["protocol"] for d in received] == ["iec61850", "iec61850"]


async def test_measurements_follow_the_stations_meter_values(world: World) -> None:
    for station in world.stations.values():
        await station.send_meter_values()
    await world.until_read("MMXU1.TotW.mag.f", Fc.MX, 11000.0)
    assert await world.mms(world.scada.read, "GGIO1.IntIn2.stVal", Fc.ST) == 2
    world.stations["CS-002"].power_profile = 1500.0
    await world.stations["CS-002"].send_meter_values()
    await world.until_read("MMXU1.TotW.mag.f", Fc.MX, 8500.0)
    await world.stations["CS-001"].stop()
    await world.until_read("GGIO1.IntIn2.stVal", Fc.ST, 1)
    await world.until_read("MMXU1.TotW.mag.f", Fc.MX, 1500.0)


async def test_station_alarm_is_visible_to_scada(world: World) -> None:
    await world.stations["CS-002"].raise_alarm("HFMustTrip", grid_event_fault="OverFrequency")
    await world.gateway.alarms.flush()  # the relay's window timer, run now: awaits every adapter's alarm()
    read = world.scada.read
    assert await world.mms(read, "GGIO1.Ind1.stVal", Fc.ST) is True
    assert await world.mms(read, "GGIO1.IntIn1.stVal", Fc.ST) == 1
    assert await world.mms(read, "GGIO1.AlmTxt.stVal", Fc.ST) == "CS-002: HFMustTrip OverFrequency"
    assert await world.mms(read, "LLN0.Health.stVal", Fc.ST) == 2
    await world.stations["CS-002"].raise_alarm("HFMustTrip", grid_event_fault="OverFrequency", ended=True)
    await world.gateway.alarms.flush()
    assert await world.mms(read, "GGIO1.Ind1.stVal", Fc.ST) is False
    assert await world.mms(read, "LLN0.Health.stVal", Fc.ST) == 1


async def test_bad_writes_are_refused_with_their_cause_and_reach_no_station(world: World) -> None:
    scada = world.scada
    assert await world.mms(scada.write_setting, "DECP1.ImpLimW", -1.0) == ClientError.OBJECT_VALUE_INVALID
    out_of_range = await world.mms(scada.operate, "DWMX1.WLimSpt", 2e7, select=True)
    assert (out_of_range.ok, out_of_range.add_cause) == (False, AddCause.INCONSISTENT_PARAMETERS)
    direct_on_sbo = await world.mms(scada.operate, "DWMX1.WLimSpt", 1000.0)
    assert (direct_on_sbo.ok, direct_on_sbo.add_cause) == (False, AddCause.OBJECT_NOT_SELECTED)
    assert await world.mms(scada.write, "MMXU1.TotW.mag.f", Fc.MX, 1.0) != ClientError.OK
    assert await world.mms(scada.write, "DWMX1.WLimSpt.ctlModel", Fc.CF, 3.0) != ClientError.OK
    # The server's handler queued each refusal on the loop (call_soon_threadsafe) before MMS answered, and
    # to_thread's completion is queued after it: by now the runtime sink has audited both.
    rejected = [e.data for e in world.gateway.audit.query(kind="input.rejected")]
    assert [d["code"] for d in rejected] == ["iec61850:inconsistent_parameters"] * 2
    assert "outside [0, 1e+07] W" in str(rejected[0]["reason"])
    assert not world.gateway.store.directives()
    # A good write after the bad ones still goes through, and is the only command the stations ever got.
    assert await world.mms(scada.write_setting, "DECP1.ImpLimW", 6000.0) == ClientError.OK
    for station in world.stations.values():
        await station.wait_for("SetChargingProfile")
        assert [p["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] for p in _profiles(station)] == [6000]
