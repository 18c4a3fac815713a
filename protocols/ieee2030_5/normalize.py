"""Pure translation of 2030.5 resources into canonical directives: wire encodings to SI units and model signs.

No I/O and no clock reads: `now` and the server clock offset are arguments. Decisions on what 2030.5 leaves open
are made here once and listed in docs/ieee2030_5.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.model import (
    Controls,
    Curve,
    CurveKind,
    CurvePoint,
    CurveUnit,
    Directive,
    EnterService,
    FixedPowerFactor,
    FixedVar,
    FreqDroop,
    Gradients,
    Source,
    SourceProtocol,
    VarReference,
)
from protocols.ieee2030_5 import wire
from protocols.ieee2030_5.config import EndDeviceBinding
from protocols.ieee2030_5.errors import InputError
from protocols.ieee2030_5.wire import CurveType, EventStatusCode, ResponseStatus, to_si

M = TypeVar("M", bound=BaseModel)


class NormalizationError(InputError):
    """A control the gateway cannot take; `status` is the 2030.5 Response code that tells the server why."""

    def __init__(self, code: str, message: str, status: ResponseStatus) -> None:
        super().__init__(code, message)
        self.status = status


_CURVE_KIND: dict[CurveType, CurveKind] = {
    CurveType.FREQ_WATT: CurveKind.FREQ_WATT,
    CurveType.HFRT_MAY_TRIP: CurveKind.HF_MAY_TRIP,
    CurveType.HFRT_MUST_TRIP: CurveKind.HF_MUST_TRIP,
    CurveType.HVRT_MAY_TRIP: CurveKind.HV_MAY_TRIP,
    CurveType.HVRT_MOMENTARY_CESSATION: CurveKind.HV_MOM_CESS,
    CurveType.HVRT_MUST_TRIP: CurveKind.HV_MUST_TRIP,
    CurveType.LFRT_MAY_TRIP: CurveKind.LF_MAY_TRIP,
    CurveType.LFRT_MUST_TRIP: CurveKind.LF_MUST_TRIP,
    CurveType.LVRT_MAY_TRIP: CurveKind.LV_MAY_TRIP,
    CurveType.LVRT_MOMENTARY_CESSATION: CurveKind.LV_MOM_CESS,
    CurveType.LVRT_MUST_TRIP: CurveKind.LV_MUST_TRIP,
    CurveType.VOLT_VAR: CurveKind.VOLT_VAR,
    CurveType.VOLT_WATT: CurveKind.VOLT_WATT,
    CurveType.WATT_PF: CurveKind.WATT_PF,
    CurveType.WATT_VAR: CurveKind.WATT_VAR,
}
_X_UNIT: dict[CurveKind, CurveUnit] = {
    CurveKind.VOLT_VAR: CurveUnit.VOLT_PCT,
    CurveKind.VOLT_WATT: CurveUnit.VOLT_PCT,
    CurveKind.FREQ_WATT: CurveUnit.HERTZ,
    CurveKind.WATT_PF: CurveUnit.PCT_MAX_W,
    CurveKind.WATT_VAR: CurveUnit.PCT_MAX_W,
}
_TRIP_HZ = {CurveKind.HF_MAY_TRIP, CurveKind.HF_MUST_TRIP, CurveKind.LF_MAY_TRIP, CurveKind.LF_MUST_TRIP}
#: DERUnitRefType -> curve y unit (percent references); 0 (N/A) and 4 (%setEffectiveV) are decided per kind.
_Y_REF: dict[int, CurveUnit] = {
    1: CurveUnit.PCT_MAX_W,
    2: CurveUnit.PCT_MAX_VAR,
    3: CurveUnit.PCT_VAR_AVAIL,
    4: CurveUnit.VOLT_PCT,
    7: CurveUnit.PCT_W_AVAIL,
}
_VAR_REF: dict[int, VarReference] = {
    1: VarReference.PCT_MAX_W,
    2: VarReference.PCT_MAX_VAR,
    3: VarReference.PCT_VAR_AVAIL,
}


class EventAction(StrEnum):
    SUBMIT = "submit"
    CANCEL = "cancel"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Normalized:
    directive: Directive
    #: Elements the canonical model cannot carry (rampTms ...): logged, never silently lost.
    unexpressed: tuple[str, ...] = ()


def directive_id(binding: EndDeviceBinding, mrid: str) -> str:
    """Stable id: the same control seen again (changed) keeps its id; each EndDevice gets its own directive."""
    return f"sep2:{binding.name}:{mrid.lower()}"


def server_time(ts: int, offset_s: float) -> datetime:
    """A server TimeType (Unix seconds on the server's clock) on our clock: offset = server - local."""
    return datetime.fromtimestamp(ts, UTC) - timedelta(seconds=offset_s)


def event_action(control: wire.DERControl) -> tuple[EventAction, int]:
    """What an EventStatus asks for, and the randomization (s) of a cancellation."""
    status = control.event_status.current_status
    if status in (EventStatusCode.SCHEDULED, EventStatusCode.ACTIVE):
        return EventAction.SUBMIT, 0
    if status == EventStatusCode.CANCELLED:
        return EventAction.CANCEL, 0
    if status == EventStatusCode.CANCELLED_RANDOMIZED:
        return EventAction.CANCEL, control.randomize_duration or control.randomize_start or 0
    if status == EventStatusCode.SUPERSEDED:
        return EventAction.SUPERSEDED, 0
    raise NormalizationError(
        "event.status",
        f"DERControl {control.mrid}: unknown EventStatus currentStatus {status}",
        ResponseStatus.REJECTED_INVALID,
    )


def curve(link: str, c: wire.DERCurve) -> Curve:
    """A DERCurve: x = xvalue x 10^xMultiplier, y = yvalue x 10^yMultiplier, in the units of the curve's axes."""
    try:
        ctype = CurveType(c.curve_type)
    except ValueError:
        raise NormalizationError(
            "curve.type", f"DERCurve {c.mrid}: unknown curveType {c.curve_type}", ResponseStatus.REJECTED_INVALID
        ) from None
    expected = wire.CURVE_LINKS.get(link) or wire.CURVE_LINKS_LATE.get(link)
    if expected != ctype:
        raise NormalizationError(
            "curve.type",
            f"{link} points to DERCurve {c.mrid} of curveType {ctype.value} ({ctype.name}), not {expected}",
            ResponseStatus.REJECTED_INVALID,
        )
    kind = _CURVE_KIND[ctype]
    if kind in _X_UNIT:
        x_unit = _X_UNIT[kind]
        y_unit = CurveUnit.POWER_FACTOR if kind is CurveKind.WATT_PF else _Y_REF.get(c.y_ref_type)
        if y_unit is None:
            raise NormalizationError(
                "curve.units",
                f"DERCurve {c.mrid}: yRefType {c.y_ref_type} is not a reference the gateway can express",
                ResponseStatus.REJECTED_NOT_APPLICABLE,
            )
    else:
        x_unit = CurveUnit.SECONDS
        y_unit = CurveUnit.HERTZ if kind in _TRIP_HZ else CurveUnit.VOLT_PCT
    points = []
    for p in c.points:
        y = to_si(p.y, c.y_multiplier)
        if kind is CurveKind.WATT_PF:
            # Model sign: + absorbing vars; 2030.5 says so with `excitation` true.
            y = y if p.excitation else -y
        points.append(CurvePoint(x=to_si(p.x, c.x_multiplier), y=y))
    return _model(
        Curve,
        f"DERCurve {c.mrid}",
        kind=kind,
        x_unit=x_unit,
        y_unit=y_unit,
        points=points,
        response_time_s=None if c.open_loop_tms is None else c.open_loop_tms / 100,
        v_ref_pct=None if c.v_ref is None or kind is not CurveKind.VOLT_VAR else c.v_ref / 100,
        autonomous_v_ref=c.autonomous_v_ref_enable if kind is CurveKind.VOLT_VAR else None,
        autonomous_v_ref_time_s=None
        if c.autonomous_v_ref_time_constant is None or kind is not CurveKind.VOLT_VAR
        else c.autonomous_v_ref_time_constant / 100,
    )


def _model(cls: type[M], what: str, **fields: Any) -> M:
    try:
        return cls(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or cls.__name__}: {e['msg']}" for e in exc.errors())
        raise NormalizationError("value.range", f"{what}: {problems}", ResponseStatus.REJECTED_INVALID) from None


def _min(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _limit(name: str, power: wire.Power | None) -> float | None:
    if power is None:
        return None
    watts = power.si
    if watts < 0:
        raise NormalizationError(
            "value.range", f"{name}: a limit of {watts} W is negative", ResponseStatus.REJECTED_INVALID
        )
    return watts


def control_fields(
    base: wire.ControlBase,
    curves: Mapping[str, wire.DERCurve],
    binding: EndDeviceBinding,
    *,
    nominal_hz: float,
    what: str,
) -> tuple[dict[str, Any], list[str]]:
    """DERControlBase -> canonical control fields, and the names of elements the model cannot carry."""
    fields: dict[str, Any] = {}
    unexpressed: list[str] = []
    # Connection-point (Imp/Exp) and device (Load/Gen) limits both cap the same stations: the tighter one wins.
    fields["import_limit_w"] = _min(_limit("opModImpLimW", base.imp_lim_w), _limit("opModLoadLimW", base.load_lim_w))
    fields["export_limit_w"] = _min(_limit("opModExpLimW", base.exp_lim_w), _limit("opModGenLimW", base.gen_lim_w))
    if base.max_lim_w is not None:
        fields["max_discharge_pct"] = base.max_lim_w / 100
    if base.target_w is not None:
        # "Target output power": output is export, so the model's import-positive sign flips it.
        fields["active_power_setpoint_w"] = -base.target_w.si
    elif base.fixed_w is not None:
        if binding.ratings is None:
            raise NormalizationError(
                "value.unrated",
                f"{what}: opModFixedW is a percent of rating and {binding.name} has no ratings configured",
                ResponseStatus.REJECTED_NOT_APPLICABLE,
            )
        pct = base.fixed_w / 10000
        # Negative = charge at % of setMaxChargeRateW (import, +); positive = discharge at % of setMaxW (-).
        fields["active_power_setpoint_w"] = (
            -pct * binding.ratings.max_charge_w if pct < 0 else -pct * binding.ratings.max_w
        )
    if base.target_var is not None:
        # 2030.5 follows the generator convention (+ = injecting vars); the model's + is absorbing.
        fields["reactive_power_setpoint_var"] = -base.target_var.si
    for name, pf in (("fixed_pf_absorb", base.fixed_pf_absorb), ("fixed_pf_inject", base.fixed_pf_inject)):
        if pf is not None:
            fields[name] = _model(
                FixedPowerFactor,
                f"{what} {name}",
                displacement=to_si(pf.displacement, pf.multiplier),
                absorbing_vars=pf.excitation,
            )
    if base.fixed_var is not None:
        ref = _VAR_REF.get(base.fixed_var.ref_type)
        if ref is None:
            raise NormalizationError(
                "value.reference",
                f"{what}: opModFixedVar refType {base.fixed_var.ref_type} is not %setMaxW, %setMaxVar or %statVarAvail",
                ResponseStatus.REJECTED_NOT_APPLICABLE,
            )
        fields["fixed_var"] = _model(
            FixedVar, f"{what} opModFixedVar", percent=-base.fixed_var.value / 100, reference=ref
        )
    if base.freq_droop is not None:
        d = base.freq_droop
        fields["freq_droop"] = _model(
            FreqDroop,
            f"{what} opModFreqDroop",
            over_freq_hz=nominal_hz + d.db_of / 1000,
            under_freq_hz=nominal_hz - d.db_uf / 1000,
            over_droop=d.k_of / 1000,
            under_droop=d.k_uf / 1000,
            response_time_s=d.open_loop_tms / 100,
        )
    if base.op_mod_connect is not None:
        fields["connect"] = base.op_mod_connect
    if base.op_mod_energize is not None:
        fields["energize"] = base.op_mod_energize
    model_curves = []
    for link, href in base.curve_links:
        found = curves.get(href)
        if found is None:
            raise NormalizationError(
                "curve.missing",
                f"{what}: {link} points to {href}, which the server did not list",
                ResponseStatus.REJECTED_INVALID,
            )
        model_curves.append(curve(link, found))
    fields["curves"] = model_curves
    if base.ramp_tms is not None:
        unexpressed.append(f"rampTms={base.ramp_tms / 100:g}s")
    return {k: v for k, v in fields.items() if v is not None}, unexpressed


def control_directive(
    control: wire.DERControl,
    program: wire.DERProgram,
    binding: EndDeviceBinding,
    curves: Mapping[str, wire.DERCurve],
    *,
    server: str,
    offset_s: float,
    now: datetime,
    nominal_hz: float = 50.0,
) -> Normalized:
    """A DERControl (scheduled or active) as a directive: primacy becomes priority, times move to our clock."""
    what = f"DERControl {control.mrid}"
    if control.duration <= 0:
        raise NormalizationError("value.range", f"{what}: interval duration is 0", ResponseStatus.REJECTED_INVALID)
    start = server_time(control.start, offset_s)
    if start + timedelta(seconds=control.duration) <= now:
        raise NormalizationError(
            "event.expired",
            f"{what}: ended at {start + timedelta(seconds=control.duration):%Y-%m-%dT%H:%M:%SZ}",
            ResponseStatus.REJECTED_EXPIRED,
        )
    fields, unexpressed = control_fields(control.base, curves, binding, nominal_hz=nominal_hz, what=what)
    controls = _model(Controls, what, **fields)
    directive = _model(
        Directive,
        what,
        id=directive_id(binding, control.mrid),
        source=Source(protocol=SourceProtocol.IEEE2030_5, server=server, program=program.mrid, signal_id=control.mrid),
        priority=program.primacy,
        start=start,
        duration_s=control.duration,
        randomize_start_s=control.randomize_start or 0,
        randomize_duration_s=control.randomize_duration or 0,
        target=binding.target,
        controls=controls,
    )
    return Normalized(directive, tuple(unexpressed))


def default_directive(
    default: wire.DefaultDERControl,
    program: wire.DERProgram,
    binding: EndDeviceBinding,
    curves: Mapping[str, wire.DERCurve],
    *,
    server: str,
    nominal_hz: float = 50.0,
) -> Normalized:
    """A DefaultDERControl: what applies when no event does, with gradients and enter-service settings."""
    what = f"DefaultDERControl {default.mrid}"
    fields, unexpressed = control_fields(default.base, curves, binding, nominal_hz=nominal_hz, what=what)
    if default.set_grad_w is not None or default.set_soft_grad_w is not None:
        grad = default.set_grad_w if default.set_grad_w is not None else 0
        soft = default.set_soft_grad_w if default.set_soft_grad_w is not None else grad
        fields["gradients"] = _model(
            Gradients, f"{what} setGradW/setSoftGradW", ramp_pct_per_s=grad / 100, soft_start_pct_per_s=soft / 100
        )
    thresholds = (default.set_es_high_volt, default.set_es_low_volt, default.set_es_high_freq, default.set_es_low_freq)
    if any(t is not None for t in thresholds):
        if any(t is None for t in thresholds):
            raise NormalizationError(
                "value.missing",
                f"{what}: enter-service needs all of setESHighVolt, setESLowVolt, setESHighFreq and setESLowFreq",
                ResponseStatus.REJECTED_INVALID,
            )
        hv, lv, hf, lf = (t or 0 for t in thresholds)
        fields["enter_service"] = _model(
            EnterService,
            f"{what} enter service",
            high_voltage_pct=hv / 100,
            low_voltage_pct=lv / 100,
            high_freq_hz=hf / 100,
            low_freq_hz=lf / 100,
            delay_s=None if default.set_es_delay is None else default.set_es_delay / 100,
            random_delay_s=None if default.set_es_random_delay is None else default.set_es_random_delay / 100,
            ramp_time_s=None if default.set_es_ramp_tms is None else default.set_es_ramp_tms / 100,
        )
    controls = _model(Controls, what, **fields)
    directive = _model(
        Directive,
        what,
        id=directive_id(binding, default.mrid),
        source=Source(protocol=SourceProtocol.IEEE2030_5, server=server, program=program.mrid, signal_id=default.mrid),
        priority=program.primacy,
        target=binding.target,
        is_default=True,
        controls=controls,
    )
    return Normalized(directive, tuple(unexpressed))
