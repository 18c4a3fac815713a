"""The device model a simulated OCPP 2.x station reports (part 2 appendix, dm_components_vars.csv), pure.

Components are identified strictly as OCPP says (name, instance and EVSE): DCDERCtrlr and V2XChargingCtrlr live on
EVSE 1.., so asking for them without an EVSE answers UnknownComponent, as a real station would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.model import OcppVersion
from mappings.naming import DER_CONTROL_TYPES as CONTROL_TYPES
from protocols.ocpp.simulator.der_store import format_time

OPERATION_MODES = (
    "Idle",
    "ChargingOnly",
    "CentralSetpoint",
    "ExternalSetpoint",
    "ExternalLimits",
    "CentralFrequency",
    "LocalFrequency",
    "LocalLoadBalancing",
)
ENERGY_TRANSFER_MODES = ("AC_single_phase", "AC_two_phase", "AC_three_phase", "DC", "AC_BPT", "DC_BPT")
#: Variables per NotifyReportRequest, small enough that a full report spans several messages (tbc).
REPORT_CHUNK = 8

_DEFAULT_DER_MODES = frozenset(CONTROL_TYPES) - {"PowerMonitoringMustTrip", "HFMayTrip", "LVMayTrip"}


@dataclass(frozen=True, slots=True)
class StationSpec:
    """What the simulated hardware is: identity, EVSEs, DER ratings and supported modes."""

    vendor: str = "DERGW-Sim"
    model: str = "SimStation"
    firmware: str = "0.1.0"
    evses: int = 1
    #: DCDERCtrlr.ModesSupported (2.1 with DER only).
    der_modes: frozenset[str] = _DEFAULT_DER_MODES
    #: V2XChargingCtrlr.SupportedOperationModes (2.1 only; Q01.FR.31 requires the first three).
    operation_modes: frozenset[str] = frozenset({"ChargingOnly", "CentralSetpoint", "CentralFrequency", "Idle"})
    #: SmartChargingCtrlr.RateUnit / ChargingScheduleAllowedChargingRateUnit.
    rate_units: tuple[str, ...] = ("A", "W")
    energy_transfer_modes: tuple[str, ...] = ("AC_three_phase", "DC", "DC_BPT")
    max_w: float = 11000.0
    max_charge_rate_w: float = 11000.0
    max_var: float = 5000.0
    max_var_neg: float = 5000.0
    max_va: float = 11000.0
    v_nom: float = 230.0
    phases: int = 3
    profile_stack_level: int = 8
    periods_per_schedule: int = 24


@dataclass(slots=True)
class Variable:
    component: str
    evse: int | None
    name: str
    value: str
    data_type: str
    mutability: str = "ReadOnly"
    unit: str | None = None
    values_list: str | None = None
    instance: str | None = None


def _fmt(value: float) -> str:
    return f"{value:g}"


def build_variables(spec: StationSpec, version: OcppVersion, der: bool) -> list[Variable]:
    """The station's variables: SmartChargingCtrlr always; V2XChargingCtrlr on 2.1; DCDERCtrlr on 2.1 with DER."""
    variables = [
        Variable("SmartChargingCtrlr", None, "Enabled", "true", "boolean", "ReadWrite"),
        Variable(
            "SmartChargingCtrlr",
            None,
            "RateUnit",
            ",".join(spec.rate_units),
            "MemberList",
            values_list="A,W",
        ),
        Variable("SmartChargingCtrlr", None, "ProfileStackLevel", str(spec.profile_stack_level), "integer"),
        Variable("SmartChargingCtrlr", None, "PeriodsPerSchedule", str(spec.periods_per_schedule), "integer"),
    ]
    if version is not OcppVersion.V21:
        return variables
    variables.append(Variable("SmartChargingCtrlr", None, "SupportsRandomizedDelay", "true", "boolean"))
    for evse in range(1, spec.evses + 1):
        variables += [
            Variable("V2XChargingCtrlr", evse, "Enabled", "true", "boolean", "ReadWrite"),
            Variable(
                "V2XChargingCtrlr",
                evse,
                "SupportedOperationModes",
                ",".join(m for m in OPERATION_MODES if m in spec.operation_modes),
                "MemberList",
                values_list=",".join(OPERATION_MODES),
            ),
            Variable(
                "V2XChargingCtrlr",
                evse,
                "SupportedEnergyTransferModes",
                ",".join(spec.energy_transfer_modes),
                "MemberList",
                values_list=",".join(ENERGY_TRANSFER_MODES),
            ),
        ]
        if der:
            variables += [
                Variable("DCDERCtrlr", evse, "Enabled", "true", "boolean", "ReadWrite"),
                Variable(
                    "DCDERCtrlr",
                    evse,
                    "ModesSupported",
                    ",".join(m for m in CONTROL_TYPES if m in spec.der_modes),
                    "MemberList",
                    values_list=",".join(CONTROL_TYPES),
                ),
                Variable("DCDERCtrlr", evse, "MaxW", _fmt(spec.max_w), "decimal", unit="W"),
                Variable("DCDERCtrlr", evse, "MaxChargeRateW", _fmt(spec.max_charge_rate_w), "decimal", unit="W"),
                Variable("DCDERCtrlr", evse, "MaxVar", _fmt(spec.max_var), "decimal", unit="var"),
                Variable("DCDERCtrlr", evse, "MaxVarNeg", _fmt(spec.max_var_neg), "decimal", unit="var"),
                Variable("DCDERCtrlr", evse, "MaxVA", _fmt(spec.max_va), "decimal", unit="VA"),
                Variable("DCDERCtrlr", evse, "VNom", _fmt(spec.v_nom), "decimal", unit="V"),
            ]
    return variables


def _component_key(component: dict[str, Any]) -> tuple[str, int | None, str | None]:
    evse = component.get("evse")
    return component["name"], evse["id"] if evse else None, component.get("instance")


class DeviceModel:
    """Get, set and report variables with the statuses part 2 (B06, B05, B07, B08) prescribes."""

    def __init__(self, variables: Iterable[Variable]) -> None:
        self.variables = list(variables)

    def find(self, component: str, name: str, evse: int | None = None) -> Variable | None:
        return next(
            (v for v in self.variables if (v.component, v.name, v.evse) == (component, name, evse)),
            None,
        )

    def _lookup(self, data: dict[str, Any]) -> tuple[str, Variable | None]:
        comp = _component_key(data["component"])
        in_component = [v for v in self.variables if (v.component, v.evse, v.instance) == comp]
        if not in_component:
            return "UnknownComponent", None
        wanted = data["variable"]
        variable = next(
            (v for v in in_component if v.name == wanted["name"] and v.instance == wanted.get("instance")),
            None,
        )
        return ("Accepted", variable) if variable else ("UnknownVariable", None)

    def get(self, data: dict[str, Any]) -> dict[str, Any]:
        """One GetVariableResultType for one GetVariableDataType."""
        status, variable = self._lookup(data)
        result: dict[str, Any] = {"component": data["component"], "variable": data["variable"]}
        if "attributeType" in data:
            result["attributeType"] = data["attributeType"]
        if variable is not None and data.get("attributeType", "Actual") != "Actual":
            status = "NotSupportedAttributeType"
        result["attributeStatus"] = status
        if status == "Accepted" and variable is not None:
            result["attributeValue"] = variable.value
        return result

    def set(self, data: dict[str, Any]) -> dict[str, Any]:
        """One SetVariableResultType; ReadOnly variables and ill-typed values are Rejected."""
        status, variable = self._lookup(data)
        if variable is not None:
            value: str = data["attributeValue"]
            if data.get("attributeType", "Actual") != "Actual":
                status = "NotSupportedAttributeType"
            elif variable.mutability == "ReadOnly" or not _well_typed(variable, value):
                status = "Rejected"
            else:
                variable.value = value
        result: dict[str, Any] = {"component": data["component"], "variable": data["variable"]}
        if "attributeType" in data:
            result["attributeType"] = data["attributeType"]
        result["attributeStatus"] = status
        return result

    def select(self, component_variables: list[dict[str, Any]] | None, configuration_only: bool) -> list[Variable]:
        """Variables a GetReport/GetBaseReport asks for: by component (and variable), or all."""
        chosen = [v for v in self.variables if v.mutability != "ReadOnly" or not configuration_only]
        if not component_variables:
            return chosen

        def wanted(v: Variable) -> bool:
            for cv in component_variables:
                name, evse, instance = _component_key(cv["component"])
                if v.component != name or ("evse" in cv["component"] and v.evse != evse):
                    continue
                if instance is not None and v.instance != instance:
                    continue
                if "variable" not in cv or cv["variable"]["name"] == v.name:
                    return True
            return False

        return [v for v in chosen if wanted(v)]

    @staticmethod
    def report_payloads(variables: list[Variable], request_id: int, now: datetime) -> list[dict[str, Any]]:
        """NotifyReportRequests, REPORT_CHUNK variables each, seqNo counting up and tbc on all but the last."""
        chunks = [variables[i : i + REPORT_CHUNK] for i in range(0, len(variables), REPORT_CHUNK)]
        messages: list[dict[str, Any]] = []
        for seq, chunk in enumerate(chunks):
            message: dict[str, Any] = {
                "requestId": request_id,
                "generatedAt": format_time(now),
                "seqNo": seq,
                "reportData": [_report_data(v) for v in chunk],
            }
            if seq < len(chunks) - 1:
                message["tbc"] = True
            messages.append(message)
        return messages


def _well_typed(variable: Variable, value: str) -> bool:
    if variable.data_type == "boolean":
        return value in ("true", "false")
    if variable.data_type == "integer":
        return value.lstrip("-").isdigit()
    return True


def _report_data(v: Variable) -> dict[str, Any]:
    component: dict[str, Any] = {"name": v.component}
    if v.evse is not None:
        component["evse"] = {"id": v.evse}
    if v.instance is not None:
        component["instance"] = v.instance
    characteristics: dict[str, Any] = {"dataType": v.data_type, "supportsMonitoring": False}
    if v.unit:
        characteristics["unit"] = v.unit
    if v.values_list:
        characteristics["valuesList"] = v.values_list
    return {
        "component": component,
        "variable": {"name": v.name},
        "variableAttribute": [{"type": "Actual", "value": v.value, "mutability": v.mutability}],
        "variableCharacteristics": characteristics,
    }
