"""Hypothesis properties of the decoders, encoders and normalization."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.ieee2030_5 import decode, encode, wire
from protocols.ieee2030_5.normalize import NormalizationError, control_directive, curve, default_directive
from protocols.ieee2030_5.wire import ResponseStatus
from tests.ieee2030_5.conftest import binding
from tests.ieee2030_5.xsd import problems

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PROGRAM = wire.DERProgram(mrid="ab" * 16, primacy=3)
mrids = st.binary(min_size=16, max_size=16).map(bytes.hex)
powers = st.builds(wire.Power, st.integers(0, 32767), st.integers(-3, 3)).filter(lambda p: p.si <= 10_000_000)


def _control(base: wire.ControlBase, mrid: str = "cd" * 16, **kw: object) -> wire.DERControl:
    values: dict[str, object] = {
        "mrid": mrid,
        "creation_time": int(NOW.timestamp()),
        "event_status": wire.EventStatus(0, int(NOW.timestamp())),
        "start": int(NOW.timestamp()) + 60,
        "duration": 600,
        "base": base,
        "reply_to": "/rsp",
        "response_required": 3,
    }
    values.update(kw)
    return wire.DERControl(**values)  # type: ignore[arg-type]


@given(powers, powers)
def test_limits_are_value_times_ten_to_the_multiplier(imp: wire.Power, exp: wire.Power) -> None:
    d = control_directive(
        _control(wire.ControlBase(imp_lim_w=imp, exp_lim_w=exp)),
        PROGRAM,
        binding(),
        {},
        server="s",
        offset_s=0,
        now=NOW,
    ).directive
    # Correctly rounded: the float nearest the exact value x 10^multiplier.
    assert d.controls.import_limit_w == float(Fraction(imp.value) * Fraction(10) ** imp.multiplier)
    assert d.controls.export_limit_w == float(Fraction(exp.value) * Fraction(10) ** exp.multiplier)
    assert d.priority == 3


@given(st.integers(10_001, 32767), st.integers(4, 9))
def test_out_of_range_power_is_refused_with_253(value: int, multiplier: int) -> None:
    c = _control(wire.ControlBase(imp_lim_w=wire.Power(value, multiplier)))
    with pytest.raises(NormalizationError, match="import_limit_w") as err:
        control_directive(c, PROGRAM, binding(), {}, server="s", offset_s=0, now=NOW)
    assert err.value.status is ResponseStatus.REJECTED_INVALID


@given(st.integers(0, 10000), st.integers(0, 10000))
def test_hundredths(max_lim: int, grad: int) -> None:
    d = control_directive(
        _control(wire.ControlBase(max_lim_w=max_lim)), PROGRAM, binding(), {}, server="s", offset_s=0, now=NOW
    ).directive
    assert d.controls.max_discharge_pct == max_lim / 100
    dflt = wire.DefaultDERControl(mrid="ef" * 16, base=wire.ControlBase(max_lim_w=0), set_grad_w=grad)
    g = default_directive(dflt, PROGRAM, binding(), {}, server="s").directive.controls.gradients
    assert g is not None
    assert (g.ramp_pct_per_s, g.soft_start_pct_per_s) == (grad / 100, grad / 100)


@given(
    st.lists(st.integers(8000, 12000), min_size=1, max_size=10, unique=True),
    st.integers(-100, 100),
    st.sampled_from([1, 2, 3]),
)
def test_volt_var_curve_multipliers(xs: list[int], y: int, ref: int) -> None:
    points = tuple(wire.CurvePoint(x, y * (i % 2 or -1)) for i, x in enumerate(sorted(xs)))
    c = wire.DERCurve(
        mrid="12" * 16,
        creation_time=0,
        curve_type=11,
        points=points,
        x_multiplier=-2,
        y_multiplier=0,
        y_ref_type=ref,
        v_ref=10000,
    )
    m = curve("opModVoltVar", c)
    assert [p.x for p in m.points] == [p.x / 100 for p in points]
    assert [p.y for p in m.points] == [float(p.y) for p in points]
    assert m.v_ref_pct == 100


@given(st.integers(1, 1000), st.booleans())
def test_watt_pf_sign_follows_excitation(disp: int, excitation: bool) -> None:
    c = wire.DERCurve(
        mrid="12" * 16,
        creation_time=0,
        curve_type=13,
        points=(wire.CurvePoint(50, disp, excitation),),
        x_multiplier=0,
        y_multiplier=-3,
        y_ref_type=0,
    )
    y = curve("opModWattPF", c).points[0].y
    assert y == (disp / 1000 if excitation else -disp / 1000)


@given(
    mrids,
    st.sampled_from([0, 1, 2, 3, 4]),
    st.integers(0, 2**32 - 1),
    st.one_of(st.none(), st.integers(-3600, 3600)),
    st.one_of(st.none(), powers),
    st.one_of(st.none(), st.integers(-10000, 10000)),
    st.one_of(st.none(), st.booleans()),
    st.integers(0, 255),
)
def test_der_control_round_trip_and_schema(
    mrid: str,
    status: int,
    duration: int,
    rnd: int | None,
    power: wire.Power | None,
    fixed_w: int | None,
    connect: bool | None,
    rr: int,
) -> None:
    c = _control(
        wire.ControlBase(op_mod_connect=connect, fixed_w=fixed_w, exp_lim_w=power, gen_lim_w=power, target_w=power),
        mrid,
        event_status=wire.EventStatus(status, 1),
        duration=duration,
        randomize_start=rnd,
        response_required=rr,
    )
    doc = encode.der_control(c)
    assert problems(doc) == []
    assert decode.der_control(decode.root(doc, "DERControl")) == c


@given(mrids, st.binary(min_size=20, max_size=20).map(bytes.hex), st.integers(0, 255), st.integers(0, 2**40))
def test_response_round_trip_and_schema(subject: str, lfdi: str, status: int, created: int) -> None:
    r = wire.Response(end_device_lfdi=lfdi, subject=subject, status=status, created_date_time=created)
    doc = encode.response(r)
    assert problems(doc) == []
    assert decode.response(decode.root(doc, "DERControlResponse")) == r


@given(
    st.integers(0, 255), st.integers(0, 65535), st.text(max_size=32), st.one_of(st.none(), st.integers(0, 2**32 - 1))
)
def test_log_event_round_trip_and_schema(code: int, ident: int, details: str, extended: int | None) -> None:
    details = "".join(ch for ch in details if ch.isalnum() or ch in " :-")
    e = wire.LogEvent(1, 0, code, ident, 0, 1, details or None, extended)
    doc = encode.log_event(e)
    assert problems(doc) == []
    assert decode.log_event(decode.root(doc, "LogEvent")) == e
