"""Exact payloads for a handful of directives: the wire format is the contract with real stations."""

from __future__ import annotations

from gateway.model import Controls, CurveKind, CurveUnit, Gradients, OcppVersion, OperationMode, RateUnit
from gateway.model import StationCapabilities as Caps
from mappings import OcppCommand, map_clear, map_directive
from tests.mappings.samples import NOW, curve, der_controls, directive, v21

_TIMING = {"priority": 3, "startTime": "2026-01-02T04:00:00Z", "duration": 900.0}


def test_volt_var_curve_is_one_scheduled_set_der_control_generator_signed() -> None:
    d = directive(der_controls("VoltVar"))
    (command,) = map_directive(d, v21(), number=42, now=NOW).commands
    assert command == OcppCommand(
        "SetDERControl",
        {
            "isDefault": False,
            "controlId": "g42-VoltVar",
            "controlType": "VoltVar",
            # Q10: the model's +44 % (absorbing) at high voltage is OCPP's -44 % (generator sign).
            "curve": {**_TIMING, "yUnit": "PctMaxVar", "curveData": [{"x": 92.0, "y": 44.0}, {"x": 108.0, "y": -44.0}]},
        },
        ("curve:volt_var",),
    )


def test_default_freq_droop_has_no_start_or_duration_r04_fr_12() -> None:
    d = directive(der_controls("FreqDroop"), is_default=True, start=None, duration_s=None)
    (command,) = map_directive(d, v21(), number=1, now=NOW).commands
    assert command.payload == {
        "isDefault": True,
        "controlId": "g1-FreqDroop",
        "controlType": "FreqDroop",
        "freqDroop": {
            "priority": 3,
            "overFreq": 60.036,
            "underFreq": 59.964,
            "overDroop": 0.05,
            "underDroop": 0.05,
            "responseTime": 5.0,
        },
    }


def test_trip_curve_axes_are_swapped_to_hz_against_seconds() -> None:
    d = directive(der_controls("HFMustTrip"), duration_s=None, start=None)
    (command,) = map_directive(d, v21(), number=2, now=NOW).commands
    assert command.payload["curve"] == {
        "priority": 3,
        "startTime": "2026-01-02T03:04:05.123Z",  # start None = now, truncated to milliseconds
        "duration": 31_536_000.0,  # until cancelled (Q11a)
        "yUnit": "Not_Applicable",
        "curveData": [{"x": 62.0, "y": 0.16}, {"x": 61.0, "y": 2.0}],
    }


def test_watt_pf_curve_flips_and_reorders_the_watt_axis_but_not_the_power_factor() -> None:
    (command,) = map_directive(directive(der_controls("WattPF")), v21(), number=2, now=NOW).commands
    assert command.payload["curve"]["curveData"] == [{"x": 0.0, "y": 1.0}, {"x": 100.0, "y": 0.9}]


def test_gradients_only_as_default_in_seconds_per_full_ramp() -> None:
    controls = Controls(gradients=Gradients(ramp_pct_per_s=0.5, soft_start_pct_per_s=0))
    scheduled = map_directive(directive(controls), v21(), number=2, now=NOW)
    assert scheduled.commands == ()
    assert scheduled.unsupported[0].control == "gradients"
    assert "R04.FR.14" in scheduled.unsupported[0].reason
    default = map_directive(directive(controls, is_default=True, start=None, duration_s=None), v21(), number=2, now=NOW)
    assert default.commands[0].payload["gradient"] == {"priority": 3, "gradient": 200.0, "softGradient": 0.0}


def test_lf_may_trip_has_no_ocpp_type() -> None:
    controls = Controls(curves=[curve(CurveKind.LF_MAY_TRIP, CurveUnit.SECONDS, CurveUnit.HERTZ, (1, 57))])
    result = map_directive(directive(controls), v21(), number=2, now=NOW)
    assert result.commands == ()
    assert "no LFMayTrip" in result.unsupported[0].reason


def test_central_setpoint_clamped_by_export_limit_and_shared_over_evses() -> None:
    caps = v21(evse_ids=(1, 2), supports_randomized_delay=True)
    controls = Controls(import_limit_w=20_000, export_limit_w=4_000, active_power_setpoint_w=-10_000)
    result = map_directive(directive(controls, randomize_start_s=120), caps, number=5, now=NOW)
    station_max, tx_default = result.commands
    assert station_max.payload == {
        "evseId": 0,
        "chargingProfile": {
            "id": 80,
            "stackLevel": 7,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 80,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 20_000.0}],
                    "startSchedule": "2026-01-02T04:00:00Z",
                    "duration": 900,
                }
            ],
            # Validity as long as the directive (K01.FR.06: consecutive intervals need disjoint windows).
            "validFrom": "2026-01-02T04:00:00Z",
            "validTo": "2026-01-02T04:15:00Z",
        },
    }
    assert tx_default.controls == ("active_power_setpoint_w", "export_limit_w")
    assert tx_default.payload == {
        "evseId": 0,
        "chargingProfile": {
            "id": 81,
            "stackLevel": 7,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 81,
                    "chargingRateUnit": "W",
                    # -10 kW over two EVSEs is -5 kW each, clamped to the 2 kW per-EVSE share of the export limit;
                    # no limit/dischargeLimit beside a CentralSetpoint (Q03.FR.02).
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "operationMode": "CentralSetpoint", "setpoint": -2000.0}
                    ],
                    "startSchedule": "2026-01-02T04:00:00Z",
                    "duration": 900,
                    "randomizedDelay": 120,
                }
            ],
            "validFrom": "2026-01-02T04:00:00Z",
            "validTo": "2026-01-02T04:15:00Z",
        },
    }
    assert result.unsupported == ()


def test_201_import_limit_in_amps_rounds_down() -> None:
    caps = Caps(version=OcppVersion.V201, rate_units=frozenset({RateUnit.A}), nominal_voltage_v=230, phases=3)
    (command,) = map_directive(directive(Controls(import_limit_w=7_000)), caps, number=9, now=NOW).commands
    period = command.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period == {"startPeriod": 0, "limit": 10.144927, "numberPhases": 3}  # 10.1449275... rounded down
    assert command.payload["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"


def test_16_positive_setpoint_becomes_a_tx_default_limit_on_the_targeted_connector() -> None:
    caps = Caps(version=OcppVersion.V16, rate_units=frozenset({RateUnit.W}))
    controls = Controls(active_power_setpoint_w=3_333.37, export_limit_w=1_000)
    result = map_directive(directive(controls), caps, number=4, now=NOW, evse_id=2)
    (command,) = result.commands
    assert command.payload == {
        "connectorId": 2,
        "csChargingProfiles": {
            "chargingProfileId": 65,
            "stackLevel": 7,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3333.3}],  # multipleOf 0.1, rounded down
                "startSchedule": "2026-01-02T04:00:00Z",
                "duration": 900,
            },
        },
    }
    assert command.note == "active power setpoint applied as a charging limit (OCPP 1.6 has no setpoint)"
    assert [u.control for u in result.unsupported] == ["export_limit_w"]
    assert map_clear(directive(controls), caps, number=4, evse_id=2).commands[0].payload == {"id": 65}


def test_disconnect_on_21_is_charging_only_at_zero_watts() -> None:
    controls = Controls(connect=False, active_power_setpoint_w=-3000)
    result = map_directive(directive(controls), v21(), number=3, now=NOW)
    (command,) = result.commands
    assert command.controls == ("connect",)
    period = command.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period == {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 0.0}
    assert [u.control for u in result.unsupported] == ["active_power_setpoint_w"]


def test_21_station_without_central_setpoint_gets_a_limit_not_a_setpoint() -> None:
    caps = v21(operation_modes=frozenset({OperationMode.CHARGING_ONLY}))
    result = map_directive(directive(Controls(active_power_setpoint_w=6_000)), caps, number=3, now=NOW)
    (command,) = result.commands
    period = command.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period == {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 6000.0}
    assert command.note == "active power setpoint applied as a charging limit (the station has no CentralSetpoint)"


def test_local_frequency_uses_the_watt_curve_and_setpoint_as_baseline() -> None:
    watts = curve(CurveKind.FREQ_WATT, CurveUnit.HERTZ, CurveUnit.WATT, (49.8, 5000), (50.2, -5000))
    controls = Controls(operation_mode=OperationMode.LOCAL_FREQUENCY, curves=[watts], active_power_setpoint_w=1000)
    (command,) = map_directive(directive(controls), v21(), number=3, now=NOW).commands
    assert command.controls == ("operation_mode", "curve:freq_watt", "active_power_setpoint_w")
    period = command.payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert period == {
        "startPeriod": 0,
        "operationMode": "LocalFrequency",
        "v2xBaseline": 1000.0,
        "v2xFreqWattCurve": [{"frequency": 49.8, "power": 5000.0}, {"frequency": 50.2, "power": -5000.0}],
    }


def test_central_frequency_is_a_dynamic_profile_bounded_by_validity_q07_fr_02() -> None:
    controls = Controls(operation_mode=OperationMode.CENTRAL_FREQUENCY, active_power_setpoint_w=-2000)
    (command,) = map_directive(directive(controls), v21(), number=3, now=NOW).commands
    profile = command.payload["chargingProfile"]
    assert profile["chargingProfileKind"] == "Dynamic"
    assert (profile["validFrom"], profile["validTo"]) == ("2026-01-02T04:00:00Z", "2026-01-02T04:15:00Z")
    assert "startSchedule" not in profile["chargingSchedule"][0]


def test_unsupported_operation_mode_is_reported_not_sent_k01_fr_115() -> None:
    caps = v21(operation_modes=frozenset({OperationMode.CHARGING_ONLY, OperationMode.CENTRAL_SETPOINT}))
    controls = Controls(operation_mode=OperationMode.IDLE)
    result = map_directive(directive(controls), caps, number=3, now=NOW)
    assert result.commands == ()
    assert "does not list Idle" in result.unsupported[0].reason


def test_no_der_control_for_older_versions() -> None:
    caps = Caps(version=OcppVersion.V16)
    result = map_directive(directive(der_controls("VoltVar")), caps, number=3, now=NOW)
    assert result.unsupported[0].reason == "OCPP 1.6 has no DER control messages; volt-var curve cannot be expressed"
