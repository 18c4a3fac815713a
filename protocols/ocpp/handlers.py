"""Answers to station-initiated CALLs, per OCPP version. Pure: the connection does the I/O.

The gateway is the CSMS for DER purposes. Messages it needs (boot, heartbeat, status, meter values, DER alarms and
reports) get their proper answer; any other action whose response schema has no required field gets the empty
CALLRESULT it allows, and the rest get CALLERROR NotSupported (the action is known but not offered here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.interfaces import StationEvents
from gateway.model import Alarm, OcppVersion
from protocols.ocpp import schemas
from protocols.ocpp.frames import ErrorCode
from protocols.ocpp.sessions import session_change, transaction_id_16


@dataclass(frozen=True, slots=True)
class Answer:
    """The CALLRESULT payload, or the CALLERROR (code, description) when `payload` is None."""

    payload: dict[str, Any] | None
    error_code: str | None = None
    description: str = ""


def rfc3339(at: datetime) -> str:
    """OCPP dateTime: RFC 3339 UTC, at most 3 fractional digits (part 2, primitive datatypes)."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def answer(version: OcppVersion, action: str, payload: Mapping[str, Any], *, now: datetime, heartbeat_s: int) -> Answer:
    """The response to a schema-valid CALL `action` from a station."""
    stamp = rfc3339(now)
    if schemas.is_send(action):
        return Answer(None, ErrorCode.RPC_FRAMEWORK_ERROR, f"{action} must be sent as a SEND frame (6), not a CALL")
    if action == "BootNotification":
        return Answer({"currentTime": stamp, "interval": heartbeat_s, "status": "Accepted"})
    if action == "Heartbeat":
        return Answer({"currentTime": stamp})
    if action == "Authorize":
        # CSMS mode authorizes every token: the gateway manages grid duties, not customers (docs/configuration.md).
        if version is OcppVersion.V16:
            return Answer({"idTagInfo": {"status": "Accepted"}})
        return Answer({"idTokenInfo": {"status": "Accepted"}})
    if version is OcppVersion.V16:
        if action == "StartTransaction":
            return Answer({"transactionId": transaction_id_16(payload), "idTagInfo": {"status": "Accepted"}})
        if action == "DataTransfer":
            return Answer({"status": "UnknownVendorId"})
    elif action == "DataTransfer":
        return Answer({"status": "UnknownVendorId"})
    elif action == "NotifyEVChargingNeeds":
        # No ISO 15118 schedule negotiation here: the EV keeps its own schedule within the grid limits.
        return Answer({"status": "NoChargingProfile"})
    if not schemas.schema(version, action, True).get("required"):
        return Answer({})
    return Answer(None, ErrorCode.NOT_SUPPORTED, f"{action} is not supported by this gateway")


#: Scale of each unit to the model's W, var or Hz (OCPP UnitOfMeasure names; 1.6 spells them the same way).
_UNIT_SCALE = {"W": 1.0, "kW": 1000.0, "var": 1.0, "kvar": 1000.0, "Hz": 1.0}
_PHASES = ("L1", "L2", "L3")


def _scaled(sv: Mapping[str, Any], version: OcppVersion, default_unit: str) -> float | None:
    if version is OcppVersion.V16:
        unit, multiplier = sv.get("unit") or default_unit, 0
    else:
        uom = sv.get("unitOfMeasure") or {}
        unit, multiplier = uom.get("unit") or default_unit, int(uom.get("multiplier", 0))
    scale = _UNIT_SCALE.get(unit)
    if scale is None:
        return None
    try:
        value = float(sv["value"])
    except (TypeError, ValueError):
        return None
    return None if value != value else value * scale * 10.0**multiplier  # NaN is no reading


def _phase_matches(given: str | None, wanted: str | None) -> bool:
    """None wants the total (no phase); L1 also takes the line-to-neutral L1-N."""
    return not given if wanted is None else given in (wanted, f"{wanted}-N")


def _sampled(
    meter_values: Iterable[Mapping[str, Any]],
    version: OcppVersion,
    positive: str,
    negative: str | None,
    default_unit: str,
    phase: str | None = None,
) -> float | None:
    """Net value (+ `positive`, - `negative`) of one phase (None = the total) from the last meter value carrying it."""
    latest: float | None = None
    for mv in meter_values:
        total, found = 0.0, False
        for sv in mv.get("sampledValue", []):
            measurand = sv.get("measurand", "Energy.Active.Import.Register")
            if measurand not in (positive, negative) or not _phase_matches(sv.get("phase"), phase):
                continue
            value = _scaled(sv, version, default_unit)
            if value is None:
                continue
            total += value if measurand == positive else -value
            found = True
        if found:
            latest = total
    return latest


def _sampled_power(meter_values: Iterable[Mapping[str, Any]], version: OcppVersion) -> float | None:
    """Net active power (W, + import) from the last meter value that carries it."""
    return _sampled(meter_values, version, "Power.Active.Import", "Power.Active.Export", "W")


@dataclass(frozen=True, slots=True)
class Measured:
    """What else a meter value says about the grid side: reactive power (var, + absorbing, as OCPP's
    Power.Reactive.Import is), frequency (Hz) and active power per phase (W, + import)."""

    vars: float | None
    hz: float | None
    phase_w: tuple[float, float, float] | None


def measurements_from(version: OcppVersion, action: str, payload: Mapping[str, Any]) -> Measured | None:
    """Reactive power, frequency and per-phase power from MeterValues or TransactionEvent, None without any."""
    if action not in ("MeterValues", "TransactionEvent"):
        return None
    mvs = payload.get("meterValue", [])
    var = _sampled(mvs, version, "Power.Reactive.Import", "Power.Reactive.Export", "var")
    hz = _sampled(mvs, version, "Frequency", None, "Hz")
    l1, l2, l3 = (_sampled(mvs, version, "Power.Active.Import", "Power.Active.Export", "W", p) for p in _PHASES)
    phase_w = (l1, l2, l3) if l1 is not None and l2 is not None and l3 is not None else None
    if var is None and hz is None and phase_w is None:
        return None
    return Measured(var, hz, phase_w)


_ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0}
_REGISTERS = {"Energy.Active.Import.Register": "import_wh", "Energy.Active.Export.Register": "export_wh"}


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """The station's energy registers (Wh, cumulative) from one message: `meter` is the 1.6 connectorId or the 2.x
    evseId (0 = the station's main meter), `at` the meter value's timestamp (the receive time when it has none
    or claims a time after it)."""

    meter: int
    at: datetime
    import_wh: float | None = None
    export_wh: float | None = None


def _energy_scale(unit: str | None, multiplier: int = 0) -> float | None:
    factor = _ENERGY_UNITS.get(unit or "Wh")
    return None if factor is None else factor * 10.0**multiplier


def _stamp(value: Any, now: datetime) -> datetime:
    if not isinstance(value, str):
        return now
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return now
    return now if at.tzinfo is None or at > now else at


def meter_of(version: OcppVersion, action: str, payload: Mapping[str, Any]) -> int | None:
    """Which meter a MeterValues/TransactionEvent reads: the 1.6 connectorId or 2.x evseId (0 = the station's main
    meter); None when unknown (a TransactionEvent without `evse`, allowed after a transaction's first event)."""
    if action == "MeterValues":
        meter = payload.get("connectorId" if version is OcppVersion.V16 else "evseId", 0)
        return meter if isinstance(meter, int) else 0
    if action == "TransactionEvent":
        found = (payload.get("evse") or {}).get("id")
        return found if isinstance(found, int) else None
    return None


def energy_from(version: OcppVersion, action: str, payload: Mapping[str, Any], now: datetime) -> EnergyReading | None:
    """The last meter value's import/export energy registers (phase-less, Wh) from MeterValues or TransactionEvent,
    None when the message has none. 1.6 `unit` Wh/kWh (default Wh); 2.x `unitOfMeasure` {unit, multiplier}."""
    # An unknown meter is skipped: taking it for the main meter (0) would mix an EVSE register with the station's.
    meter = meter_of(version, action, payload)
    if meter is None:
        return None
    found: EnergyReading | None = None
    for mv in payload.get("meterValue", []):
        registers: dict[str, float] = {}
        for sv in mv.get("sampledValue", []):
            field_name = _REGISTERS.get(sv.get("measurand", ""))
            if field_name is None or sv.get("phase") or sv.get("location") in ("EV", "Body", "Cable"):
                continue
            if version is OcppVersion.V16:
                scale = _energy_scale(sv.get("unit"))
            else:
                uom = sv.get("unitOfMeasure") or {}
                scale = _energy_scale(uom.get("unit"), int(uom.get("multiplier", 0)))
            try:
                value = float(sv["value"]) * scale if scale is not None else None
            except (TypeError, ValueError, OverflowError):
                value = None
            if value is not None and math.isfinite(value):
                registers[field_name] = value
        if registers:
            found = EnergyReading(int(meter) if isinstance(meter, int) else 0, _stamp(mv.get("timestamp"), now),
                                  **registers)  # fmt: skip
    return found


def power_from(version: OcppVersion, action: str, payload: Mapping[str, Any]) -> float | None:
    """Fleet power from MeterValues or TransactionEvent, None when the message has no power reading."""
    if action in ("MeterValues", "TransactionEvent"):
        return _sampled_power(payload.get("meterValue", []), version)
    return None


def alarm_from(station_id: str, payload: Mapping[str, Any], at: datetime) -> Alarm:
    """Canonical alarm from a NotifyDERAlarm payload (already schema-valid)."""
    stamp = payload.get("timestamp")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else at
    except ValueError:
        when = at
    return Alarm(
        station_id=station_id,
        control=str(payload["controlType"]),
        grid_event_fault=payload.get("gridEventFault"),
        ended=bool(payload.get("alarmEnded", False)),
        at=when,
        extra_info=payload.get("extraInfo"),
        raw=dict(payload),
    )


def report(
    events: StationEvents,
    version: OcppVersion,
    station_id: str,
    action: str,
    payload: dict[str, Any],
    message_id: str,
    now: datetime,
) -> None:
    """Tell the runtime what a station said (a schema-valid CALL other than BootNotification): alarms, power,
    and every message for audit and state. Shared by the CSMS endpoint and the sidecar proxy."""
    if action == "NotifyDERAlarm":
        events.station_alarm(alarm_from(station_id, payload, now))
        return
    power = power_from(version, action, payload)
    if power is not None:
        events.station_power(station_id, power, now, meter=meter_of(version, action, payload))
    measured = measurements_from(version, action, payload)
    if measured is not None:
        events.station_measured(station_id, measured.vars, measured.hz, measured.phase_w, now)
    energy = energy_from(version, action, payload, now)
    if energy is not None:
        events.station_energy(station_id, energy.meter, energy.import_wh, energy.export_wh, energy.at)
    session = session_change(version, action, payload)
    if session is not None:
        events.station_session(station_id, session.evse, session.transaction, session.present, now)
    events.station_message(station_id, action, payload, message_id, now)
