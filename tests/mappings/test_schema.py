"""Every DER control type and every canonical control, on every OCPP version, yields schema-valid payloads."""

from __future__ import annotations

import pytest

from gateway.model import (
    Controls,
    CurveKind,
    CurveUnit,
    OcppVersion,
    OperationMode,
    Price,
    RateUnit,
    StationCapabilities,
)
from mappings import map_clear, map_directive
from protocols.ocpp.schemas import schema, validate
from tests.mappings.samples import DER_TYPES, NOW, curve, der_controls, directive, v21


def test_der_control_types_are_those_of_the_official_schema() -> None:
    """The enum from the `ocpp` package agrees with the OCA JSON schema the frames are validated against."""
    enum = schema(OcppVersion.V21, "SetDERControl", False)["definitions"]["DERControlEnumType"]["enum"]
    assert list(DER_TYPES) == enum


@pytest.mark.parametrize("control_type", DER_TYPES)
@pytest.mark.parametrize("is_default", [True, False])
def test_each_der_control_type_reaches_a_21_station_as_one_valid_request(control_type: str, is_default: bool) -> None:
    timing = {"start": None, "duration_s": None} if is_default else {}
    d = directive(der_controls(control_type), is_default=is_default, **timing)
    result = map_directive(d, v21(), number=7, now=NOW)
    if control_type in ("EnterService", "Gradients") and not is_default:  # R04.FR.14
        assert result.commands == ()
        assert "R04.FR.14" in result.unsupported[0].reason
        return
    (command,) = result.commands
    assert command.payload["controlType"] == control_type
    assert command.payload["controlId"] == f"g7-{control_type}"
    validate(OcppVersion.V21, "SetDERControl", command.payload)
    for clear in map_clear(d, v21(), number=7).commands:
        validate(OcppVersion.V21, clear.action, clear.payload)


def _all_controls() -> list[tuple[str, Controls]]:
    samples = [(t, der_controls(t)) for t in DER_TYPES]
    samples += [
        ("LFMayTrip", Controls(curves=[curve(CurveKind.LF_MAY_TRIP, CurveUnit.SECONDS, CurveUnit.HERTZ, (1, 57))])),
        ("import", Controls(import_limit_w=7400)),
        ("export", Controls(export_limit_w=3000)),
        ("setpoint+", Controls(active_power_setpoint_w=4000)),
        ("setpoint-", Controls(active_power_setpoint_w=-4000)),
        ("reactive", Controls(active_power_setpoint_w=-4000, reactive_power_setpoint_var=-1500)),
        ("connect", Controls(connect=False)),
        ("energize", Controls(energize=False, import_limit_w=5000)),
        ("price", Controls(price=Price(per_kwh=0.25, currency="USD"))),
    ]
    samples += [(f"mode:{m}", Controls(operation_mode=m, active_power_setpoint_w=-2000)) for m in OperationMode]
    return samples


_STATIONS = [
    v21(),
    v21(rate_units=frozenset({RateUnit.A}), evse_ids=(1, 2)),
    v21(der_modes=frozenset(), operation_modes=frozenset()),
    StationCapabilities(version=OcppVersion.V201, rate_units=frozenset({RateUnit.W})),
    StationCapabilities(version=OcppVersion.V201),
    StationCapabilities(version=OcppVersion.V16, max_charge_rate_w=7400),
    StationCapabilities(version=OcppVersion.V16, rate_units=frozenset({RateUnit.W})),
]


@pytest.mark.parametrize(("name", "controls"), _all_controls(), ids=[n for n, _ in _all_controls()])
@pytest.mark.parametrize("caps", _STATIONS, ids=lambda c: f"{c.version}-{sorted(c.rate_units)}-{len(c.der_modes)}")
@pytest.mark.parametrize("evse", [None, 2])
def test_every_control_on_every_version_is_valid_or_explained(
    name: str, controls: Controls, caps: StationCapabilities, evse: int | None
) -> None:
    d = directive(controls, randomize_start_s=30)
    result = map_directive(d, caps, number=3, now=NOW, evse_id=evse)
    assert sorted(result.carried() + [u.control for u in result.unsupported]) == sorted(controls.present())
    for command in result.commands + map_clear(d, caps, number=3, evse_id=evse).commands:
        validate(caps.version, command.action, command.payload)
    for unsupported in result.unsupported:
        assert "OCPP" in unsupported.reason  # every reason names the version that lacks the feature
