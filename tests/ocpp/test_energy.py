"""Energy registers from MeterValues / TransactionEvent (protocols.ocpp.handlers.energy_from), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import OcppVersion
from protocols.ocpp.handlers import EnergyReading, energy_from

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
V16, V201 = OcppVersion.V16, OcppVersion.V201


def sv16(measurand: str, value: str, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"measurand": measurand, "value": value, **({"unit": unit} if unit else {}), **extra}


def sv2(measurand: str, value: float, unit: str | None = None, multiplier: int | None = None) -> dict[str, Any]:
    uom: dict[str, Any] = {}
    if unit:
        uom["unit"] = unit
    if multiplier is not None:
        uom["multiplier"] = multiplier
    return {"measurand": measurand, "value": value, **({"unitOfMeasure": uom} if uom else {})}


def test_16_register_in_wh_and_kwh_with_the_meter_timestamp() -> None:
    payload = {"connectorId": 2, "meterValue": [
        {"timestamp": "2025-06-01T11:59:00Z", "sampledValue": [sv16("Energy.Active.Import.Register", "1500")]},
        {"timestamp": "2025-06-01T11:59:30Z", "sampledValue": [
            sv16("Energy.Active.Import.Register", "1.75", "kWh"), sv16("Energy.Active.Export.Register", "2", "Wh"),
            sv16("Power.Active.Import", "7000", "W")]},
    ]}  # fmt: skip
    assert energy_from(V16, "MeterValues", payload, NOW) == EnergyReading(
        2, NOW - timedelta(seconds=30), import_wh=1750.0, export_wh=2.0
    )


def test_2x_unit_of_measure_multiplier_evse_and_transaction_event() -> None:
    mv = {"timestamp": "2025-06-01T12:00:00Z", "sampledValue": [sv2("Energy.Active.Import.Register", 12.5, "kWh", 1)]}
    assert energy_from(V201, "MeterValues", {"evseId": 0, "meterValue": [mv]}, NOW) == EnergyReading(
        0, NOW, import_wh=125_000.0
    )
    tx = {"eventType": "Updated", "evse": {"id": 1}, "meterValue": [mv]}
    assert energy_from(V201, "TransactionEvent", tx, NOW) == EnergyReading(1, NOW, import_wh=125_000.0)
    # without evse the meter is unknown: not taken for the main meter
    assert energy_from(V201, "TransactionEvent", {"meterValue": [mv]}, NOW) is None


def test_phases_other_locations_units_and_bad_values_are_ignored() -> None:
    sampled = [
        sv16("Energy.Active.Import.Register", "9", "Wh", phase="L1"),
        sv16("Energy.Active.Import.Register", "9", "Wh", location="EV"),
        sv16("Energy.Active.Import.Register", "9", "varh"),
        sv16("Energy.Active.Import.Register", "nan"),
        sv16("Energy.Active.Import.Register", "x"),
        sv16("Energy.Active.Import.Interval", "9"),
    ]
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2025-06-01T12:00:00Z", "sampledValue": sampled}]}
    assert energy_from(V16, "MeterValues", payload, NOW) is None
    assert energy_from(V16, "StatusNotification", payload, NOW) is None


def test_a_timestamp_in_the_future_or_unreadable_is_the_receive_time() -> None:
    for stamp in ("2025-06-01T13:00:00Z", "yesterday", "2025-06-01T11:00:00"):
        mv = {"timestamp": stamp, "sampledValue": [sv2("Energy.Active.Import.Register", 1)]}
        reading = energy_from(V201, "MeterValues", {"evseId": 1, "meterValue": [mv]}, NOW)
        assert reading is not None
        assert reading.at == NOW


@given(
    wh=st.floats(min_value=0, max_value=1e12, allow_nan=False),
    unit=st.sampled_from([None, "Wh", "kWh"]),
    multiplier=st.integers(min_value=-3, max_value=3),
)
def test_2x_scaling_matches_unit_times_ten_to_the_multiplier(wh: float, unit: str | None, multiplier: int) -> None:
    factor = (1000.0 if unit == "kWh" else 1.0) * 10.0**multiplier
    mv = {"timestamp": "2025-06-01T12:00:00Z", "sampledValue": [sv2("Energy.Active.Export.Register", wh, unit,
                                                                         multiplier)]}  # fmt: skip
    reading = energy_from(V201, "MeterValues", {"evseId": 3, "meterValue": [mv]}, NOW)
    assert reading is not None
    assert reading.import_wh is None
    assert reading.export_wh == wh * factor


@given(kwh=st.decimals(min_value=0, max_value=10**9, places=3))
def test_16_kwh_text_is_read_exactly_as_wh(kwh: Any) -> None:
    mv = {"sampledValue": [sv16("Energy.Active.Import.Register", str(kwh), "kWh")]}
    reading = energy_from(V16, "MeterValues", {"connectorId": 1, "meterValue": [mv]}, NOW)
    assert reading is not None
    assert reading.at == NOW
    assert reading.import_wh == float(kwh) * 1000.0
