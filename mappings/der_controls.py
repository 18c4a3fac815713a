"""OCPP 2.1 SetDERControl builders: one request per DER setting or curve (R04.FR.16/17).

Each request carries exactly one controlType and only the field that matches it. Settings and curves that no
SetDERControl can carry for this station are returned as unsupported, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.model import (
    Curve,
    CurveKind,
    Directive,
    EnterService,
    FixedPowerFactor,
    FixedVar,
    FreqDroop,
    Gradients,
    OcppVersion,
    StationCapabilities,
    UnsupportedControl,
    VarReference,
)
from mappings.commands import OcppCommand
from mappings.decisions import (
    DEFAULT_ONLY_TYPES,
    DER_Y_UNIT,
    GENERATOR_SIGNED_UNITS,
    GRADIENT_FULL_RAMP_PCT,
    GRADIENT_MAX_S,
    NO_OCPP_TYPE,
    SWAPPED_AXES,
    UNTIL_CANCELLED_DER_DURATION_S,
)
from mappings.naming import CURVE_TYPE, SETTING_TYPE, VERSION_LABEL, der_setting_field, readable
from mappings.units import nearest, timestamp, toward_zero

_VAR_UNIT = {
    VarReference.PCT_MAX_VAR: "PctMaxVar",
    VarReference.PCT_VAR_AVAIL: "PctVarAvail",
    VarReference.PCT_MAX_W: "PctMaxW",
}


def control_id(number: int, control_type: str) -> str:
    """controlId of one DER control of directive `number`: unique per directive and type, at most 34 characters."""
    return f"g{number}-{control_type}"


def der_control_names(directive: Directive) -> list[str]:
    """The directive's controls that belong to SetDERControl (settings and curves), in `present()` order."""
    return [name for name in directive.controls.present() if name in SETTING_TYPE or name.startswith("curve:")]


def build(
    directive: Directive,
    caps: StationCapabilities,
    *,
    names: list[str],
    number: int,
    now: datetime,
    evse: int | None,
) -> tuple[list[OcppCommand], list[UnsupportedControl]]:
    """SetDERControl requests for `names` (DER settings and curves of `directive`), or the reason each cannot go."""
    commands: list[OcppCommand] = []
    unsupported: list[UnsupportedControl] = []
    for name in names:
        control_type, value = _control(directive, name)
        reason = _unsupported_reason(directive, caps, name, control_type, value, evse)
        if reason is not None:
            unsupported.append(UnsupportedControl(control=name, reason=reason))
            continue
        assert control_type is not None  # _unsupported_reason returns a reason when there is no type
        body, note = _setting(control_type, value)
        setting: dict[str, Any] = {"priority": directive.priority, **body}
        if not directive.is_default:  # R04.FR.12: defaults carry no startTime/duration
            setting["startTime"] = timestamp(directive.start or now)
            setting["duration"] = nearest(directive.duration_s or UNTIL_CANCELLED_DER_DURATION_S)
        payload = {
            "isDefault": directive.is_default,
            "controlId": control_id(number, control_type),
            "controlType": control_type,
            der_setting_field(control_type): setting,
        }
        commands.append(OcppCommand("SetDERControl", payload, (name,), note))
    return commands, unsupported


def _control(directive: Directive, name: str) -> tuple[str | None, object]:
    if name.startswith("curve:"):
        curve = next(c for c in directive.controls.curves if f"curve:{c.kind}" == name)
        return CURVE_TYPE.get(curve.kind), curve
    return SETTING_TYPE[name], getattr(directive.controls, name)


def _unsupported_reason(
    directive: Directive,
    caps: StationCapabilities,
    name: str,
    control_type: str | None,
    value: object,
    evse: int | None,
) -> str | None:
    what = readable(name)
    if caps.version is not OcppVersion.V21:
        return f"{VERSION_LABEL[caps.version]} has no DER control messages; {what} cannot be expressed"
    if not caps.der_modes:
        return f"OCPP 2.1 station reports no DCDERCtrlr.ModesSupported, so it has no DER control; {what} cannot be sent"
    if isinstance(value, Curve) and value.kind in NO_OCPP_TYPE:
        return f"{NO_OCPP_TYPE[value.kind]}; {what} cannot be expressed"
    assert control_type is not None  # every kind without a type is in NO_OCPP_TYPE
    if evse:
        return f"OCPP 2.1 SetDERControl has no evseId; {what} cannot be applied to EVSE {evse} alone"
    if control_type not in caps.der_modes:
        return (
            f"OCPP 2.1 station does not list {control_type} in DCDERCtrlr.ModesSupported "
            "(it would answer NotSupported, R04.FR.01)"
        )
    if control_type in DEFAULT_ONLY_TYPES and not directive.is_default:
        return f"OCPP 2.1 accepts {control_type} only as a default control (R04.FR.14); this directive is scheduled"
    if isinstance(value, Curve) and value.y_unit not in DER_Y_UNIT:
        return (
            f"OCPP 2.1 DERUnitEnumType has no absolute W; a {what} in W reaches a station only as a LocalFrequency "
            "v2xFreqWattCurve (operation mode local_frequency)"
        )
    if isinstance(value, EnterService) and not value.permitted:
        return "OCPP 2.1 EnterServiceType has no permit flag; use connect=False to keep the station out of service"
    return None


def _setting(control_type: str, value: object) -> tuple[dict[str, Any], str | None]:
    """The type-specific body of the one field R04.FR.16 allows, and a note on anything it had to leave out."""
    if isinstance(value, Curve):
        return _curve(value)
    if isinstance(value, FixedPowerFactor):
        return {"displacement": nearest(value.displacement), "excitation": value.absorbing_vars}, None
    if isinstance(value, FixedVar):
        # Q10: OCPP FixedVar is generator-signed, the model load-signed.
        return {"setpoint": nearest(-value.percent), "unit": _VAR_UNIT[value.reference]}, None
    if isinstance(value, FreqDroop):
        return {
            "overFreq": nearest(value.over_freq_hz),
            "underFreq": nearest(value.under_freq_hz),
            "overDroop": nearest(value.over_droop),
            "underDroop": nearest(value.under_droop),
            "responseTime": nearest(value.response_time_s),
        }, None
    if isinstance(value, Gradients):
        return {
            "gradient": _ramp_seconds(value.ramp_pct_per_s),
            "softGradient": _ramp_seconds(value.soft_start_pct_per_s),
        }, None
    if isinstance(value, EnterService):
        body: dict[str, Any] = {
            "highVoltage": nearest(value.high_voltage_pct),
            "lowVoltage": nearest(value.low_voltage_pct),
            "highFreq": nearest(value.high_freq_hz),
            "lowFreq": nearest(value.low_freq_hz),
        }
        for key, seconds in (("delay", value.delay_s), ("randomDelay", value.random_delay_s)):
            if seconds is not None:
                body[key] = nearest(seconds)
        if value.ramp_time_s is not None:
            body["rampRate"] = nearest(value.ramp_time_s)
        return body, None
    assert control_type == "LimitMaxDischarge", control_type
    assert isinstance(value, float)
    return {"pctMaxDischargePower": toward_zero(value)}, None  # max_discharge_pct (Q7)


def _ramp_seconds(pct_per_s: float) -> float:
    """Q5: seconds a full ramp takes at `pct_per_s`; 0 %/s (no limit in 2030.5) is 0 (not applicable in OCPP)."""
    return nearest(min(GRADIENT_FULL_RAMP_PCT / pct_per_s, GRADIENT_MAX_S)) if pct_per_s else 0.0


def _curve(curve: Curve) -> tuple[dict[str, Any], str | None]:
    x_sign = -1.0 if curve.x_unit in GENERATOR_SIGNED_UNITS else 1.0  # Q10
    y_sign = -1.0 if curve.y_unit in GENERATOR_SIGNED_UNITS else 1.0
    points = [(x_sign * p.x, y_sign * p.y) for p in curve.points]
    if x_sign < 0:
        points.reverse()  # keep x increasing
    y_unit = curve.y_unit
    if curve.kind in SWAPPED_AXES:  # Q1
        points = [(y, x) for x, y in points]
        y_unit = curve.x_unit
    body: dict[str, Any] = {
        "yUnit": DER_Y_UNIT[y_unit],
        "curveData": [{"x": nearest(x), "y": nearest(y)} for x, y in points],
    }
    if curve.response_time_s is not None:
        body["responseTime"] = nearest(curve.response_time_s)
    params: dict[str, Any] = {}
    if curve.v_ref_pct is not None:
        params["vRef"] = nearest(curve.v_ref_pct)
    if curve.autonomous_v_ref is not None:
        params["autonomousVRefEnable"] = curve.autonomous_v_ref
    if curve.autonomous_v_ref_time_s is not None:
        params["autonomousVRefTimeConstant"] = nearest(curve.autonomous_v_ref_time_s)
    if params and curve.kind is not CurveKind.VOLT_VAR:
        return body, "autonomous vRef settings left out: OCPP 2.1 reactivePowerParams apply to VoltVar only"
    if params:
        body["reactivePowerParams"] = params
    return body, None
