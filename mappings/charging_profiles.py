"""SetChargingProfile builders for OCPP 2.1, 2.0.1 and 1.6: limits, setpoints and operation modes.

A directive gets at most two profiles, in fixed slots so map_clear can find them by id:
- slot 0, the station cap: ChargingStationMaxProfile (1.6: ChargePointMaxProfile) at EVSE 0, a total over the
  station. It carries a station-wide import limit on every version; on 2.0.1/1.6 also the other charging limits.
- slot 1, the TxDefaultProfile: at the targeted EVSE, or at EVSE 0 where it applies to each EVSE (so station-wide
  values are divided by the number of EVSEs, never exceeding the total asked). On 2.1 it holds the period with the
  operation mode, setpoints and export handling.
One profile per purpose per directive, because a station may not hold two profiles of the same purpose, EVSE and
stackLevel with overlapping validity (K01.FR.06).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.model import (
    Controls,
    Curve,
    CurveKind,
    CurveUnit,
    Directive,
    OcppVersion,
    OperationMode,
    RateUnit,
    StationCapabilities,
    UnsupportedControl,
)
from mappings.commands import OcppCommand
from mappings.decisions import (
    ALWAYS_SUPPORTED_MODES,
    DECIMALS_16,
    PROFILE_SLOTS,
    SLOT_STATION_MAX,
    SLOT_TX_DEFAULT,
)
from mappings.naming import OCPP_MODE, VERSION_LABEL, readable
from mappings.units import nearest, rate, rate_unit, stack_level, timestamp, toward_zero, whole_seconds

_FREQ_WATT = f"curve:{CurveKind.FREQ_WATT}"
#: Period fields holding a power (converted to chargingRateUnit and rounded toward zero).
_POWER_FIELDS = ("limit", "dischargeLimit", "setpoint", "setpointReactive", "v2xBaseline")


#: A TxDefaultProfile period (fields in W, load-signed) and whether its profile is Dynamic.
_Period = tuple[dict[str, Any], bool]


def profile_id(number: int, slot: int) -> int:
    """Charging profile (and schedule) id of one slot of directive `number`; within int32 for valid numbers."""
    return number * PROFILE_SLOTS + slot


@dataclass
class _Plan:
    """Accumulates what one builder carries, refuses and notes."""

    label: str
    carried: list[str] = field(default_factory=list)
    unsupported: list[UnsupportedControl] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refuse(self, name: str, reason: str) -> None:
        self.unsupported.append(UnsupportedControl(control=name, reason=reason))

    def refuse_all_carried(self, reason: str) -> None:
        for name in self.carried:
            self.refuse(name, reason)
        self.carried.clear()
        self.notes.clear()


@dataclass
class _Profile:
    """A profile to render: one period (values in W, load-signed), the controls it carries and why."""

    slot: int
    evse: int
    period: dict[str, Any]
    carried: list[str]
    notes: list[str]
    dynamic: bool = False


def build(
    directive: Directive,
    caps: StationCapabilities,
    *,
    number: int,
    now: datetime,
    evse: int | None,
) -> tuple[list[OcppCommand], list[UnsupportedControl], set[str]]:
    """Profiles for the directive's limit, setpoint, mode and connect controls, the refused ones, and the names of
    further controls a profile consumed (a freq-watt curve in W used as a LocalFrequency v2xFreqWattCurve)."""
    c = directive.controls
    label = VERSION_LABEL[caps.version]
    station_wide = not evse
    plan = _Plan(label)
    for name in ("connect", "energize"):
        if getattr(c, name) is True:
            plan.refuse(name, f"{label} has no {name} command; none is needed unless a disconnect is in force")
    profiles: list[_Profile] = []
    consumed: set[str] = set()
    if caps.version is OcppVersion.V21:
        if station_wide and c.import_limit_w is not None:
            profiles.append(_Profile(SLOT_STATION_MAX, 0, {"limit": c.import_limit_w}, ["import_limit_w"], []))
        share = 1 / len(caps.evse_ids) if station_wide else 1.0
        evse_import = None if station_wide else c.import_limit_w
        tx = _v21_period(c, caps, plan, evse_import=evse_import, share=share)
        if tx is not None:
            profiles.append(_Profile(SLOT_TX_DEFAULT, evse or 0, *tx))
            consumed.update(n for n in tx[1] if n.startswith("curve:"))
    else:
        limit = _charging_limit(c, caps, plan)
        if limit is not None:
            slot = SLOT_STATION_MAX if station_wide else SLOT_TX_DEFAULT
            profiles.append(_Profile(slot, evse or 0, {"limit": limit}, plan.carried, plan.notes))
    commands = [_render(directive, caps, p, number=number, now=now) for p in profiles]
    return commands, plan.unsupported, consumed


def _rating(caps: StationCapabilities) -> float | None:
    """Per-EVSE charge rating (DCDERCtrlr.MaxChargeRateW, else MaxW) used when a period needs a limit but none given."""
    return caps.max_charge_rate_w if caps.max_charge_rate_w is not None else caps.max_w


def _disconnects(c: Controls) -> list[str]:
    return [name for name in ("connect", "energize") if getattr(c, name) is False]


def _charging_limit(c: Controls, caps: StationCapabilities, plan: _Plan) -> float | None:
    """OCPP 2.0.1/1.6: everything that is a charging limit, as one limit in W (the lowest); the rest refused."""
    label = plan.label
    limits: list[float] = []
    if c.import_limit_w is not None:
        limits.append(c.import_limit_w)
        plan.carried.append("import_limit_w")
    if c.active_power_setpoint_w is not None:
        if c.active_power_setpoint_w >= 0:
            limits.append(c.active_power_setpoint_w)
            plan.carried.append("active_power_setpoint_w")
            plan.notes.append(f"active power setpoint applied as a charging limit ({label} has no setpoint)")
        else:
            plan.refuse(
                "active_power_setpoint_w", f"{label} has no discharge control; a discharge setpoint cannot be expressed"
            )
    for name in _disconnects(c):
        limits.append(0.0)
        plan.carried.append(name)
        plan.notes.append(f"{name}=False applied as a 0 W charging limit ({label} has no disconnect command)")
    if c.operation_mode is OperationMode.CHARGING_ONLY:
        plan.carried.append("operation_mode")
        plan.notes.append(f"charging only is the only mode of {label}")
    elif c.operation_mode is not None:
        plan.refuse(
            "operation_mode", f"{label} has no operation modes; {OCPP_MODE[c.operation_mode]} cannot be expressed"
        )
    if c.export_limit_w is not None:
        plan.refuse("export_limit_w", f"{label} has no discharge control; an export limit cannot be expressed")
    if c.reactive_power_setpoint_var is not None:
        plan.refuse(
            "reactive_power_setpoint_var", f"{label} has no reactive power control; a var setpoint cannot be expressed"
        )
    return _limit_or_rating(limits, caps, plan)


def _limit_or_rating(limits: list[float], caps: StationCapabilities, plan: _Plan) -> float | None:
    """The lowest limit asked, else the station rating; without either, what the plan carries is refused."""
    if not plan.carried:
        return None
    if limits:
        return min(limits)
    rating = _rating(caps)
    if rating is None:
        plan.refuse_all_carried(
            f"{plan.label}: a charging-only period needs a limit, and neither the directive nor the station rating "
            "(DCDERCtrlr.MaxChargeRateW/MaxW) gives one"
        )
        return None
    plan.notes.append("limit set to the station's charge rating")
    return rating


def _v21_period(
    c: Controls, caps: StationCapabilities, plan: _Plan, *, evse_import: float | None, share: float
) -> tuple[dict[str, Any], list[str], list[str], bool] | None:
    """OCPP 2.1 TxDefaultProfile period (fields in W), what it carries, notes, and whether it is Dynamic.

    Honours Q03.FR.02/Q07.FR.03 (no limit/dischargeLimit with a central setpoint), Q08.FR.01 (LocalFrequency carries
    only its curve and baseline) and K01.FR.115 (only listed modes besides ChargingOnly).
    """
    sub = _Plan(plan.label)
    period = _choose_period(c, caps, sub, evse_import=evse_import, share=share)
    plan.unsupported.extend(sub.unsupported)
    if period is None:
        return None
    fields, dynamic = period
    return fields, sub.carried, sub.notes, dynamic


def _choose_period(
    c: Controls, caps: StationCapabilities, plan: _Plan, *, evse_import: float | None, share: float
) -> _Period | None:
    setpoint = c.active_power_setpoint_w
    reactive = c.reactive_power_setpoint_var
    export = c.export_limit_w
    disconnects = _disconnects(c)
    if disconnects:
        return _disconnect_period(c, plan, disconnects, evse_import=evse_import), False
    mode = _accepted_mode(c, caps, plan)
    explicit = mode is not None
    if mode is None:
        if setpoint is not None and OperationMode.CENTRAL_SETPOINT in caps.operation_modes:
            mode = OperationMode.CENTRAL_SETPOINT
        elif any(v is not None for v in (setpoint, reactive, export, evse_import)):
            mode = OperationMode.CHARGING_ONLY
        else:
            return None
    if explicit:
        plan.carried.append("operation_mode")
    builder = _MODE_BUILDERS[mode]
    return builder(mode, c, caps, plan, evse_import, share)


def _accepted_mode(c: Controls, caps: StationCapabilities, plan: _Plan) -> OperationMode | None:
    """The directive's operation mode if this station can run it as asked, else None with the reason recorded."""
    mode = c.operation_mode
    if mode is None:
        return None
    name = OCPP_MODE[mode]
    if mode not in ALWAYS_SUPPORTED_MODES and mode not in caps.operation_modes:
        plan.refuse(
            "operation_mode",
            f"OCPP 2.1 station does not list {name} in V2XChargingCtrlr.SupportedOperationModes "
            "(K01.FR.115 would reject it)",
        )
        return None
    if mode in (OperationMode.CENTRAL_SETPOINT, OperationMode.CENTRAL_FREQUENCY) and c.active_power_setpoint_w is None:
        plan.refuse("operation_mode", f"OCPP 2.1 {name} needs an active power setpoint and the directive has none")
        return None
    if mode is OperationMode.LOCAL_FREQUENCY and (_watt_curve(c) is None or RateUnit.W not in caps.rate_units):
        plan.refuse(
            "operation_mode",
            "OCPP 2.1 LocalFrequency needs a freq-watt curve in W with at least two points (Q08.FR.02) and a station "
            "that accepts chargingRateUnit W (Q08.FR.05)",
        )
        return None
    return mode


def _watt_curve(c: Controls) -> Curve | None:
    for curve in c.curves:
        if curve.kind is CurveKind.FREQ_WATT and curve.y_unit is CurveUnit.WATT and len(curve.points) >= 2:
            return curve
    return None


def _disconnect_period(
    c: Controls, plan: _Plan, disconnects: list[str], *, evse_import: float | None
) -> dict[str, Any]:
    """Q11c: ChargingOnly at 0 W, no charge and no discharge; it satisfies import/export limits and idle."""
    plan.carried.extend(disconnects)
    plan.notes.append(
        f"{' and '.join(disconnects)}=False applied as a ChargingOnly period at 0 W (no disconnect command)"
    )
    if evse_import is not None:
        plan.carried.append("import_limit_w")
    if c.export_limit_w is not None:
        plan.carried.append("export_limit_w")
    conflict = (
        f"conflicts with {'/'.join(disconnects)}=False in the same directive; OCPP 2.1 gets the disconnect "
        "(ChargingOnly at 0 W) instead"
    )
    if c.operation_mode in (OperationMode.CHARGING_ONLY, OperationMode.IDLE):
        plan.carried.append("operation_mode")
    elif c.operation_mode is not None:
        plan.refuse("operation_mode", f"{OCPP_MODE[c.operation_mode]} {conflict}")
    for name in ("active_power_setpoint_w", "reactive_power_setpoint_var"):
        if getattr(c, name) is not None:
            plan.refuse(name, f"{readable(name)} {conflict}")
    return {"operationMode": "ChargingOnly", "limit": 0.0}


_ModeBuilder = Callable[[OperationMode, Controls, StationCapabilities, _Plan, "float | None", float], "_Period | None"]


def _charging_only(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period | None:
    asked = c.operation_mode is OperationMode.CHARGING_ONLY
    why = "the directive asks for charging only" if asked else "the station has no CentralSetpoint"
    limits: list[float] = []
    if evse_import is not None:
        limits.append(evse_import)
        plan.carried.append("import_limit_w")
    if c.active_power_setpoint_w is not None:
        if c.active_power_setpoint_w >= 0:
            limits.append(c.active_power_setpoint_w * share)
            plan.carried.append("active_power_setpoint_w")
            plan.notes.append(f"active power setpoint applied as a charging limit ({why})")
        else:
            plan.refuse("active_power_setpoint_w", f"OCPP 2.1: a discharge setpoint needs CentralSetpoint, but {why}")
    if c.reactive_power_setpoint_var is not None:
        if not asked and OperationMode.CENTRAL_SETPOINT in caps.operation_modes:
            why = "the directive has no active power setpoint"
        plan.refuse(
            "reactive_power_setpoint_var",
            f"OCPP 2.1 carries setpointReactive only beside a setpoint in a CentralSetpoint period, but {why}",
        )
    if c.export_limit_w is not None:
        if caps.operation_modes - ALWAYS_SUPPORTED_MODES:
            plan.carried.append("export_limit_w")
            plan.notes.append("export limit enforced as no discharge at all (ChargingOnly; Q8 in docs/mappings.md)")
        else:
            plan.refuse(
                "export_limit_w",
                "OCPP 2.1 station lists no bidirectional operation mode; it cannot be told an export limit",
            )
    limit = _limit_or_rating(limits, caps, plan)
    if limit is None:
        return None
    return {"operationMode": "ChargingOnly", "limit": limit}, False


def _idle(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period:
    for name, value in (("import_limit_w", evse_import), ("export_limit_w", c.export_limit_w)):
        if value is not None:
            plan.carried.append(name)
            plan.notes.append(f"{readable(name)} met by Idle (no charging or discharging)")
    for name in ("active_power_setpoint_w", "reactive_power_setpoint_var"):
        if getattr(c, name) is not None:
            plan.refuse(name, f"OCPP 2.1 Idle periods carry no setpoint; {readable(name)} conflicts with Idle")
    return {"operationMode": "Idle"}, False


def _central(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period:
    """CentralSetpoint or CentralFrequency: limits clamp the setpoint instead of being sent (Q03.FR.02, Q07.FR.03)."""
    frequency = mode is OperationMode.CENTRAL_FREQUENCY
    name = OCPP_MODE[mode]
    assert c.active_power_setpoint_w is not None  # _accepted_mode or the derivation guarantees one
    setpoint = c.active_power_setpoint_w * share
    plan.carried.append("active_power_setpoint_w")
    if c.export_limit_w is not None:
        setpoint = max(setpoint, -c.export_limit_w * share)
        plan.carried.append("export_limit_w")
        plan.notes.append(f"export limit applied by clamping the setpoint ({name} forbids dischargeLimit)")
    if evse_import is not None:
        setpoint = min(setpoint, evse_import)
        plan.carried.append("import_limit_w")
        plan.notes.append(f"import limit applied by clamping the setpoint ({name} forbids limit)")
    period: dict[str, Any] = {"operationMode": name, "setpoint": setpoint}
    if c.reactive_power_setpoint_var is not None:
        if frequency:
            plan.refuse("reactive_power_setpoint_var", "OCPP 2.1 CentralFrequency periods carry no setpointReactive")
        else:
            period["setpointReactive"] = c.reactive_power_setpoint_var * share
            plan.carried.append("reactive_power_setpoint_var")
    return period, frequency  # Q07.FR.02: CentralFrequency is a Dynamic profile


def _local_frequency(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period:
    """Q08.FR.01/02: baseline plus a freq-watt curve in W; no limit, dischargeLimit, setpoint or setpointReactive."""
    curve = _watt_curve(c)
    assert curve is not None  # _accepted_mode checked it
    plan.carried.append(_FREQ_WATT)
    baseline = 0.0
    if c.active_power_setpoint_w is not None:
        baseline = c.active_power_setpoint_w * share
        plan.carried.append("active_power_setpoint_w")
        plan.notes.append("active power setpoint sent as v2xBaseline")
    for name, value in (
        ("import_limit_w", evse_import),
        ("export_limit_w", c.export_limit_w),
        ("reactive_power_setpoint_var", c.reactive_power_setpoint_var),
    ):
        if value is not None:
            plan.refuse(
                name,
                f"OCPP 2.1 LocalFrequency periods carry no limits or setpoints (Q08.FR.01); {readable(name)} dropped",
            )
    points = [{"frequency": nearest(p.x), "power": p.y * share} for p in curve.points]
    return {"operationMode": "LocalFrequency", "v2xBaseline": baseline, "v2xFreqWattCurve": points}, False


def _external_setpoint(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period:
    """Q05.FR.01: the external system sets the setpoint; the CSMS may bound it with limit and dischargeLimit."""
    period: dict[str, Any] = {"operationMode": "ExternalSetpoint"}
    if evse_import is not None:
        period["limit"] = evse_import
        plan.carried.append("import_limit_w")
    if c.export_limit_w is not None:
        period["dischargeLimit"] = -c.export_limit_w * share
        plan.carried.append("export_limit_w")
    for name in ("active_power_setpoint_w", "reactive_power_setpoint_var"):
        if getattr(c, name) is not None:
            plan.refuse(name, f"in OCPP 2.1 ExternalSetpoint the external system sets {readable(name)} (Q05.FR.01)")
    return period, False


def _external_only(
    mode: OperationMode, c: Controls, caps: StationCapabilities, plan: _Plan, evse_import: float | None, share: float
) -> _Period:
    """ExternalLimits (Q05.FR.02) and LocalLoadBalancing (Q09): the values come from outside; the period has none."""
    name = OCPP_MODE[mode]
    for control, value in (
        ("import_limit_w", evse_import),
        ("export_limit_w", c.export_limit_w),
        ("active_power_setpoint_w", c.active_power_setpoint_w),
        ("reactive_power_setpoint_var", c.reactive_power_setpoint_var),
    ):
        if value is not None:
            plan.refuse(
                control,
                f"OCPP 2.1 {name} takes its limits and setpoints from outside OCPP; {readable(control)} has no place",
            )
    return {"operationMode": name}, False


_MODE_BUILDERS: dict[OperationMode, _ModeBuilder] = {
    OperationMode.CHARGING_ONLY: _charging_only,
    OperationMode.IDLE: _idle,
    OperationMode.CENTRAL_SETPOINT: _central,
    OperationMode.CENTRAL_FREQUENCY: _central,
    OperationMode.LOCAL_FREQUENCY: _local_frequency,
    OperationMode.EXTERNAL_SETPOINT: _external_setpoint,
    OperationMode.EXTERNAL_LIMITS: _external_only,
    OperationMode.LOCAL_LOAD_BALANCING: _external_only,
}


def _render(
    directive: Directive, caps: StationCapabilities, profile: _Profile, *, number: int, now: datetime
) -> OcppCommand:
    unit = RateUnit.W if "v2xFreqWattCurve" in profile.period else rate_unit(caps)  # Q08.FR.05
    places = DECIMALS_16 if caps.version is OcppVersion.V16 else None
    period: dict[str, Any] = {"startPeriod": 0}
    for key, value in profile.period.items():
        if key in _POWER_FIELDS:
            watts = rate(value, unit, caps)
            period[key] = toward_zero(watts) if places is None else toward_zero(watts, places)
        elif key == "v2xFreqWattCurve":
            period[key] = [{"frequency": p["frequency"], "power": toward_zero(p["power"])} for p in value]
        else:
            period[key] = value
    if unit is RateUnit.A:
        period["numberPhases"] = caps.phases
    ident = profile_id(number, profile.slot)
    start = directive.start or now
    schedule: dict[str, Any] = {"id": ident, "chargingRateUnit": unit.value, "chargingSchedulePeriod": [period]}
    if not profile.dynamic:
        schedule["startSchedule"] = timestamp(start)  # K01.FR.40: Absolute needs startSchedule
    if directive.duration_s is not None:
        schedule["duration"] = whole_seconds(directive.duration_s)
    if (
        profile.slot == SLOT_TX_DEFAULT
        and caps.version is OcppVersion.V21
        and caps.supports_randomized_delay
        and directive.randomize_start_s > 0
    ):
        schedule["randomizedDelay"] = directive.randomize_start_s
    max_purpose = "ChargePointMaxProfile" if caps.version is OcppVersion.V16 else "ChargingStationMaxProfile"
    purpose = max_purpose if profile.slot == SLOT_STATION_MAX else "TxDefaultProfile"
    stack = stack_level(directive.priority, directive.is_default, caps.max_stack_level)
    note = "; ".join(profile.notes) or None
    controls = tuple(profile.carried)
    if caps.version is OcppVersion.V16:
        del schedule["id"]
        payload = {
            "connectorId": profile.evse,
            "csChargingProfiles": {
                "chargingProfileId": ident,
                "stackLevel": stack,
                "chargingProfilePurpose": purpose,
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            },
        }
        return OcppCommand("SetChargingProfile", payload, controls, note)
    charging_profile: dict[str, Any] = {
        "id": ident,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Dynamic" if profile.dynamic else "Absolute",
        "chargingSchedule": [schedule],
    }
    if not directive.is_default and (profile.dynamic or directive.duration_s is not None):
        # A time-bounded profile says so in its validity too: K01.FR.06 forbids two profiles of one stack level,
        # purpose and EVSE with overlapping validity, so consecutive intervals of an event need disjoint windows.
        charging_profile["validFrom"] = timestamp(start)
        end = directive.end(now)
        if end is not None:
            charging_profile["validTo"] = timestamp(end)
    return OcppCommand(
        "SetChargingProfile", {"evseId": profile.evse, "chargingProfile": charging_profile}, controls, note
    )
