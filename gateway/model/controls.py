"""DER controls of the canonical model: one field per kind of control a utility can ask for.

Each control is independent of the others (a volt-var curve and an export limit can both be in force); the
mapping layer decides how each one reaches a station of a given OCPP version.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.model.units import (
    Hertz,
    Percent,
    Seconds,
    SignedPercent,
    Vars,
    VoltPercent,
    Watts,
    WattsMagnitude,
)


class Strict(BaseModel):
    """Base for model types: unknown fields are errors (a typo must not silently drop a control)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CurveKind(StrEnum):
    """Curve families of IEEE 2030.5 DERCurveType and OCPP 2.1 DERControlEnumType."""

    VOLT_VAR = "volt_var"
    VOLT_WATT = "volt_watt"
    FREQ_WATT = "freq_watt"
    WATT_PF = "watt_pf"
    WATT_VAR = "watt_var"
    HF_MUST_TRIP = "hf_must_trip"
    HF_MAY_TRIP = "hf_may_trip"
    LF_MUST_TRIP = "lf_must_trip"
    LF_MAY_TRIP = "lf_may_trip"
    HV_MUST_TRIP = "hv_must_trip"
    HV_MAY_TRIP = "hv_may_trip"
    HV_MOM_CESS = "hv_mom_cess"
    LV_MUST_TRIP = "lv_must_trip"
    LV_MAY_TRIP = "lv_may_trip"
    LV_MOM_CESS = "lv_mom_cess"
    POWER_MONITORING_MUST_TRIP = "power_monitoring_must_trip"


class CurveUnit(StrEnum):
    """Axis units. Percent units are plain percent of the named reference."""

    SECONDS = "s"
    HERTZ = "Hz"
    VOLT_PCT = "pct_v_nominal"
    WATT = "W"
    PCT_MAX_W = "pct_max_w"
    PCT_W_AVAIL = "pct_w_avail"
    PCT_MAX_VAR = "pct_max_var"
    PCT_VAR_AVAIL = "pct_var_avail"
    #: Power factor, signed: positive = absorbing vars (under-excited), negative = injecting (OCPP 2.1 sign).
    POWER_FACTOR = "pf"


_TRIP_FREQ = frozenset({CurveKind.HF_MUST_TRIP, CurveKind.HF_MAY_TRIP, CurveKind.LF_MUST_TRIP, CurveKind.LF_MAY_TRIP})
_TRIP_VOLT = frozenset(
    {
        CurveKind.HV_MUST_TRIP,
        CurveKind.HV_MAY_TRIP,
        CurveKind.HV_MOM_CESS,
        CurveKind.LV_MUST_TRIP,
        CurveKind.LV_MAY_TRIP,
        CurveKind.LV_MOM_CESS,
    }
)
_VAR_Y = frozenset({CurveUnit.PCT_MAX_VAR, CurveUnit.PCT_VAR_AVAIL, CurveUnit.PCT_MAX_W})
_WATT_Y = frozenset({CurveUnit.PCT_MAX_W, CurveUnit.PCT_W_AVAIL})

#: Allowed (x unit, y units) per curve kind. Trip curves follow IEEE 2030.5: x = time, y = Hz or %V.
CURVE_AXES: dict[CurveKind, tuple[frozenset[CurveUnit], frozenset[CurveUnit]]] = {
    CurveKind.VOLT_VAR: (frozenset({CurveUnit.VOLT_PCT}), _VAR_Y),
    CurveKind.VOLT_WATT: (frozenset({CurveUnit.VOLT_PCT}), _WATT_Y),
    CurveKind.FREQ_WATT: (frozenset({CurveUnit.HERTZ}), _WATT_Y | {CurveUnit.WATT}),
    CurveKind.WATT_PF: (frozenset({CurveUnit.PCT_MAX_W}), frozenset({CurveUnit.POWER_FACTOR})),
    CurveKind.WATT_VAR: (frozenset({CurveUnit.PCT_MAX_W}), _VAR_Y),
    CurveKind.POWER_MONITORING_MUST_TRIP: (frozenset({CurveUnit.SECONDS}), frozenset({CurveUnit.PCT_MAX_W})),
    **{k: (frozenset({CurveUnit.SECONDS}), frozenset({CurveUnit.HERTZ})) for k in _TRIP_FREQ},
    **{k: (frozenset({CurveUnit.SECONDS}), frozenset({CurveUnit.VOLT_PCT})) for k in _TRIP_VOLT},
}

_UNIT_RANGE: dict[CurveUnit, tuple[float, float]] = {
    CurveUnit.SECONDS: (0, 86_400),
    CurveUnit.HERTZ: (40, 70),
    CurveUnit.VOLT_PCT: (0, 200),
    CurveUnit.WATT: (-10_000_000, 10_000_000),
    CurveUnit.PCT_MAX_W: (-100, 100),
    CurveUnit.PCT_W_AVAIL: (-100, 100),
    CurveUnit.PCT_MAX_VAR: (-100, 100),
    CurveUnit.PCT_VAR_AVAIL: (-100, 100),
    CurveUnit.POWER_FACTOR: (-1, 1),
}


class CurvePoint(Strict):
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)


class Curve(Strict):
    """A piecewise-linear DER curve (1-10 points, x strictly increasing), as IEEE 2030.5 and OCPP 2.1 allow."""

    kind: CurveKind
    x_unit: CurveUnit
    y_unit: CurveUnit
    points: Annotated[list[CurvePoint], Field(min_length=1, max_length=10)]
    response_time_s: Seconds | None = None
    #: Volt-var reference voltage, percent of nominal (2030.5 vRef).
    v_ref_pct: VoltPercent | None = None
    autonomous_v_ref: bool | None = None
    autonomous_v_ref_time_s: Seconds | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        xs, ys = CURVE_AXES[self.kind]
        if self.x_unit not in xs:
            raise ValueError(
                f"{self.kind} curve: x_unit must be one of {sorted(u.value for u in xs)}, not {self.x_unit}"
            )
        if self.y_unit not in ys:
            raise ValueError(
                f"{self.kind} curve: y_unit must be one of {sorted(u.value for u in ys)}, not {self.y_unit}"
            )
        for i, (a, b) in enumerate(zip(self.points, self.points[1:], strict=False)):
            if b.x <= a.x:
                raise ValueError(f"{self.kind} curve: x must be strictly increasing (point {i + 1}: {b.x} <= {a.x})")
        for axis, unit in (("x", self.x_unit), ("y", self.y_unit)):
            lo, hi = _UNIT_RANGE[unit]
            for i, p in enumerate(self.points):
                v = p.x if axis == "x" else p.y
                if not lo <= v <= hi:
                    raise ValueError(f"{self.kind} curve: point {i}: {axis}={v} is outside {lo}..{hi} {unit}")
        if self.y_unit is CurveUnit.POWER_FACTOR and any(p.y == 0 for p in self.points):
            raise ValueError(f"{self.kind} curve: a power factor of 0 is not a valid displacement")
        if self.v_ref_pct is not None and self.kind is not CurveKind.VOLT_VAR:
            raise ValueError("v_ref_pct applies to volt_var curves only")
        return self


class FixedPowerFactor(Strict):
    """cos(phi) to hold. `absorbing_vars` true = under-excited (2030.5 and OCPP `excitation` true)."""

    displacement: float = Field(gt=0, le=1, allow_inf_nan=False)
    absorbing_vars: bool


class VarReference(StrEnum):
    PCT_MAX_VAR = "pct_max_var"
    PCT_VAR_AVAIL = "pct_var_avail"
    PCT_MAX_W = "pct_max_w"


class FixedVar(Strict):
    """Fixed reactive power as percent of a reference. Positive = absorbing (inductive), like every power here."""

    percent: SignedPercent
    reference: VarReference


class FreqDroop(Strict):
    """Frequency-watt droop. Start frequencies are absolute (nominal +- dead band), droop is per unit."""

    over_freq_hz: Hertz
    under_freq_hz: Hertz
    over_droop: float = Field(gt=0, le=1, allow_inf_nan=False)
    under_droop: float = Field(gt=0, le=1, allow_inf_nan=False)
    response_time_s: Seconds

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.under_freq_hz >= self.over_freq_hz:
            raise ValueError(
                f"freq_droop: under_freq_hz ({self.under_freq_hz}) must be below over_freq_hz ({self.over_freq_hz})"
            )
        return self


class Gradients(Strict):
    """Ramp rates as percent of max W per second (2030.5 setGradW/setSoftGradW); 0 = no limit."""

    ramp_pct_per_s: float = Field(ge=0, le=100, allow_inf_nan=False)
    soft_start_pct_per_s: float = Field(ge=0, le=100, allow_inf_nan=False)


class EnterService(Strict):
    """Conditions under which a station may (re-)enter service after a trip or disconnect."""

    permitted: bool = True
    high_voltage_pct: VoltPercent
    low_voltage_pct: VoltPercent
    high_freq_hz: Hertz
    low_freq_hz: Hertz
    delay_s: Seconds | None = None
    random_delay_s: Seconds | None = None
    ramp_time_s: Seconds | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.low_voltage_pct >= self.high_voltage_pct:
            raise ValueError("enter_service: low_voltage_pct must be below high_voltage_pct")
        if self.low_freq_hz >= self.high_freq_hz:
            raise ValueError("enter_service: low_freq_hz must be below high_freq_hz")
        return self


class OperationMode(StrEnum):
    """OCPP 2.1 OperationModeEnumType, in the model's spelling."""

    CHARGING_ONLY = "charging_only"
    IDLE = "idle"
    CENTRAL_SETPOINT = "central_setpoint"
    CENTRAL_FREQUENCY = "central_frequency"
    LOCAL_FREQUENCY = "local_frequency"
    LOCAL_LOAD_BALANCING = "local_load_balancing"
    EXTERNAL_SETPOINT = "external_setpoint"
    EXTERNAL_LIMITS = "external_limits"


class Price(Strict):
    """An energy price signal (OpenADR PRICE / EXPORT_PRICE); the station gets it only where OCPP can carry it."""

    per_kwh: float = Field(allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    export: bool = False


class Controls(Strict):
    """The set of controls one directive asks for. At least one must be present."""

    import_limit_w: WattsMagnitude | None = None
    export_limit_w: WattsMagnitude | None = None
    #: Maximum discharge as percent of the station's max W (2030.5 opModMaxLimW).
    max_discharge_pct: Percent | None = None
    active_power_setpoint_w: Watts | None = None
    reactive_power_setpoint_var: Vars | None = None
    fixed_pf_absorb: FixedPowerFactor | None = None
    fixed_pf_inject: FixedPowerFactor | None = None
    fixed_var: FixedVar | None = None
    curves: list[Curve] = Field(default_factory=list)
    freq_droop: FreqDroop | None = None
    gradients: Gradients | None = None
    enter_service: EnterService | None = None
    #: False = disconnect from the grid (2030.5 opModConnect); True = may connect.
    connect: bool | None = None
    #: False = de-energize (2030.5 opModEnergize).
    energize: bool | None = None
    operation_mode: OperationMode | None = None
    price: Price | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        kinds = [c.kind for c in self.curves]
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        if dupes:
            raise ValueError(f"curves: at most one curve per kind (repeated: {', '.join(dupes)})")
        if not self.present():
            raise ValueError("controls: at least one control is required")
        return self

    def present(self) -> list[str]:
        """Names of the controls set, curves as `curve:<kind>`: the unit of per-control outcomes."""
        names = [name for name in type(self).model_fields if name != "curves" and getattr(self, name) is not None]
        names.extend(f"curve:{c.kind}" for c in self.curves)
        return names
