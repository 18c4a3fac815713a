"""OpenADR 2.0b event (the dict openleadr's client hands `on_event`) + config + now -> canonical Directives.

Pure: no I/O, time is an argument. An event has an active period and one or more signals, each a sequence of
intervals with one value; one directive is made per (signal, interval), with the id `directive_prefix(event_id)`
followed by `<signal position>.<interval position>`, so the adapter can replace or cancel an event's directives
together.

Timing: an interval starts where the previous one ended (the first at the active period's dtstart), unless it
carries its own dtstart (openleadr's VTN sends one); a zero or missing duration means "until cancelled"; the
active period's duration, when not zero, truncates the intervals; intervals that have ended by `now` are skipped.
The active period's tolerance (startafter) becomes randomize_start_s, capped at the model's 3600 s.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from gateway.model import Controls, Directive, Price, Source, SourceProtocol, Target, TargetScope
from protocols.openadr2b.policy import NormalizeConfig

#: EMIX SI scale codes (siScaleCode) -> factor.
SI_SCALE = {
    "p": 1e-12, "n": 1e-9, "micro": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1,
    "none": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
}  # fmt: skip
MAX_DURATION_S = 31_536_000.0
MAX_RANDOMIZE_S = 3600
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,40}$")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A signal interval (or the whole event: signal_name None) that produced no directive, and why."""

    signal_name: str | None
    interval: int | None
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Normalized:
    directives: tuple[Directive, ...]
    rejected: tuple[Rejected, ...]


class NormalizeError(Exception):
    """Why a signal or event cannot become a directive; `code` is the audit code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def directive_prefix(event_id: str) -> str:
    """Id prefix shared by all directives of one event (hashed when the event id does not fit the model's ids)."""
    if _ID.match(event_id):
        return f"oa2.{event_id}."
    return f"oa2.h{hashlib.sha256(event_id.encode()).hexdigest()[:24]}."


def _seconds(value: Any) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return None


@dataclass(frozen=True, slots=True)
class _Slot:
    position: int
    start: datetime
    duration_s: float | None  # None = until cancelled
    value: Any


def _slots(period: Mapping[str, Any], intervals: Sequence[Mapping[str, Any]], now: datetime) -> list[_Slot]:
    cursor = period.get("dtstart")
    if not isinstance(cursor, datetime) or cursor.tzinfo is None:
        raise NormalizeError("invalid_event", f"active period: dtstart {cursor!r} is not an aware date-time")
    period_s = _seconds(period.get("duration"))
    event_end = cursor + timedelta(seconds=period_s) if period_s and period_s < MAX_DURATION_S else None
    slots: list[_Slot] = []
    for position, interval in enumerate(intervals):
        own = interval.get("dtstart")
        start = own if isinstance(own, datetime) and own.tzinfo is not None else cursor
        duration = _seconds(interval.get("duration"))
        end = start + timedelta(seconds=duration) if duration and duration < MAX_DURATION_S else None
        if event_end is not None and (end is None or end > event_end):
            end = event_end
        length = None if end is None else (end - start).total_seconds()
        if (end is None or end > now) and (length is None or length > 0):
            slots.append(_Slot(position, start, length, interval.get("signal_payload")))
        if end is None:
            break
        cursor = end
    return slots


def _randomize_s(period: Mapping[str, Any]) -> int:
    tolerance = period.get("tolerance")
    if not isinstance(tolerance, Mapping):
        return 0
    tolerate = tolerance.get("tolerate", tolerance)
    after = _seconds(tolerate.get("startafter")) if isinstance(tolerate, Mapping) else None
    return min(int(after or 0), MAX_RANDOMIZE_S)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NormalizeError("invalid_payload", f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _watts(value: float, signal: Mapping[str, Any], what: str) -> float:
    """A power value in the signal's itemBase units -> W. No itemBase: refused (2.0b leaves no default unit)."""
    measurement = signal.get("measurement")
    if not isinstance(measurement, Mapping):
        raise NormalizeError("no_units", f"{what}: the signal has no itemBase, so its power unit is unknown")
    name, unit, scale = measurement.get("name"), str(measurement.get("unit") or ""), measurement.get("scale") or "none"
    if name != "powerReal" or unit.upper() != "W" or scale not in SI_SCALE:
        raise NormalizeError("unsupported_units", f"{what}: itemBase {name} {scale} {unit!r} is not real power")
    return value * SI_SCALE[scale]


def _fraction_limit(config: NormalizeConfig, fraction: float, why: str) -> Controls:
    if config.reference_import_w is None:
        raise NormalizeError("not_configured", f"{why}: reference_import_w is not configured")
    return Controls(import_limit_w=fraction * config.reference_import_w)


def _baseline(baseline_w: float | None, what: str) -> float:
    if baseline_w is None:
        raise NormalizeError("no_baseline", f"{what}: no current demand of the target is known")
    return max(0.0, baseline_w)


def _level(config: NormalizeConfig, value: float, what: str) -> Controls | None:
    if not value.is_integer() or int(value) not in config.simple.levels:
        raise NormalizeError("invalid_payload", f"{what}: level {value} is not one of 0-3")
    fraction = config.simple.levels[int(value)]
    return None if fraction is None else _fraction_limit(config, fraction, f"{what} level {int(value)}")


def _load_control(kind: str, value: float, signal: Mapping[str, Any], config: NormalizeConfig,
                  baseline_w: float | None) -> Controls | None:  # fmt: skip
    what = f"LOAD_CONTROL {kind}"
    if kind == "x-loadControlCapacity":
        if not 0 <= value <= 1:
            raise NormalizeError("invalid_payload", f"{what}: {value} is not a fraction of capacity (0-1)")
        return _fraction_limit(config, value, what)
    if kind == "x-loadControlLevelOffset":
        if not value.is_integer():
            raise NormalizeError("invalid_payload", f"{what}: {value} is not an integer level")
        if value >= 0:
            return None
        shed = config.level_offset.shed
        level = max(int(value), min(shed))
        deeper = [k for k in shed if k <= level]
        return _fraction_limit(config, shed[max(deeper)], f"{what} {int(value)}")
    if kind == "x-loadControlPercentOffset":
        if value < -100:
            raise NormalizeError("invalid_payload", f"{what}: {value} % would be below zero load")
        if value >= 0:
            return None
        return Controls(import_limit_w=_baseline(baseline_w, what) * (1 + value / 100))
    if kind == "x-loadControlSetpoint":
        if value < 0:
            raise NormalizeError("invalid_payload", f"{what}: a load setpoint cannot be negative ({value})")
        return Controls(import_limit_w=_watts(value, signal, what))
    raise NormalizeError("unsupported_signal", f"LOAD_CONTROL: signal type {kind!r} is not supported")


def _load_dispatch(kind: str, value: float, signal: Mapping[str, Any], config: NormalizeConfig,
                   baseline_w: float | None) -> Controls | None:  # fmt: skip
    what = f"LOAD_DISPATCH {kind}"
    if kind == "setpoint":
        return Controls(active_power_setpoint_w=_watts(value, signal, what))
    if kind == "delta":
        delta = _watts(value, signal, what)
        return None if delta >= 0 else Controls(import_limit_w=max(0.0, _baseline(baseline_w, what) + delta))
    if kind == "multiplier":
        if value < 0:
            raise NormalizeError("invalid_payload", f"{what}: {value} is negative")
        return None if value >= 1 else Controls(import_limit_w=_baseline(baseline_w, what) * value)
    if kind == "level":
        return _level(config, value, what)
    raise NormalizeError("unsupported_signal", f"LOAD_DISPATCH: signal type {kind!r} is not supported")


def _price(name: str, kind: str, value: float, signal: Mapping[str, Any], config: NormalizeConfig) -> Controls:
    if kind != "price":
        raise NormalizeError("unsupported_signal", f"{name} {kind}: only absolute prices (type price) are supported")
    measurement = signal.get("measurement")
    currency = config.price.default_currency
    if isinstance(measurement, Mapping):
        if measurement.get("name") != "currencyPerKWh" or (measurement.get("scale") or "none") != "none":
            unit = f"{measurement.get('name')} {measurement.get('scale')}"
            raise NormalizeError("unsupported_units", f"{name}: itemBase {unit} is not a price per kWh")
        currency = str(measurement.get("unit") or currency).upper()
    limit = None
    tiers = [t for t in config.price.tiers if value >= t.at_or_above_per_kwh]
    if tiers:
        tier = max(tiers, key=lambda t: t.at_or_above_per_kwh)
        limit = _fraction_limit(config, tier.import_fraction, f"price tier {tier.at_or_above_per_kwh}").import_limit_w
    return Controls(price=Price(per_kwh=value, currency=currency), import_limit_w=limit)


def signal_controls(
    signal: Mapping[str, Any], payload: Any, config: NormalizeConfig, baseline_w: float | None
) -> Controls | None:
    """Controls for one interval of one signal; None = nothing to do in that interval (normal operation)."""
    name, kind = str(signal.get("signal_name")), str(signal.get("signal_type"))
    value = _number(payload, f"{name} {kind}")
    if name in ("SIMPLE", "simple"):
        if kind != "level":
            raise NormalizeError("unsupported_signal", f"SIMPLE: signal type {kind!r} is not level")
        return _level(config, value, "SIMPLE")
    if name == "LOAD_CONTROL":
        return _load_control(kind, value, signal, config, baseline_w)
    if name == "LOAD_DISPATCH":
        return _load_dispatch(kind, value, signal, config, baseline_w)
    if name in ("ELECTRICITY_PRICE", "ENERGY_PRICE"):
        return _price(name, kind, value, signal, config)
    if name == "CHARGE_STATE":
        raise NormalizeError("unsupported_control", "CHARGE_STATE: the canonical model has no state-of-charge control")
    raise NormalizeError("unsupported_signal", f"signal {name!r} is not supported")


def _target_values(event: Mapping[str, Any]) -> list[str]:
    values: list[str] = []
    for target in event.get("targets") or []:
        if not isinstance(target, Mapping):
            continue
        for key, value in target.items():
            if key == "ven_id":
                continue
            if isinstance(value, Mapping):
                value = value.get("mrid")
            if isinstance(value, str | int):
                values.append(str(value))
    return values


def resolve_target(event: Mapping[str, Any], config: NormalizeConfig) -> Target:
    """Event targets -> one canonical target; an event for this VEN alone is for the default target.
    Raises NormalizeError for unknown or mixed targets."""
    values = _target_values(event)
    if not values:
        return config.default_target
    known = [config.targets[v] for v in values if v in config.targets]
    if not known:
        if config.unknown_targets == "default":
            return config.default_target
        raise NormalizeError("unknown_target", f"no configured target among {values[:10]}")
    if any(t.scope is TargetScope.FLEET for t in known):
        return Target()
    if len({t.scope for t in known}) > 1:
        raise NormalizeError("mixed_targets", f"targets {values[:10]} map to both stations and groups")
    return Target(scope=known[0].scope, ids=sorted({i for t in known for i in t.ids}))


def event_signals(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event's signals (openleadr nests them one level deeper for some messages)."""
    signals = event.get("event_signals") or []
    if isinstance(signals, Mapping):
        signals = signals.get("event_signals") or []
    return [s for s in signals if isinstance(s, Mapping)]


def normalize_event(
    event: Mapping[str, Any], config: NormalizeConfig, now: datetime, *, server: str, baseline_w: float | None = None
) -> Normalized:
    """All directives an event asks for at `now`, and every signal interval that could not become one (with the
    reason). `baseline_w` is the target's current import, the reference of offsets, deltas and multipliers."""
    descriptor = event.get("event_descriptor") or {}
    event_id = str(descriptor.get("event_id") or "")
    if not event_id:
        return Normalized((), (Rejected(None, None, "invalid_event", "the event has no event_id"),))
    if descriptor.get("test_event") is True:
        return Normalized((), (Rejected(None, None, "test_event", f"event {event_id} is a test event: no action"),))
    try:
        target = resolve_target(event, config)
        period = event.get("active_period") or {}
        randomize = _randomize_s(period)
    except NormalizeError as exc:
        return Normalized((), (Rejected(None, None, exc.code, exc.reason),))
    source = Source(
        protocol=SourceProtocol.OPENADR2B,
        server=server[:512],
        program=str(descriptor.get("market_context") or "")[:256] or None,
        signal_id=event_id[:256],
    )
    priority = descriptor.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or priority <= 0:
        priority = config.default_priority
    prefix = directive_prefix(event_id)
    directives: list[Directive] = []
    rejected: list[Rejected] = []
    for index, signal in enumerate(event_signals(event)):
        name = str(signal.get("signal_name"))
        try:
            slots = _slots(period, signal.get("intervals") or [], now)
        except NormalizeError as exc:
            rejected.append(Rejected(name, None, exc.code, exc.reason))
            continue
        for slot in slots:
            try:
                controls = signal_controls(signal, slot.value, config, baseline_w)
                if controls is None:
                    continue
                directives.append(
                    Directive(
                        id=f"{prefix}{index}.{slot.position}",
                        source=source,
                        priority=min(priority, 1_000_000),
                        start=slot.start,
                        duration_s=slot.duration_s,
                        randomize_start_s=randomize,
                        target=target,
                        controls=controls,
                    )
                )
            except NormalizeError as exc:
                rejected.append(Rejected(name, slot.position, exc.code, exc.reason))
            except ValidationError as exc:
                reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                rejected.append(Rejected(name, slot.position, "invalid_value", f"{name}: {reason}"))
    return Normalized(tuple(directives), tuple(rejected))
