"""Names shared by the builders: OCPP spellings of model enums, and readable control names for reasons."""

from __future__ import annotations

from typing import Final

from ocpp.v21.enums import DERControlEnumType

from gateway.model import CurveKind, OcppVersion, OperationMode

#: Every OCPP 2.1 DERControlEnumType value, in schema order (from the `ocpp` package's enum).
DER_CONTROL_TYPES: Final[tuple[str, ...]] = tuple(member.value for member in DERControlEnumType)

#: The SetDERControlRequest field for each control type that has its own (R04.FR.16); every curve type uses `curve`.
DER_SETTING_FIELD: Final[dict[str, str]] = {
    "FixedPFAbsorb": "fixedPFAbsorb",
    "FixedPFInject": "fixedPFInject",
    "FixedVar": "fixedVar",
    "LimitMaxDischarge": "limitMaxDischarge",
    "FreqDroop": "freqDroop",
    "EnterService": "enterService",
    "Gradients": "gradient",
}


def der_setting_field(control_type: str) -> str:
    """The SetDERControlRequest field that carries `control_type` (R04.FR.16/17: only that one may be present)."""
    return DER_SETTING_FIELD.get(control_type, "curve")


VERSION_LABEL: Final[dict[OcppVersion, str]] = {
    OcppVersion.V21: "OCPP 2.1",
    OcppVersion.V201: "OCPP 2.0.1",
    OcppVersion.V16: "OCPP 1.6",
}

#: OperationModeEnumType spelling of each model operation mode.
OCPP_MODE: Final[dict[OperationMode, str]] = {
    OperationMode.CHARGING_ONLY: "ChargingOnly",
    OperationMode.IDLE: "Idle",
    OperationMode.CENTRAL_SETPOINT: "CentralSetpoint",
    OperationMode.CENTRAL_FREQUENCY: "CentralFrequency",
    OperationMode.LOCAL_FREQUENCY: "LocalFrequency",
    OperationMode.LOCAL_LOAD_BALANCING: "LocalLoadBalancing",
    OperationMode.EXTERNAL_SETPOINT: "ExternalSetpoint",
    OperationMode.EXTERNAL_LIMITS: "ExternalLimits",
}

#: DERControlEnumType of each curve kind that has one (LFMayTrip does not exist in OCPP 2.1).
CURVE_TYPE: Final[dict[CurveKind, str]] = {
    CurveKind.VOLT_VAR: "VoltVar",
    CurveKind.VOLT_WATT: "VoltWatt",
    CurveKind.FREQ_WATT: "FreqWatt",
    CurveKind.WATT_PF: "WattPF",
    CurveKind.WATT_VAR: "WattVar",
    CurveKind.HF_MUST_TRIP: "HFMustTrip",
    CurveKind.HF_MAY_TRIP: "HFMayTrip",
    CurveKind.LF_MUST_TRIP: "LFMustTrip",
    CurveKind.HV_MUST_TRIP: "HVMustTrip",
    CurveKind.HV_MAY_TRIP: "HVMayTrip",
    CurveKind.HV_MOM_CESS: "HVMomCess",
    CurveKind.LV_MUST_TRIP: "LVMustTrip",
    CurveKind.LV_MAY_TRIP: "LVMayTrip",
    CurveKind.LV_MOM_CESS: "LVMomCess",
    CurveKind.POWER_MONITORING_MUST_TRIP: "PowerMonitoringMustTrip",
}

#: DERControlEnumType of each non-curve DER setting, by model field name.
SETTING_TYPE: Final[dict[str, str]] = {
    "fixed_pf_absorb": "FixedPFAbsorb",
    "fixed_pf_inject": "FixedPFInject",
    "fixed_var": "FixedVar",
    "freq_droop": "FreqDroop",
    "gradients": "Gradients",
    "enter_service": "EnterService",
    "max_discharge_pct": "LimitMaxDischarge",
}

_READABLE: Final[dict[str, str]] = {
    "import_limit_w": "import limit",
    "export_limit_w": "export limit",
    "max_discharge_pct": "maximum discharge percentage",
    "active_power_setpoint_w": "active power setpoint",
    "reactive_power_setpoint_var": "reactive power setpoint",
    "fixed_pf_absorb": "fixed power factor (absorbing)",
    "fixed_pf_inject": "fixed power factor (injecting)",
    "fixed_var": "fixed reactive power",
    "freq_droop": "frequency droop",
    "gradients": "ramp gradients",
    "enter_service": "enter-service settings",
    "connect": "connect",
    "energize": "energize",
    "operation_mode": "operation mode",
    "price": "price",
}


_CURVE_READABLE: Final[dict[CurveKind, str]] = {
    CurveKind.VOLT_VAR: "volt-var",
    CurveKind.VOLT_WATT: "volt-watt",
    CurveKind.FREQ_WATT: "freq-watt",
    CurveKind.WATT_PF: "watt-PF",
    CurveKind.WATT_VAR: "watt-var",
    CurveKind.HF_MUST_TRIP: "HF must-trip",
    CurveKind.HF_MAY_TRIP: "HF may-trip",
    CurveKind.LF_MUST_TRIP: "LF must-trip",
    CurveKind.LF_MAY_TRIP: "LF may-trip",
    CurveKind.HV_MUST_TRIP: "HV must-trip",
    CurveKind.HV_MAY_TRIP: "HV may-trip",
    CurveKind.HV_MOM_CESS: "HV momentary-cessation",
    CurveKind.LV_MUST_TRIP: "LV must-trip",
    CurveKind.LV_MAY_TRIP: "LV may-trip",
    CurveKind.LV_MOM_CESS: "LV momentary-cessation",
    CurveKind.POWER_MONITORING_MUST_TRIP: "power-monitoring must-trip",
}


def readable(control: str) -> str:
    """A control name as a person reads it in an outcome: `curve:volt_var` -> `volt-var curve`."""
    if control.startswith("curve:"):
        return _CURVE_READABLE[CurveKind(control.removeprefix("curve:"))] + " curve"
    return _READABLE[control]
