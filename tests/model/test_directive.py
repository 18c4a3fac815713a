"""The canonical model: precise validation errors and a lossless JSON form (docs/model.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.model import Controls, Curve, CurveKind, CurvePoint, CurveUnit, Directive

EXAMPLE = Path(__file__).parents[2] / "examples" / "directive.json"


def _errors(raw: object) -> str:
    with pytest.raises(ValidationError) as exc:
        Directive.model_validate(raw)
    return str(exc.value)


def test_documented_example_is_valid_and_round_trips() -> None:
    directive = Directive.model_validate_json(EXAMPLE.read_text())
    assert directive.controls.present() == ["import_limit_w", "export_limit_w", "freq_droop", "curve:volt_var"]
    assert Directive.model_validate_json(directive.model_dump_json()) == directive


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({}, "at least one control is required"),
        ({"import_limit_w": -1}, "greater than or equal to 0"),
        ({"import_limit_w": "lots"}, "valid number"),
        ({"export_limt_w": 5}, "Extra inputs are not permitted"),
        ({"fixed_pf_inject": {"displacement": 1.2, "absorbing_vars": False}}, "less than or equal to 1"),
        ({"fixed_var": {"percent": 150, "reference": "pct_max_var"}}, "less than or equal to 100"),
        (
            {
                "freq_droop": {
                    "over_freq_hz": 49.8,
                    "under_freq_hz": 50.2,
                    "over_droop": 0.05,
                    "under_droop": 0.05,
                    "response_time_s": 1,
                }
            },
            "under_freq_hz (50.2) must be below over_freq_hz (49.8)",
        ),
        (
            {
                "freq_droop": {
                    "over_freq_hz": 50200,
                    "under_freq_hz": 49800,
                    "over_droop": 0.05,
                    "under_droop": 0.05,
                    "response_time_s": 1,
                }
            },
            "less than or equal to 70",
        ),
        (
            {
                "enter_service": {
                    "high_voltage_pct": 230,
                    "low_voltage_pct": 88,
                    "high_freq_hz": 50.1,
                    "low_freq_hz": 49.9,
                }
            },
            "less than or equal to 200",
        ),
    ],
)
def test_bad_controls_get_precise_errors(controls: dict[str, object], message: str) -> None:
    assert message in _errors({"controls": controls})


def _curve(kind: str, x_unit: str, y_unit: str, points: list[tuple[float, float]]) -> dict[str, object]:
    return {"kind": kind, "x_unit": x_unit, "y_unit": y_unit, "points": [{"x": x, "y": y} for x, y in points]}


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        (
            _curve("volt_var", "pct_v_nominal", "pct_max_var", [(92, 30), (91, -30)]),
            "x must be strictly increasing (point 1: 91.0 <= 92.0)",
        ),
        (_curve("volt_var", "Hz", "pct_max_var", [(49, 1)]), "x_unit must be one of ['pct_v_nominal'], not Hz"),
        (_curve("hf_must_trip", "s", "pct_v_nominal", [(1, 100)]), "y_unit must be one of ['Hz']"),
        (_curve("volt_var", "pct_v_nominal", "pct_max_var", []), "at least 1 item"),
        (_curve("volt_var", "pct_v_nominal", "pct_max_var", [(i, 0) for i in range(11)]), "at most 10 items"),
        (_curve("volt_watt", "pct_v_nominal", "pct_max_w", [(230, 100)]), "x=230.0 is outside 0..200"),
        (_curve("watt_pf", "pct_max_w", "pf", [(10, 0)]), "power factor of 0"),
    ],
)
def test_bad_curves_get_precise_errors(curve: dict[str, object], message: str) -> None:
    assert message in _errors({"controls": {"curves": [curve]}})


def test_one_curve_per_kind() -> None:
    curve = _curve("volt_var", "pct_v_nominal", "pct_max_var", [(92, 30)])
    assert "at most one curve per kind (repeated: volt_var)" in _errors({"controls": {"curves": [curve, curve]}})


def test_default_directives_have_no_time_window() -> None:
    """OCPP R04.FR.12/13: defaults carry no startTime or duration."""
    controls = {"import_limit_w": 1000}
    assert "no start or duration" in _errors({"is_default": True, "duration_s": 60, "controls": controls})
    assert "cannot be randomized" in _errors({"is_default": True, "randomize_start_s": 5, "controls": controls})


def test_targets_are_checked() -> None:
    controls = {"import_limit_w": 1000}
    assert "a fleet target takes no ids" in _errors({"target": {"ids": ["A"]}, "controls": controls})
    assert "needs at least one id" in _errors({"target": {"scope": "group"}, "controls": controls})
    assert "evse_id is only meaningful" in _errors({"target": {"evse_id": 1}, "controls": controls})


def test_start_needs_a_zone_and_is_kept_in_utc() -> None:
    assert "timezone" in _errors({"start": "2026-01-01T00:00:00", "controls": {"import_limit_w": 1}})
    d = Directive.model_validate({"start": "2026-01-01T02:00:00+02:00", "controls": {"import_limit_w": 1}})
    assert d.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert d.start is not None
    assert d.start.utcoffset() == timedelta(0)
    assert d.end(datetime(2030, 1, 1, tzinfo=UTC)) is None


xs = st.lists(st.floats(min_value=0, max_value=200, allow_nan=False), min_size=1, max_size=10, unique=True)


@given(xs, st.data())
def test_curves_with_increasing_x_validate_and_any_disorder_is_refused(
    values: list[float], data: st.DataObject
) -> None:
    ys = data.draw(st.lists(st.floats(-100, 100), min_size=len(values), max_size=len(values)))
    ordered = sorted(values)
    points = [CurvePoint(x=x, y=y) for x, y in zip(ordered, ys, strict=True)]
    curve = Curve(kind=CurveKind.VOLT_VAR, x_unit=CurveUnit.VOLT_PCT, y_unit=CurveUnit.PCT_MAX_VAR, points=points)
    directive = Directive(controls=Controls(curves=[curve]))
    assert Directive.model_validate_json(directive.model_dump_json()) == directive
    shuffled = data.draw(st.permutations(ordered))
    if list(shuffled) != ordered:
        raw = json.loads(directive.model_dump_json())
        raw["controls"]["curves"][0]["points"] = [{"x": x, "y": 0} for x in shuffled]
        assert "strictly increasing" in _errors(raw)


def test_a_total_share_defaults_to_each_and_needs_a_power_limit() -> None:
    each = Directive.model_validate({"target": {"scope": "group", "ids": ["site"]}, "controls": {"import_limit_w": 1}})
    assert each.target.share == "each"
    total = {"scope": "group", "ids": ["site"], "share": "total"}
    shared = Directive.model_validate({"target": total, "controls": {"import_limit_w": 300_000}})
    assert shared.target.share == "total"
    assert "needs import_limit_w or export_limit_w" in _errors({"target": total, "controls": {"connect": False}})
    message = "active_power_setpoint_w cannot be shared as a total"
    assert message in _errors({"target": total, "controls": {"export_limit_w": 5, "active_power_setpoint_w": -5}})
    assert "Input should be 'each' or 'total'" in _errors({"target": {**total, "share": "half"}, "controls": {}})
