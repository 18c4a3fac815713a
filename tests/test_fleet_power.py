"""Station power from per-EVSE and main-meter readings: a two-EVSE station's power is the sum of its EVSEs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.audit import AuditLog
from gateway.fleet import Fleet
from gateway.store import Store
from protocols.ocpp.simulator import SimStation, StationSpec
from tests.support import PASSWORD, make_config, running, station_configs

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _fleet(tmp_path: Path) -> Fleet:
    db = tmp_path / "gw.db"
    return Fleet([("S", [])], Store(db), AuditLog.open(db, tmp_path / "certs"))


def test_evse_readings_add_up_and_a_newer_main_meter_reading_wins(tmp_path: Path) -> None:
    fleet = _fleet(tmp_path)
    fleet.station_power("S", 7000, T0, meter=1)
    fleet.station_power("S", 4000, T0 + timedelta(seconds=1), meter=2)
    assert fleet.stations["S"].power_w == 11_000
    fleet.station_power("S", 10_500, T0 + timedelta(seconds=2), meter=0)  # the station's own meter, newer
    assert fleet.stations["S"].power_w == 10_500
    fleet.station_power("S", 3000, T0 + timedelta(seconds=3), meter=1)  # EVSEs newer again
    assert fleet.stations["S"].power_w == 7000
    fleet.station_power("S", 5000, T0 + timedelta(seconds=4))  # unknown meter: the last EVSE heard from (1)
    assert fleet.stations["S"].power_w == 9000


async def test_a_two_evse_station_reports_its_total_through_the_gateway(tmp_path: Path) -> None:
    async with running(make_config(tmp_path, station_configs(["TWO"]))) as gw:
        station = SimStation(gw.ocpp.url, "TWO", password=PASSWORD, meter_interval=3600, spec=StationSpec(evses=2))
        try:
            await station.start()
            await station.send_meter_values()  # one MeterValues per EVSE
            assert gw.fleet.stations["TWO"].power_w == station.power_w(1) + station.power_w(2) == 14_000
        finally:
            await station.stop()
