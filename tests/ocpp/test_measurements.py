"""Reactive power, frequency and per-phase power from meter values, as far as the IEC 61850 MMXU view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.model import OcppVersion
from gateway.utility import FleetView
from protocols.iec61850.translate import measurements
from protocols.ocpp.handlers import measurements_from
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs


def _sv(measurand: str, value: float, unit: str, phase: str | None = None, multiplier: int = 0) -> dict[str, Any]:
    sv: dict[str, Any] = {"value": value, "measurand": measurand, "unitOfMeasure": {"unit": unit}}
    if multiplier:
        sv["unitOfMeasure"]["multiplier"] = multiplier
    if phase:
        sv["phase"] = phase
    return sv


def _meter_values(*values: dict[str, Any]) -> dict[str, Any]:
    return {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": list(values)}]}


GRID = _meter_values(
    _sv("Power.Active.Import", 6900, "W"),
    _sv("Power.Reactive.Import", 1.5, "kvar"),
    _sv("Power.Reactive.Export", 500, "var"),
    _sv("Frequency", 4998, "Hz", multiplier=-2),
    _sv("Power.Active.Import", 2300, "W", "L1-N"),
    _sv("Power.Active.Import", 2.3, "kW", "L2-N"),
    _sv("Power.Active.Import", 2300, "W", "L3"),
)


def test_reactive_power_frequency_and_phases_are_read_in_canonical_units_and_signs() -> None:
    measured = measurements_from(OcppVersion.V21, "MeterValues", GRID)
    assert measured is not None
    assert measured.vars == 1000  # absorbing 1.5 kvar, injecting 0.5 kvar
    assert measured.hz == pytest.approx(49.98)
    assert measured.phase_w == (2300.0, 2300.0, 2300.0)


def test_16_units_and_messages_without_grid_values() -> None:
    samples = [
        {"value": "50.01", "measurand": "Frequency"},
        {"value": "2", "measurand": "Power.Reactive.Import", "unit": "kvar"},
    ]
    v16 = {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": samples}]}
    measured = measurements_from(OcppVersion.V16, "MeterValues", v16)
    assert measured is not None
    assert (measured.vars, measured.hz, measured.phase_w) == (2000, 50.01, None)
    only_power = _meter_values(_sv("Power.Active.Import", 1000, "W"))
    assert measurements_from(OcppVersion.V21, "MeterValues", only_power) is None
    assert measurements_from(OcppVersion.V21, "Heartbeat", {}) is None


async def test_metered_grid_values_reach_the_fleet_registry_and_the_ied_totals(tmp_path: Path) -> None:
    async with running(make_config(tmp_path, station_configs(["G1", "G2"]))) as gw:
        stations = [SimStation(gw.ocpp.url, sid, password=PASSWORD, meter_interval=3600) for sid in ("G1", "G2")]
        try:
            for s in stations:
                await s.start()
                await s.call("MeterValues", GRID)
            readings = FleetView(gw.fleet).readings()
            assert readings["G1"].vars == 1000
            assert readings["G2"].phase_w == (2300.0, 2300.0, 2300.0)
            totals = measurements(readings)
            assert totals.tot_w == 2 * 6900
            assert totals.tot_var == 2000
            assert totals.hz == pytest.approx(49.98)
        finally:
            for s in stations:
                await s.stop()
