"""OCPP 1.6 stations over real sockets: boot, smart charging, configuration."""

from __future__ import annotations

from typing import Any

from gateway.model import OcppVersion
from protocols.ocpp.simulator import ManualClock
from tests.simulator.conftest import StartStation


def cs_profile(profile_id: int, purpose: str, limit: float, unit: str = "W") -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]},
    }


async def test_boot_status_and_meter_values(start_station: StartStation, clock: ManualClock) -> None:
    _, conn = await start_station("CP16", OcppVersion.V16, meter_interval=60)
    assert conn.messages("BootNotification")[0]["chargePointVendor"] == "DERGW-Sim"
    assert [s["connectorId"] for s in conn.messages("StatusNotification")] == [0, 1]
    clock.advance(60)
    [meter] = await conn.wait_for("MeterValues")
    assert {s["measurand"]: s["value"] for s in meter["meterValue"][0]["sampledValue"]} == {
        "Energy.Active.Import.Register": "116.7",
        "Power.Active.Import": "7000",
    }


async def test_smart_charging_and_composite_schedule(start_station: StartStation) -> None:
    station, conn = await start_station("CP16", OcppVersion.V16)
    set_max = {"connectorId": 0, "csChargingProfiles": cs_profile(1, "ChargePointMaxProfile", 16, "A")}
    assert await conn.call_ok("SetChargingProfile", set_max) == {"status": "Accepted"}
    wrong = {"connectorId": 1, "csChargingProfiles": cs_profile(2, "ChargePointMaxProfile", 16)}
    assert await conn.call_ok("SetChargingProfile", wrong) == {"status": "Rejected"}
    tx_default = {"connectorId": 1, "csChargingProfiles": cs_profile(3, "TxDefaultProfile", 4000)}
    assert await conn.call_ok("SetChargingProfile", tx_default) == {"status": "Accepted"}
    assert station.power_w() == 4000  # 16 A x 230 V x 3 = 11040 W cap, 4000 W default profile
    reply = await conn.call_ok("GetCompositeSchedule", {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"})
    assert reply["status"] == "Accepted"
    assert reply["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 5.8}]
    assert await conn.call_ok("ClearChargingProfile", {"id": 3}) == {"status": "Accepted"}
    assert await conn.call_ok("ClearChargingProfile", {"chargingProfilePurpose": "TxProfile"}) == {"status": "Unknown"}
    assert station.power_w() == 7000


async def test_configuration(start_station: StartStation) -> None:
    station, conn = await start_station("CP16", OcppVersion.V16)
    reply = await conn.call_ok(
        "GetConfiguration",
        {"key": ["ChargingScheduleAllowedChargingRateUnit", "ChargeProfileMaxStackLevel", "HeartbeatInterval", "X"]},
    )
    assert reply == {
        "configurationKey": [
            {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Current,Power"},
            {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ],
        "unknownKey": ["X"],
    }
    assert await conn.call_ok("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}) == {
        "status": "Accepted"
    }
    assert station.heartbeat_interval == 60
    assert await conn.call_ok("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "2"}) == {
        "status": "Rejected"
    }
    assert await conn.call_ok("ChangeConfiguration", {"key": "Nope", "value": "1"}) == {"status": "NotSupported"}
    assert await conn.call_ok("TriggerMessage", {"requestedMessage": "Heartbeat"}) == {"status": "Accepted"}
    await conn.wait_for("Heartbeat")
