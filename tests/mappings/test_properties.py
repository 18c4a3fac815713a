"""Invariants over random valid directives and stations: nothing dropped, schema-valid, deterministic, safe."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import Directive, OcppVersion, OperationMode, StationCapabilities
from mappings import MappingResult, map_clear, map_directive
from mappings.naming import OCPP_MODE
from protocols.ocpp.schemas import validate
from tests.mappings.samples import capabilities, directives, nows, numbers

_EXAMPLES = settings(max_examples=120, deadline=None)
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
_SETTING_FIELDS = {
    "fixedPFAbsorb",
    "fixedPFInject",
    "fixedVar",
    "limitMaxDischarge",
    "freqDroop",
    "enterService",
    "gradient",
    "curve",
}


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON payload."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _periods(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for key, value in _walk(payload) if key == "chargingSchedulePeriod" for p in value]


def _map(d: Directive, caps: StationCapabilities, number: int, now: datetime) -> MappingResult:
    return map_directive(d, caps, number=number, now=now)


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_every_control_lands_in_exactly_one_place(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    result = _map(d, caps, number, now)
    places = result.carried() + [u.control for u in result.unsupported]
    assert sorted(places) == sorted(d.controls.present())
    assert all("OCPP" in u.reason for u in result.unsupported)  # each reason names the version that lacks it


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_every_payload_validates_and_is_well_formed(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    result = _map(d, caps, number, now)
    for command in result.commands + map_clear(d, caps, number=number).commands:
        validate(caps.version, command.action, command.payload)
        for key, value in _walk(command.payload):
            if isinstance(value, float):
                assert Decimal(repr(value)).as_tuple().exponent >= -6, (key, value)  # type: ignore[operator]
            if key in ("startTime", "startSchedule", "validFrom", "validTo"):
                assert _TIMESTAMP.match(value), value
            if key in ("id", "chargingProfileId"):
                assert 0 < value <= 2**31 - 1


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_mapping_is_deterministic_and_its_shape_ignores_now(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    first = _map(d, caps, number, now)
    assert _map(d, caps, number, now) == first
    other = _map(d, caps, number, now + timedelta(days=3))
    assert [(c.action, c.controls) for c in other.commands] == [(c.action, c.controls) for c in first.commands]
    assert other.unsupported == first.unsupported


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_clear_removes_exactly_what_was_installed(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    installed = _map(d, caps, number, now)
    cleared = map_clear(d, caps, number=number)
    assert len(cleared.commands) == len(installed.commands)
    for put, clear in zip(installed.commands, cleared.commands, strict=True):
        assert clear.controls == put.controls
        if put.action == "SetDERControl":
            assert clear.action == "ClearDERControl"
            assert clear.payload == {"isDefault": put.payload["isDefault"], "controlId": put.payload["controlId"]}
        elif caps.version is OcppVersion.V16:
            assert clear.payload == {"id": put.payload["csChargingProfiles"]["chargingProfileId"]}
        else:
            assert clear.payload == {"chargingProfileId": put.payload["chargingProfile"]["id"]}


@settings(max_examples=60, deadline=None)
@given(directives(), capabilities(), st.lists(numbers, min_size=2, max_size=2, unique=True), nows)
def test_ids_differ_between_directives(d: Directive, caps: StationCapabilities, pair: list[int], now: datetime) -> None:
    ids = [{_ident(c.payload) for c in _map(d, caps, n, now).commands} for n in pair]
    assert not ids[0] & ids[1]


def _ident(payload: dict[str, Any]) -> object:
    if "controlId" in payload:
        return payload["controlId"]
    if "csChargingProfiles" in payload:
        return payload["csChargingProfiles"]["chargingProfileId"]
    return payload["chargingProfile"]["id"]


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_der_controls_follow_r04(d: Directive, caps: StationCapabilities, number: int, now: datetime) -> None:
    for command in _map(d, caps, number, now).commands:
        if command.action != "SetDERControl":
            continue
        payload = command.payload
        assert caps.version is OcppVersion.V21
        assert payload["controlType"] in caps.der_modes  # R04.FR.01
        assert len(payload["controlId"]) <= 36
        settings_sent = _SETTING_FIELDS & payload.keys()
        assert len(settings_sent) == 1  # R04.FR.16/17
        (body,) = (payload[f] for f in settings_sent)
        if payload["isDefault"]:  # R04.FR.12
            assert "startTime" not in body
            assert "duration" not in body
        else:
            assert payload["controlType"] not in ("EnterService", "Gradients")  # R04.FR.14
            assert "startTime" in body
            assert "duration" in body


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_profiles_are_safe(d: Directive, caps: StationCapabilities, number: int, now: datetime) -> None:
    allowed = {OCPP_MODE[m] for m in caps.operation_modes} | {"ChargingOnly"}
    for command in _map(d, caps, number, now).commands:
        for period in _periods(command.payload):
            assert period.get("limit", 0) >= 0  # never a negative (legacy discharge) limit
            if caps.version is not OcppVersion.V21:
                assert set(period) <= {"startPeriod", "limit", "numberPhases"}
                continue
            mode = period.get("operationMode", "ChargingOnly")
            assert mode in allowed  # K01.FR.115
            if mode in ("CentralSetpoint", "CentralFrequency"):  # Q03.FR.02, Q07.FR.03
                assert "limit" not in period
                assert "dischargeLimit" not in period
            if "setpoint" in period:
                assert OperationMode.CENTRAL_SETPOINT in caps.operation_modes or mode == "CentralFrequency"
            if mode == "LocalFrequency":  # Q08.FR.01
                assert not {"limit", "dischargeLimit", "setpoint", "setpointReactive"} & period.keys()
            profile = command.payload["chargingProfile"]
            if profile["chargingProfilePurpose"] == "ChargingStationMaxProfile":  # K01.FR.111
                assert mode == "ChargingOnly"


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_a_station_without_central_setpoint_never_gets_a_setpoint(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    caps = caps.model_copy(
        update={
            "operation_modes": caps.operation_modes - {OperationMode.CENTRAL_SETPOINT, OperationMode.CENTRAL_FREQUENCY}
        }
    )
    for command in _map(d, caps, number, now).commands:
        assert all("setpoint" not in p and "setpointReactive" not in p for p in _periods(command.payload))


@_EXAMPLES
@given(directives(), capabilities(), numbers, nows)
def test_limits_never_exceed_what_was_asked(
    d: Directive, caps: StationCapabilities, number: int, now: datetime
) -> None:
    asked = d.controls.import_limit_w
    for command in _map(d, caps, number, now).commands:
        if "import_limit_w" not in command.controls:
            continue
        for period in _periods(command.payload):
            if "limit" in period and asked is not None:
                per_phase_amps = "numberPhases" in period
                watts = period["limit"] * (caps.nominal_voltage_v * caps.phases if per_phase_amps else 1)
                assert watts <= asked * (1 + 1e-9)
