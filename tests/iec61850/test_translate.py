"""Pure translation: value checks, directives from settings, fleet totals (Hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from protocols.iec61850.clib import AccessError, AddCause
from protocols.iec61850.datamodel import NODES, Cdc, Function
from protocols.iec61850.translate import (
    HoldPolicy,
    Refusal,
    StationReading,
    check_value,
    directive_for,
    measurements,
)
from tests.iec61850.conftest import NOW

NUMERIC = [f"{ln.name}.{do.name}" for ln in NODES for do in ln.data if do.range is not None]
_finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(st.sampled_from(NUMERIC), _finite)
def test_a_number_is_accepted_exactly_when_in_range(ref: str, value: float) -> None:
    _ln, do = next((ln, do) for ln in NODES for do in ln.data if f"{ln.name}.{do.name}" == ref)
    assert do.range is not None
    refusal = check_value(ref, value)
    assert (refusal is None) == do.range.contains(value)
    if refusal is not None:
        assert (refusal.add_cause, refusal.access_error) == (
            AddCause.INCONSISTENT_PARAMETERS,
            AccessError.OBJECT_VALUE_INVALID,
        )


def test_types_and_read_only_objects_are_refused() -> None:
    assert check_value("MMXU1.TotW", 1.0) == Refusal(
        "MMXU1.TotW is read-only", AddCause.NOT_SUPPORTED, AccessError.OBJECT_ACCESS_DENIED
    )
    bad_type = check_value("CSWI1.Pos", 1.0)
    assert bad_type is not None
    assert bad_type.access_error is AccessError.TYPE_INCONSISTENT
    assert check_value("DWGC1.WSpt", math.nan) is not None


@given(st.floats(min_value=-1e7, max_value=1e7), st.none() | st.floats(min_value=1, max_value=86_400))
def test_setpoint_directive_keeps_value_priority_and_hold(value: float, hold: float | None) -> None:
    policy = HoldPolicy("IED7", priority=3, hold_s=hold)
    directive = directive_for(Function.ACTIVE_POWER_SETPOINT, {"DWGC1.WSpt": value}, policy, NOW, "10.0.0.9")
    assert not isinstance(directive, Refusal)
    assert directive.controls.active_power_setpoint_w == value
    assert (directive.id, directive.priority, directive.duration_s) == ("iec61850.IED7.active_power_setpoint", 3, hold)
    assert directive.start == NOW


def test_fixed_pf_and_ramp_directives() -> None:
    policy = HoldPolicy()
    pf = directive_for(Function.FIXED_PF, {"DFPF1.PFSpt": 0.95, "DFPF1.PFAbsVAr": True}, policy, NOW, "p")
    assert not isinstance(pf, Refusal)
    assert pf.controls.fixed_pf_absorb is not None
    assert pf.controls.fixed_pf_absorb.absorbing_vars
    ramp = directive_for(Function.RAMP, {"DRCT1.RmpRte": 10.0}, policy, NOW, "p")
    assert not isinstance(ramp, Refusal)
    assert ramp.controls.gradients is not None
    assert ramp.controls.gradients.soft_start_pct_per_s == 0


_reading = st.builds(
    StationReading,
    connected=st.booleans(),
    watts=st.none() | st.floats(min_value=-1e5, max_value=1e5),
    hz=st.none() | st.floats(min_value=45, max_value=65),
)


@given(st.dictionaries(st.text(min_size=1, max_size=5), _reading, max_size=20))
def test_totals_count_only_connected_stations(readings: dict[str, StationReading]) -> None:
    m = measurements(readings)
    live = [r for r in readings.values() if r.connected]
    assert m.connected == len(live)
    assert math.isclose(m.tot_w, sum(r.watts or 0 for r in live), abs_tol=1e-6)
    hzs = [r.hz for r in live if r.hz is not None]
    assert (m.hz is None) == (not hzs)
    if m.hz is not None:
        assert min(hzs) - 1e-9 <= m.hz <= max(hzs) + 1e-9


def test_every_controllable_object_has_a_function_and_a_range_or_boolean() -> None:
    for ln in NODES:
        for do in ln.data:
            if do.cdc in (Cdc.ASG, Cdc.APC):
                assert do.range is not None, do.name
                assert do.function is not None, do.name
