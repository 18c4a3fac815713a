"""Pure translation: SCADA writes and operates -> validation (AddCause / access error) and Directives; fleet
readings -> measurement values. No sockets, no clock: time is an argument."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from gateway.interfaces import Signal
from gateway.model import (
    Controls,
    Curve,
    CurveKind,
    CurvePoint,
    CurveUnit,
    Directive,
    FixedPowerFactor,
    Gradients,
    Source,
    SourceProtocol,
)
from protocols.iec61850.clib import AccessError, AddCause
from protocols.iec61850.datamodel import Cdc, DataObject, Function, find, function_objects

Value = float | bool
#: Current settings and control values by "LN.DO", as SCADA last set them.
Settings = Mapping[str, Value]
CURVE_FUNCTIONS = frozenset({Function.VOLT_VAR, Function.FREQ_WATT, Function.FIXED_PF})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a write or operate is refused: the MMS answer for each service and the audit code."""

    reason: str
    add_cause: AddCause = AddCause.INCONSISTENT_PARAMETERS
    access_error: AccessError = AccessError.OBJECT_VALUE_INVALID

    @property
    def code(self) -> str:
        return f"iec61850:{self.add_cause.name.lower()}"


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """How SCADA commands become directives: a priority (lower wins), and how long a command holds when SCADA does
    not renew or change it (None: until changed)."""

    ied_name: str = "DERGW"
    priority: int = 1
    hold_s: float | None = None


def check_value(ref: str, value: Value) -> Refusal | None:
    """Range and type of one value for the data object `ref` ("LN.DO")."""
    _, do = find(ref)
    if do.function is None:
        return Refusal(f"{ref} is read-only", AddCause.NOT_SUPPORTED, AccessError.OBJECT_ACCESS_DENIED)
    if do.cdc in (Cdc.SPC, Cdc.DPC, Cdc.SPG):
        if not isinstance(value, bool):
            return Refusal(f"{ref} takes a boolean", access_error=AccessError.TYPE_INCONSISTENT)
        return None
    if isinstance(value, bool) or do.range is None:
        return Refusal(f"{ref} takes a number", access_error=AccessError.TYPE_INCONSISTENT)
    if value != value or not do.range.contains(value):
        return Refusal(f"{ref}={value:g} is outside {do.range}")
    return None


def enabled(fn: Function, settings: Settings) -> bool:
    """Curve-like functions apply only while their ModEna is on; single-value functions whenever written."""
    if fn not in CURVE_FUNCTIONS:
        return True
    ln = next(ln for ln, do in function_objects(fn) if do.name == "ModEna")
    return bool(settings.get(f"{ln.name}.ModEna", False))


def directive_id(policy: HoldPolicy, fn: Function) -> str:
    """One id per function, so a new SCADA value changes the directive in place."""
    return f"iec61850.{policy.ied_name}.{fn.value}"


def controls_for(fn: Function, settings: Settings) -> Controls:
    """The canonical controls a function's current settings ask for; ValueError/ValidationError if inconsistent."""
    values = {do.name: settings.get(f"{ln.name}.{do.name}") for ln, do in function_objects(fn)}

    def num(name: str) -> float:
        v = values[name]
        return 0.0 if v is None else float(v)

    match fn:
        case Function.ACTIVE_POWER_LIMIT:
            return Controls(import_limit_w=num("WLimSpt"))
        case Function.ACTIVE_POWER_SETPOINT:
            return Controls(active_power_setpoint_w=num("WSpt"))
        case Function.IMPORT_LIMIT:
            return Controls(import_limit_w=num("ImpLimW"))
        case Function.EXPORT_LIMIT:
            return Controls(export_limit_w=num("ExpLimW"))
        case Function.CONNECT:
            return Controls(connect=bool(values["Pos"]))
        case Function.VOLT_VAR:
            return Controls(curves=[_curve(CurveKind.VOLT_VAR, CurveUnit.VOLT_PCT, CurveUnit.PCT_MAX_VAR,
                                           num, "VPt", "VArPt")])  # fmt: skip
        case Function.FREQ_WATT:
            return Controls(curves=[_curve(CurveKind.FREQ_WATT, CurveUnit.HERTZ, CurveUnit.PCT_MAX_W,
                                           num, "HzPt", "WPt")])  # fmt: skip
        case Function.FIXED_PF:
            return Controls(fixed_pf_absorb=FixedPowerFactor(displacement=num("PFSpt"),
                                                             absorbing_vars=bool(values["PFAbsVAr"])))  # fmt: skip
        case Function.RAMP:
            return Controls(gradients=Gradients(ramp_pct_per_s=num("RmpRte"), soft_start_pct_per_s=num("SoftRmpRte")))


def _curve(kind: CurveKind, xu: CurveUnit, yu: CurveUnit, num: Callable[[str], float], xn: str, yn: str) -> Curve:
    points = [CurvePoint(x=num(f"{xn}{i}"), y=num(f"{yn}{i}")) for i in range(1, 5)]
    return Curve(kind=kind, x_unit=xu, y_unit=yu, points=points)


def directive_for(
    fn: Function, settings: Settings, policy: HoldPolicy, now: datetime, peer: str
) -> Directive | Refusal:
    """The directive a function's settings make, or why they cannot make one (AddCause Inconsistent-parameters)."""
    try:
        controls = controls_for(fn, settings)
    except (ValidationError, ValueError) as exc:
        return Refusal(f"{fn.value}: {_first_error(exc)}")
    return Directive(
        id=directive_id(policy, fn),
        source=Source(protocol=SourceProtocol.IEC61850, server=peer, program=fn.value),
        priority=policy.priority,
        start=now,
        duration_s=policy.hold_s,
        controls=controls,
    )


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return str(err["msg"])
    return str(exc)


def signal(ref: str, service: str, value: Value, peer: str, now: datetime, seq: int) -> Signal:
    """What the audit keeps of one MMS write or operate: a digest of its canonical text, never more."""
    raw = f"{service} {ref} {value!r} from {peer}".encode()
    return Signal(
        protocol=SourceProtocol.IEC61850,
        source=peer,
        digest=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        received_at=now,
        signal_id=f"{ref}#{seq}",
    )


# -- measurements -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StationReading:
    """One station's latest meter values in canonical units and signs (+ import, + absorbing)."""

    connected: bool
    watts: float | None = None
    vars: float | None = None
    hz: float | None = None
    phase_w: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class Measurements:
    tot_w: float
    tot_var: float
    hz: float | None
    phase_w: tuple[float, float, float] | None
    connected: int


def measurements(readings: Mapping[str, StationReading]) -> Measurements:
    """Fleet totals: sums of what connected stations report; frequency is their mean; phases only from stations
    that report phases (None when none does)."""
    live = [r for r in readings.values() if r.connected]
    hzs = [r.hz for r in live if r.hz is not None]
    phased = [r.phase_w for r in live if r.phase_w is not None]
    phase_w = tuple(sum(p[i] for p in phased) for i in range(3)) if phased else None
    return Measurements(
        tot_w=sum(r.watts for r in live if r.watts is not None),
        tot_var=sum(r.vars for r in live if r.vars is not None),
        hz=sum(hzs) / len(hzs) if hzs else None,
        phase_w=(phase_w[0], phase_w[1], phase_w[2]) if phase_w else None,
        connected=len(live),
    )


def value_attribute(do: DataObject) -> str:
    """The attribute that holds a data object's value, as libiec61850's CDC constructors name it."""
    return {
        Cdc.ASG: "setMag.f",
        Cdc.SPG: "setVal",
        Cdc.APC: "mxVal.f",
        Cdc.MV: "mag.f",
    }.get(do.cdc, "stVal")
