"""Reading a station's DER capabilities from its device model (2.x) or configuration keys (1.6). No I/O.

The variables asked for are the ones the mapping layer needs: DCDERCtrlr (R01.FR.01/02), V2XChargingCtrlr
(SupportedOperationModes, Q01.FR.31) and SmartChargingCtrlr (RateUnit, SupportsRandomizedDelay, ProfileStackLevel,
PeriodsPerSchedule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.model import OcppVersion, OperationMode, RateUnit, StationCapabilities

_DER_EVSE = 1

#: (component, evse id or None, variable) read with GetVariables after boot.
WANTED: tuple[tuple[str, int | None, str], ...] = (
    ("DCDERCtrlr", _DER_EVSE, "Enabled"),
    ("DCDERCtrlr", _DER_EVSE, "ModesSupported"),
    ("DCDERCtrlr", _DER_EVSE, "MaxW"),
    ("DCDERCtrlr", _DER_EVSE, "MaxChargeRateW"),
    ("DCDERCtrlr", _DER_EVSE, "MaxVar"),
    ("DCDERCtrlr", _DER_EVSE, "MaxVarNeg"),
    ("DCDERCtrlr", _DER_EVSE, "VNom"),
    ("V2XChargingCtrlr", _DER_EVSE, "Enabled"),
    ("V2XChargingCtrlr", _DER_EVSE, "SupportedOperationModes"),
    ("SmartChargingCtrlr", None, "RateUnit"),
    ("SmartChargingCtrlr", None, "SupportsRandomizedDelay"),
    ("SmartChargingCtrlr", None, "ProfileStackLevel"),
    ("SmartChargingCtrlr", None, "PeriodsPerSchedule"),
)

#: 1.6 configuration keys read with GetConfiguration.
WANTED_16 = ("ChargingScheduleAllowedChargingRateUnit", "ChargeProfileMaxStackLevel", "ChargingScheduleMaxPeriods")

_MODES = {
    "Idle": OperationMode.IDLE,
    "ChargingOnly": OperationMode.CHARGING_ONLY,
    "CentralSetpoint": OperationMode.CENTRAL_SETPOINT,
    "ExternalSetpoint": OperationMode.EXTERNAL_SETPOINT,
    "ExternalLimits": OperationMode.EXTERNAL_LIMITS,
    "CentralFrequency": OperationMode.CENTRAL_FREQUENCY,
    "LocalFrequency": OperationMode.LOCAL_FREQUENCY,
    "LocalLoadBalancing": OperationMode.LOCAL_LOAD_BALANCING,
}

Values = dict[tuple[str, str], str]


def get_variables_request() -> dict[str, Any]:
    items = []
    for component, evse, variable in WANTED:
        comp: dict[str, Any] = {"name": component}
        if evse is not None:
            comp["evse"] = {"id": evse}
        items.append({"component": comp, "variable": {"name": variable}})
    return {"getVariableData": items}


def values_from_get_variables(response: Mapping[str, Any]) -> Values:
    """Accepted attribute values keyed by (component, variable)."""
    values: Values = {}
    for item in response.get("getVariableResult", []):
        if item.get("attributeStatus") == "Accepted" and "attributeValue" in item:
            values[(item["component"]["name"], item["variable"]["name"])] = str(item["attributeValue"])
    return values


def values_from_report(report_data: Iterable[Mapping[str, Any]]) -> Values:
    """Actual values from NotifyReport reportData."""
    values: Values = {}
    for item in report_data:
        for attr in item.get("variableAttribute", []):
            if attr.get("type", "Actual") == "Actual" and "value" in attr:
                values[(item["component"]["name"], item["variable"]["name"])] = str(attr["value"])
    return values


def _members(raw: str | None) -> list[str]:
    return [m.strip() for m in raw.split(",") if m.strip()] if raw else []


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _integer(raw: str | None) -> int | None:
    number = _number(raw)
    return int(number) if number is not None and number == int(number) else None


def _positive(value: int | None) -> int | None:
    return value if value else None


def _true(raw: str | None) -> bool:
    return (raw or "").strip().lower() == "true"


def capabilities_v2(version: OcppVersion, values: Values, *, nominal_voltage_v: float = 230.0) -> StationCapabilities:
    """Capabilities of a 2.x station from its device-model values; DER only on 2.1 with DCDERCtrlr enabled."""
    der_enabled = version is OcppVersion.V21 and _true(values.get(("DCDERCtrlr", "Enabled")))
    v2x_enabled = version is OcppVersion.V21 and _true(values.get(("V2XChargingCtrlr", "Enabled")))
    modes = frozenset(_members(values.get(("DCDERCtrlr", "ModesSupported")))) if der_enabled else frozenset()
    op_modes = frozenset(
        _MODES[m] for m in _members(values.get(("V2XChargingCtrlr", "SupportedOperationModes"))) if m in _MODES
    )
    rate_units = frozenset(RateUnit(u) for u in _members(values.get(("SmartChargingCtrlr", "RateUnit"))) if u in "AW")
    max_w = _number(values.get(("DCDERCtrlr", "MaxW")))
    return StationCapabilities(
        version=version,
        der_modes=modes,
        operation_modes=op_modes if v2x_enabled else frozenset(),
        rate_units=rate_units or frozenset({RateUnit.A}),
        max_w=max_w,
        max_charge_rate_w=_number(values.get(("DCDERCtrlr", "MaxChargeRateW"))),
        max_discharge_rate_w=max_w if v2x_enabled else None,
        max_var=_number(values.get(("DCDERCtrlr", "MaxVar"))),
        max_var_neg=_number(values.get(("DCDERCtrlr", "MaxVarNeg"))),
        nominal_voltage_v=_number(values.get(("DCDERCtrlr", "VNom"))) or nominal_voltage_v,
        supports_randomized_delay=_true(values.get(("SmartChargingCtrlr", "SupportsRandomizedDelay"))),
        max_stack_level=_integer(values.get(("SmartChargingCtrlr", "ProfileStackLevel"))),
        periods_per_schedule=_positive(_integer(values.get(("SmartChargingCtrlr", "PeriodsPerSchedule")))),
    )


#: Distinct capability sets seen, each kept once: most stations of a fleet report the same ones, and an idle station
#: then holds a reference instead of its own model (about 5 KiB with its strings).
_SHARED: dict[StationCapabilities, StationCapabilities] = {}
#: Bound on the distinct sets kept; past it, new ones are returned as they are (not shared).
SHARED_MAX = 1024


def shared(caps: StationCapabilities) -> StationCapabilities:
    """An equal capability set already held, else ``caps`` itself (kept for the next equal one while there is
    room). The models are frozen, so sharing one between stations is safe."""
    known = _SHARED.get(caps)
    if known is not None:
        return known
    if len(_SHARED) < SHARED_MAX:
        _SHARED[caps] = caps
    return caps


def capabilities_v16(config: Mapping[str, Any], *, nominal_voltage_v: float = 230.0) -> StationCapabilities:
    """Capabilities of a 1.6 station from a GetConfiguration response."""
    keys = {k.get("key"): k.get("value") for k in config.get("configurationKey", []) if isinstance(k, Mapping)}
    units = frozenset(
        RateUnit.W if u in ("W", "Power") else RateUnit.A
        for u in _members(keys.get("ChargingScheduleAllowedChargingRateUnit"))
        if u in ("A", "W", "Current", "Power")
    )
    return StationCapabilities(
        version=OcppVersion.V16,
        rate_units=units or frozenset({RateUnit.A}),
        nominal_voltage_v=nominal_voltage_v,
        max_stack_level=_integer(keys.get("ChargeProfileMaxStackLevel")),
        periods_per_schedule=_positive(_integer(keys.get("ChargingScheduleMaxPeriods"))),
    )
