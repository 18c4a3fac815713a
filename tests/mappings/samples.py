"""Hand-built directives and station capabilities shared by the mapping tests, and Hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from hypothesis import strategies as st

from gateway.model import (
    CURVE_AXES,
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
    OcppVersion,
    OperationMode,
    Price,
    RateUnit,
    StationCapabilities,
    Target,
    TargetScope,
    VarReference,
)
from mappings.naming import DER_CONTROL_TYPES

T = TypeVar("T")

NOW = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
START = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)

DER_TYPES = DER_CONTROL_TYPES
ALL_MODES = frozenset(OperationMode)


def curve(kind: CurveKind, x_unit: CurveUnit, y_unit: CurveUnit, *points: tuple[float, float]) -> Curve:
    return Curve(kind=kind, x_unit=x_unit, y_unit=y_unit, points=[CurvePoint(x=x, y=y) for x, y in points])


_S, _HZ, _V = CurveUnit.SECONDS, CurveUnit.HERTZ, CurveUnit.VOLT_PCT
_TRIP = {
    "HFMustTrip": (CurveKind.HF_MUST_TRIP, _HZ, 62.0),
    "HFMayTrip": (CurveKind.HF_MAY_TRIP, _HZ, 61.8),
    "LFMustTrip": (CurveKind.LF_MUST_TRIP, _HZ, 57.0),
    "HVMustTrip": (CurveKind.HV_MUST_TRIP, _V, 120.0),
    "HVMayTrip": (CurveKind.HV_MAY_TRIP, _V, 118.0),
    "HVMomCess": (CurveKind.HV_MOM_CESS, _V, 110.0),
    "LVMustTrip": (CurveKind.LV_MUST_TRIP, _V, 45.0),
    "LVMayTrip": (CurveKind.LV_MAY_TRIP, _V, 50.0),
    "LVMomCess": (CurveKind.LV_MOM_CESS, _V, 50.0),
}


def der_controls(control_type: str) -> Controls:
    """Controls holding exactly one DER setting or curve that maps to `control_type`."""
    if control_type in _TRIP:
        kind, unit, y = _TRIP[control_type]
        return Controls(curves=[curve(kind, _S, unit, (0.16, y), (2.0, y - 1))])
    curves = {
        "FreqWatt": curve(CurveKind.FREQ_WATT, _HZ, CurveUnit.PCT_MAX_W, (60.036, 0.0), (61.0, 40.0)),
        "VoltVar": curve(CurveKind.VOLT_VAR, _V, CurveUnit.PCT_MAX_VAR, (92.0, -44.0), (108.0, 44.0)),
        "VoltWatt": curve(CurveKind.VOLT_WATT, _V, CurveUnit.PCT_MAX_W, (106.0, -100.0), (110.0, 0.0)),
        "WattPF": curve(CurveKind.WATT_PF, CurveUnit.PCT_MAX_W, CurveUnit.POWER_FACTOR, (-100.0, 0.9), (0.0, 1.0)),
        "WattVar": curve(CurveKind.WATT_VAR, CurveUnit.PCT_MAX_W, CurveUnit.PCT_MAX_VAR, (-100.0, 44.0), (-50, 0.0)),
        "PowerMonitoringMustTrip": curve(
            CurveKind.POWER_MONITORING_MUST_TRIP, _S, CurveUnit.PCT_MAX_W, (1.0, -60.0), (10.0, -50.0)
        ),
    }
    if control_type in curves:
        return Controls(curves=[curves[control_type]])
    settings = {
        "EnterService": Controls(
            enter_service=EnterService(high_voltage_pct=105, low_voltage_pct=91.7, high_freq_hz=60.1, low_freq_hz=59.5)
        ),
        "FreqDroop": Controls(
            freq_droop=FreqDroop(
                over_freq_hz=60.036, under_freq_hz=59.964, over_droop=0.05, under_droop=0.05, response_time_s=5
            )
        ),
        "FixedPFAbsorb": Controls(fixed_pf_absorb=FixedPowerFactor(displacement=0.95, absorbing_vars=True)),
        "FixedPFInject": Controls(fixed_pf_inject=FixedPowerFactor(displacement=0.9, absorbing_vars=False)),
        "FixedVar": Controls(fixed_var=FixedVar(percent=25, reference=VarReference.PCT_MAX_VAR)),
        "Gradients": Controls(gradients=Gradients(ramp_pct_per_s=0.5, soft_start_pct_per_s=0)),
        "LimitMaxDischarge": Controls(max_discharge_pct=50),
    }
    return settings[control_type]


def v21(**changes: object) -> StationCapabilities:
    """A fully capable OCPP 2.1 station (every DER type, every mode, W), with `changes` applied."""
    base: dict[str, object] = {
        "version": OcppVersion.V21,
        "der_modes": frozenset(DER_TYPES),
        "operation_modes": ALL_MODES,
        "rate_units": frozenset({RateUnit.W, RateUnit.A}),
        "max_w": 11_000.0,
        "max_charge_rate_w": 11_000.0,
        "evse_ids": (1,),
    }
    base.update(changes)
    return StationCapabilities.model_validate(base)


def directive(controls: Controls, **changes: object) -> Directive:
    base: dict[str, object] = {"id": "d1", "priority": 3, "start": START, "duration_s": 900.0, "controls": controls}
    base.update(changes)
    return Directive.model_validate(base)


# ---- Hypothesis strategies -------------------------------------------------------------------------------------

_UNIT_RANGE = {
    CurveUnit.SECONDS: (0.0, 3600.0),
    CurveUnit.HERTZ: (45.0, 65.0),
    CurveUnit.VOLT_PCT: (50.0, 150.0),
    CurveUnit.WATT: (-20_000.0, 20_000.0),
    CurveUnit.POWER_FACTOR: (0.8, 1.0),
}
_PCT = (-100.0, 100.0)


@st.composite
def curves(draw: st.DrawFn, kind: CurveKind) -> Curve:
    x_units, y_units = CURVE_AXES[kind]
    x_unit = draw(st.sampled_from(sorted(x_units)))
    y_unit = draw(st.sampled_from(sorted(y_units)))
    lo, hi = _UNIT_RANGE.get(x_unit, _PCT)
    xs = draw(st.lists(st.floats(lo, hi), min_size=1, max_size=10, unique=True).map(sorted))
    ylo, yhi = _UNIT_RANGE.get(y_unit, _PCT)
    ys = draw(st.lists(st.floats(ylo, yhi), min_size=len(xs), max_size=len(xs)))
    if y_unit is CurveUnit.POWER_FACTOR:
        ys = [y * draw(st.sampled_from((1, -1))) for y in ys]
    v_ref = draw(st.none() | st.floats(90, 110)) if kind is CurveKind.VOLT_VAR else None
    return Curve(
        kind=kind,
        x_unit=x_unit,
        y_unit=y_unit,
        points=[CurvePoint(x=x, y=y) for x, y in zip(xs, ys, strict=True)],
        response_time_s=draw(st.none() | st.floats(0, 60)),
        v_ref_pct=v_ref,
        autonomous_v_ref=draw(st.none() | st.booleans()),
    )


numbers = st.integers(1, 134_217_727)
nows = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
_watts = st.floats(0, 50_000)
_signed_watts = st.floats(-50_000, 50_000)


def _opt(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


@st.composite
def controls(draw: st.DrawFn) -> Controls:
    kinds = draw(st.lists(st.sampled_from(list(CurveKind)), unique=True, max_size=4))
    pf = st.builds(FixedPowerFactor, displacement=st.floats(0.5, 1), absorbing_vars=st.booleans())
    fields: dict[str, object] = {
        "import_limit_w": draw(_opt(_watts)),
        "export_limit_w": draw(_opt(_watts)),
        "max_discharge_pct": draw(_opt(st.floats(0, 100))),
        "active_power_setpoint_w": draw(_opt(_signed_watts)),
        "reactive_power_setpoint_var": draw(_opt(_signed_watts)),
        "fixed_pf_absorb": draw(_opt(pf)),
        "fixed_pf_inject": draw(_opt(pf)),
        "fixed_var": draw(
            _opt(st.builds(FixedVar, percent=st.floats(-100, 100), reference=st.sampled_from(list(VarReference))))
        ),
        "curves": [draw(curves(kind)) for kind in kinds],
        "freq_droop": draw(
            _opt(
                st.builds(
                    FreqDroop,
                    over_freq_hz=st.floats(60, 62),
                    under_freq_hz=st.floats(58, 59.9),
                    over_droop=st.floats(0.01, 1),
                    under_droop=st.floats(0.01, 1),
                    response_time_s=st.floats(0, 60),
                )
            )
        ),
        "gradients": draw(
            _opt(st.builds(Gradients, ramp_pct_per_s=st.floats(0, 100), soft_start_pct_per_s=st.floats(0, 100)))
        ),
        "enter_service": draw(
            _opt(
                st.builds(
                    EnterService,
                    permitted=st.booleans(),
                    high_voltage_pct=st.floats(101, 120),
                    low_voltage_pct=st.floats(80, 99),
                    high_freq_hz=st.floats(60.1, 61),
                    low_freq_hz=st.floats(59, 59.9),
                    delay_s=_opt(st.floats(0, 600)),
                    random_delay_s=_opt(st.floats(0, 600)),
                    ramp_time_s=_opt(st.floats(0, 600)),
                )
            )
        ),
        "connect": draw(_opt(st.booleans())),
        "energize": draw(_opt(st.booleans())),
        "operation_mode": draw(_opt(st.sampled_from(list(OperationMode)))),
        "price": draw(_opt(st.builds(Price, per_kwh=st.floats(-1, 1), currency=st.just("EUR")))),
    }
    if not any(v is not None and v != [] for v in fields.values()):
        fields["import_limit_w"] = 1000.0
    return Controls.model_validate(fields)


@st.composite
def directives(draw: st.DrawFn) -> Directive:
    is_default = draw(st.booleans())
    evse = draw(st.none() | st.integers(0, 3))
    target = Target(scope=TargetScope.STATION, ids=["cs1"], evse_id=evse)
    start = None if is_default else draw(_opt(nows))
    return Directive(
        id="d",
        priority=draw(st.integers(0, 30)),
        start=start,
        duration_s=None if is_default else draw(st.none() | st.floats(1, 86_400 * 30)),
        randomize_start_s=0 if is_default else draw(st.integers(-3600, 3600)),
        target=target,
        is_default=is_default,
        controls=draw(controls()),
    )


@st.composite
def capabilities(draw: st.DrawFn) -> StationCapabilities:
    version = draw(st.sampled_from(list(OcppVersion)))
    return StationCapabilities(
        version=version,
        der_modes=frozenset(draw(st.lists(st.sampled_from(DER_TYPES), unique=True))),
        operation_modes=frozenset(draw(st.lists(st.sampled_from(list(OperationMode)), unique=True))),
        rate_units=frozenset(draw(st.lists(st.sampled_from(list(RateUnit)), min_size=1, unique=True))),
        max_w=draw(_opt(st.floats(1000, 50_000))),
        max_charge_rate_w=draw(_opt(st.floats(1000, 50_000))),
        nominal_voltage_v=draw(st.sampled_from((120.0, 230.0, 240.0))),
        phases=draw(st.integers(1, 3)),
        supports_randomized_delay=draw(st.booleans()),
        evse_ids=tuple(range(1, draw(st.integers(1, 4)) + 1)),
    )
