"""Scenario files for the counterpart: JSON whose control keys are the 2030.5 element names (see docs/ieee2030_5.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocols.ieee2030_5 import wire


def load_scenario(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("end_devices"), list):
        raise ValueError(f"{path}: a scenario is an object with an 'end_devices' list")
    return data


def _power(spec: dict[str, Any] | None) -> wire.Power | None:
    return None if spec is None else wire.Power(int(spec["value"]), int(spec.get("multiplier", 0)))


def _pf(spec: dict[str, Any] | None) -> wire.PowerFactorWithExcitation | None:
    if spec is None:
        return None
    return wire.PowerFactorWithExcitation(
        int(spec["displacement"]), int(spec.get("multiplier", 0)), bool(spec.get("excitation", False))
    )


_KNOWN_BASE = {
    "opModConnect",
    "opModEnergize",
    "opModFixedPFAbsorbW",
    "opModFixedPFInjectW",
    "opModFixedVar",
    "opModFixedW",
    "opModFreqDroop",
    "opModMaxLimW",
    "opModTargetVar",
    "opModTargetW",
    "rampTms",
    "opModImpLimW",
    "opModExpLimW",
    "opModGenLimW",
    "opModLoadLimW",
    *wire.CURVE_LINKS,
    *wire.CURVE_LINKS_LATE,
}


def control_base(spec: dict[str, Any], curve_href: dict[str, str]) -> wire.ControlBase:
    """DERControlBase from its JSON form; curve links name a curve of the same program by its mRID."""
    unknown = set(spec) - _KNOWN_BASE
    if unknown:
        raise ValueError(f"unknown DERControlBase elements: {sorted(unknown)}")
    var = spec.get("opModFixedVar")
    droop = spec.get("opModFreqDroop")
    links = tuple(
        (name, curve_href[str(spec[name]).lower()])
        for name in (*wire.CURVE_LINKS, *wire.CURVE_LINKS_LATE)
        if name in spec
    )
    return wire.ControlBase(
        op_mod_connect=spec.get("opModConnect"),
        op_mod_energize=spec.get("opModEnergize"),
        fixed_pf_absorb=_pf(spec.get("opModFixedPFAbsorbW")),
        fixed_pf_inject=_pf(spec.get("opModFixedPFInjectW")),
        fixed_var=None if var is None else wire.FixedVar(int(var["refType"]), int(var["value"])),
        fixed_w=spec.get("opModFixedW"),
        freq_droop=None
        if droop is None
        else wire.FreqDroop(
            int(droop["dBOF"]), int(droop["dBUF"]), int(droop["kOF"]), int(droop["kUF"]), int(droop["openLoopTms"])
        ),
        curve_links=links,
        max_lim_w=spec.get("opModMaxLimW"),
        target_var=_power(spec.get("opModTargetVar")),
        target_w=_power(spec.get("opModTargetW")),
        ramp_tms=spec.get("rampTms"),
        imp_lim_w=_power(spec.get("opModImpLimW")),
        exp_lim_w=_power(spec.get("opModExpLimW")),
        gen_lim_w=_power(spec.get("opModGenLimW")),
        load_lim_w=_power(spec.get("opModLoadLimW")),
    )


def curve(spec: dict[str, Any], mrid: str, href: str, created: int) -> wire.DERCurve:
    return wire.DERCurve(
        mrid=mrid,
        creation_time=created,
        curve_type=int(spec["curveType"]),
        points=tuple(wire.CurvePoint(int(p[0]), int(p[1]), bool(p[2]) if len(p) > 2 else None) for p in spec["points"]),
        x_multiplier=int(spec.get("xMultiplier", 0)),
        y_multiplier=int(spec.get("yMultiplier", 0)),
        y_ref_type=int(spec.get("yRefType", 0)),
        href=href,
        open_loop_tms=spec.get("openLoopTms"),
        v_ref=spec.get("vRef"),
        autonomous_v_ref_enable=spec.get("autonomousVRefEnable"),
        autonomous_v_ref_time_constant=spec.get("autonomousVRefTimeConstant"),
    )
