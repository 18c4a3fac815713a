"""OCPP 2.1 / 2.0.1 stations over real sockets, driven by the test CSMS; time moves only through the ManualClock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.model import OcppVersion
from protocols.ocpp.frames import CallError
from protocols.ocpp.simulator import ManualClock, SimStation, StationSpec
from protocols.ocpp.simulator.der_store import format_time
from tests.simulator.conftest import StartStation


def variable(component: str, name: str, evse: int | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {"name": component}
    if evse is not None:
        comp["evse"] = {"id": evse}
    return {"component": comp, "variable": {"name": name}}


def voltvar(
    control_id: str, priority: int, *, start: str | None = None, duration: float | None = None
) -> dict[str, Any]:
    curve: dict[str, Any] = {"priority": priority, "yUnit": "PctMaxVar", "curveData": [{"x": 95.0, "y": 30.0}]}
    if start is not None:
        curve["startTime"] = start
    if duration is not None:
        curve["duration"] = duration
    return {"isDefault": start is None, "controlId": control_id, "controlType": "VoltVar", "curve": curve}


def profile(profile_id: int, mode: str = "ChargingOnly", unit: str = "W", **period: float) -> dict[str, Any]:
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "chargingRateUnit": unit,
                    "chargingSchedulePeriod": [{"startPeriod": 0, "operationMode": mode, **period}],
                }
            ],
        },
    }


async def test_boot_status_heartbeat_and_meter_values(start_station: StartStation, clock: ManualClock) -> None:
    station, conn = await start_station(meter_interval=60)
    assert conn.messages("BootNotification")[0]["reason"] == "PowerUp"
    assert conn.messages("StatusNotification")[0]["connectorStatus"] == "Available"
    assert station.heartbeat_interval == 300
    clock.advance(60)
    [meter] = await conn.wait_for("MeterValues")
    sampled = {s["measurand"]: s["value"] for s in meter["meterValue"][0]["sampledValue"]}
    assert sampled == {"Energy.Active.Import.Register": 116.7, "Power.Active.Import": 7000.0}
    clock.advance(240)
    await conn.wait_for("Heartbeat")


async def test_phase_brings_the_first_meter_value_and_heartbeat_forward(
    start_station: StartStation, clock: ManualClock
) -> None:
    """A quarter phase: first meter value 15 s and first heartbeat 75 s after boot, then every full interval."""
    station, conn = await start_station(meter_interval=60, phase=0.25)
    assert station.heartbeat_interval == 300
    clock.advance(15)
    [meter] = await conn.wait_for("MeterValues")
    sampled = {s["measurand"]: s["value"] for s in meter["meterValue"][0]["sampledValue"]}
    assert sampled["Energy.Active.Import.Register"] == 29.2  # 7 kW for 15 s
    assert conn.messages("Heartbeat") == []
    clock.advance(60)
    await conn.wait_for("Heartbeat")
    assert len(await conn.wait_for("MeterValues", 2)) == 2


@pytest.mark.parametrize("phase", [0.0, -0.5, 1.5])
def test_phase_outside_one_interval_is_refused(phase: float) -> None:
    with pytest.raises(ValueError, match="phase"):
        SimStation("ws://127.0.0.1:1/ocpp", "CS001", phase=phase)


async def test_get_variables_reports_the_der_device_model(start_station: StartStation) -> None:
    _, conn = await start_station()
    reply = await conn.call_ok(
        "GetVariables",
        {
            "getVariableData": [
                variable("DCDERCtrlr", "ModesSupported", 1),
                variable("DCDERCtrlr", "MaxW", 1),
                variable("V2XChargingCtrlr", "SupportedOperationModes", 1),
                variable("SmartChargingCtrlr", "RateUnit"),
                variable("DCDERCtrlr", "MaxW"),  # no EVSE: a different component
                variable("DCDERCtrlr", "Bogus", 1),
            ]
        },
    )
    results = [(r["attributeStatus"], r.get("attributeValue")) for r in reply["getVariableResult"]]
    assert results[1:] == [
        ("Accepted", "11000"),
        ("Accepted", "Idle,ChargingOnly,CentralSetpoint,CentralFrequency"),
        ("Accepted", "A,W"),
        ("UnknownComponent", None),
        ("UnknownVariable", None),
    ]
    assert "VoltVar" in (results[0][1] or "").split(",")


async def test_version_decides_the_device_model(start_station: StartStation) -> None:
    probe = {"getVariableData": [variable("DCDERCtrlr", "MaxW", 1), variable("V2XChargingCtrlr", "Enabled", 1)]}
    _, v201 = await start_station("CS201", OcppVersion.V201)
    _, no_der = await start_station("CS21", OcppVersion.V21, der=False)
    statuses = [
        [r["attributeStatus"] for r in (await conn.call_ok("GetVariables", probe))["getVariableResult"]]
        for conn in (v201, no_der)
    ]
    assert statuses == [["UnknownComponent", "UnknownComponent"], ["UnknownComponent", "Accepted"]]
    reply = await no_der.call("SetDERControl", voltvar("x", 1))
    assert isinstance(reply, CallError)
    assert reply.code == "NotSupported"


async def test_base_report_arrives_in_tbc_chunks(start_station: StartStation) -> None:
    station, conn = await start_station()
    assert await conn.call_ok("GetBaseReport", {"requestId": 42, "reportBase": "FullInventory"}) == {
        "status": "Accepted"
    }
    await station.wait_for("GetBaseReport")
    reports = conn.messages("NotifyReport")
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert [r.get("tbc", False) for r in reports] == [True] * (len(reports) - 1) + [False]
    names = {(d["component"]["name"], d["variable"]["name"]) for r in reports for d in r["reportData"]}
    assert {("DCDERCtrlr", "ModesSupported"), ("SmartChargingCtrlr", "RateUnit"), ("DCDERCtrlr", "VNom")} <= names
    reply = await conn.call_ok("GetReport", {"requestId": 43, "componentVariable": [{"component": {"name": "Nope"}}]})
    assert reply == {"status": "EmptyResultSet"}


async def test_set_variables(start_station: StartStation) -> None:
    station, conn = await start_station()
    data = [
        {**variable("DCDERCtrlr", "Enabled", 1), "attributeValue": "false"},
        {**variable("DCDERCtrlr", "MaxW", 1), "attributeValue": "1"},
        {**variable("SmartChargingCtrlr", "Enabled"), "attributeValue": "maybe"},
    ]
    reply = await conn.call_ok("SetVariables", {"setVariableData": data})
    assert [r["attributeStatus"] for r in reply["setVariableResult"]] == ["Accepted", "Rejected", "Rejected"]
    enabled = station.device_model.find("DCDERCtrlr", "Enabled", 1)
    assert enabled is not None
    assert enabled.value == "false"


async def test_der_superseding_and_start_stop_over_the_wire(start_station: StartStation, clock: ManualClock) -> None:
    station, conn = await start_station()
    t0 = clock.now()

    def t(seconds: float) -> str:
        return format_time(t0 + timedelta(seconds=seconds))

    assert await conn.call_ok("SetDERControl", voltvar("active", 5, start=t(0), duration=1000)) == {
        "status": "Accepted"
    }
    [started] = await conn.wait_for("NotifyDERStartStop")
    assert (started["controlId"], started["started"]) == ("active", True)
    # R04.FR.06: a pending control loses at once to a better one, even one that starts later.
    await conn.call_ok("SetDERControl", voltvar("pending", 3, start=t(100), duration=50))
    reply = await conn.call_ok("SetDERControl", voltvar("better", 1, start=t(120), duration=50))
    assert reply == {"status": "Accepted", "supersededIds": ["pending"]}
    # R04.FR.08: a worse control than the active one is itself superseded.
    reply = await conn.call_ok("SetDERControl", voltvar("worse", 9, start=t(10), duration=10))
    assert reply == {"status": "Accepted", "supersededIds": ["worse"]}
    # R04.FR.07/21: the active one runs until the better one starts, which reports it superseded.
    clock.advance(120)
    events = await conn.wait_for("NotifyDERStartStop", 2)
    assert events[1] == {"controlId": "better", "started": True, "timestamp": t(120), "supersededIds": ["active"]}
    clock.advance(50)
    events = await conn.wait_for("NotifyDERStartStop", 3)
    assert events[2] == {"controlId": "better", "started": False, "timestamp": t(170)}  # R04.FR.22
    assert sorted(station.der.controls) == ["active"]  # R04.FR.10 deleted the others; superseded kept to its end
    assert station.der.active("VoltVar", clock.now()) is None


async def test_der_modes_and_field_rules(start_station: StartStation) -> None:
    _, conn = await start_station(spec=StationSpec(der_modes=frozenset({"VoltVar", "EnterService"})))
    watt = {**voltvar("w", 1), "controlType": "WattPF"}
    assert await conn.call_ok("SetDERControl", watt) == {"status": "NotSupported"}  # R04.FR.01
    enter = {
        "isDefault": False,
        "controlId": "e",
        "controlType": "EnterService",
        "enterService": {"priority": 1, "highVoltage": 110, "lowVoltage": 90, "highFreq": 50.2, "lowFreq": 49.8},
    }
    reply = await conn.call_ok("SetDERControl", enter)
    assert reply["status"] == "Rejected"  # R04.FR.15
    assert (await conn.call_ok("SetDERControl", {**enter, "isDefault": True}))["status"] == "Accepted"
    mixed = {**voltvar("m", 1), "enterService": enter["enterService"]}
    assert (await conn.call_ok("SetDERControl", mixed))["status"] == "Rejected"  # R04.FR.17


async def test_get_and_clear_der_controls(start_station: StartStation) -> None:
    station, conn = await start_station()
    await conn.call_ok("SetDERControl", voltvar("d", 2))
    assert await conn.call_ok("GetDERControl", {"requestId": 1, "controlType": "WattVar"}) == {"status": "NotFound"}
    assert await conn.call_ok("GetDERControl", {"requestId": 9, "isDefault": True}) == {"status": "Accepted"}
    await station.wait_for("GetDERControl", 2)
    [report] = conn.messages("ReportDERControl")
    assert report["requestId"] == 9
    assert report["curve"][0] == {
        "id": "d",
        "curveType": "VoltVar",
        "isDefault": True,
        "isSuperseded": False,
        "curve": voltvar("d", 2)["curve"],
    }
    clear = {"isDefault": False, "controlId": "d"}
    assert await conn.call_ok("ClearDERControl", clear) == {"status": "NotFound"}  # R04.FR.42
    assert await conn.call_ok("ClearDERControl", {**clear, "isDefault": True}) == {"status": "Accepted"}  # .46
    assert not station.der.controls


async def test_der_alarm_on_request(start_station: StartStation) -> None:
    station, conn = await start_station()
    await station.raise_alarm("VoltVar", grid_event_fault="OverVoltage", extra_info="EV tripped")
    await station.raise_alarm("VoltVar", grid_event_fault="OverVoltage", ended=True)
    alarms = await conn.wait_for("NotifyDERAlarm", 2)
    assert [(a["gridEventFault"], a.get("alarmEnded", False)) for a in alarms] == [
        ("OverVoltage", False),
        ("OverVoltage", True),
    ]
    assert alarms[0]["extraInfo"] == "EV tripped"


async def test_charging_profiles_by_operation_mode_and_rate_unit(
    start_station: StartStation, clock: ManualClock
) -> None:
    station, conn = await start_station(meter_interval=60)
    reply = await conn.call_ok("SetChargingProfile", profile(1, "LocalFrequency", limit=1000))
    assert reply["status"] == "Rejected"  # K01.FR.115
    assert reply["statusInfo"]["reasonCode"] == "InvalidSchedule"
    assert await conn.call_ok("SetChargingProfile", profile(2, limit=3000)) == {"status": "Accepted"}
    assert station.power_w() == 3000
    assert await conn.call_ok("SetChargingProfile", profile(3, "CentralSetpoint", setpoint=-2000)) == {
        "status": "Accepted"
    }
    assert station.power_w() == -2000  # profile 3 replaced profile 2 (same EVSE, purpose, stack level)
    clock.advance(60)
    [meter] = await conn.wait_for("MeterValues")
    sampled = {s["measurand"]: s["value"] for s in meter["meterValue"][0]["sampledValue"]}
    assert sampled["Power.Active.Export"] == 2000
    reply = await conn.call_ok("GetChargingProfiles", {"requestId": 5, "chargingProfile": {}})
    assert reply == {"status": "Accepted"}
    await station.wait_for("GetChargingProfiles")
    [report] = conn.messages("ReportChargingProfiles")
    assert [p["id"] for p in report["chargingProfile"]] == [3]
    assert await conn.call_ok("ClearChargingProfile", {"chargingProfileId": 3}) == {"status": "Accepted"}
    assert await conn.call_ok("ClearChargingProfile", {"chargingProfileId": 3}) == {"status": "Unknown"}


async def test_watts_rejected_by_an_amps_only_station(start_station: StartStation) -> None:
    _, conn = await start_station("CS201", OcppVersion.V201, spec=StationSpec(rate_units=("A",)))
    v201 = profile(1, limit=11000)
    del v201["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["operationMode"]
    reply = await conn.call_ok("SetChargingProfile", v201)
    assert reply["status"] == "Rejected"  # K01.FR.26
    assert reply["statusInfo"]["reasonCode"] == "UnsupportedRateUnit"


async def test_trigger_reset_and_availability(start_station: StartStation) -> None:
    station, conn = await start_station(reconnect_delay=0)
    assert await conn.call_ok("TriggerMessage", {"requestedMessage": "MeterValues"}) == {"status": "Accepted"}
    await conn.wait_for("MeterValues")
    assert await conn.call_ok("TriggerMessage", {"requestedMessage": "LogStatusNotification"}) == {
        "status": "NotImplemented"
    }
    assert await conn.call_ok("ChangeAvailability", {"operationalStatus": "Inoperative"}) == {"status": "Accepted"}
    statuses = await conn.wait_for("StatusNotification", 2)
    assert statuses[-1]["connectorStatus"] == "Unavailable"
    assert await conn.call_ok("Reset", {"type": "Immediate"}) == {"status": "Accepted"}
    await conn.csms.wait_boots(station.station_id, 2)
    [boot] = conn.csms.connections[station.station_id].messages("BootNotification")
    assert boot["reason"] == "RemoteReset"


async def test_transaction_cycle(start_station: StartStation, clock: ManualClock) -> None:
    station, conn = await start_station(transaction=True, meter_interval=60)
    clock.advance(60)
    events = await conn.wait_for("TransactionEvent", 2)
    await station.end_transaction()
    events = await conn.wait_for("TransactionEvent", 3)
    assert [(e["eventType"], e["seqNo"]) for e in events] == [("Started", 0), ("Updated", 1), ("Ended", 2)]
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
