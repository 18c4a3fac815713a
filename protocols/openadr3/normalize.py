"""OpenADR 3 event (+ program + config + now) -> canonical Directives. Pure: no I/O, time is an argument.

A Directive has one start and one duration, an event has a list of intervals each with several payloads, so one
directive is made per (interval, payload), and per sub-interval when a PRICE packs several values into one
interval (User Guide 7.3, multi-valued payloads). All directives of an event share the id prefix
`directive_prefix(event_id)` followed by `<interval position>.<payload position>[.<sub-interval>]`,
so the adapter can cancel them together.

Timing (User Guide 7.3): an interval's own intervalPeriod overrides the event's; a missing or 0001-01-01 start
follows the previous interval (the first one: the event's start, or now); a missing, zero (3.0.1 "PT0S") or
longer-than-a-year duration means "until cancelled"; intervals that have ended by `now` are skipped;
event.duration truncates the intervals (looping them is not done). randomizeStart becomes the directive's
randomize_start_s (capped at the model's 3600 s) for the scheduler to apply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from gateway.model import Controls, Curve, CurvePoint, Directive, Price, Source, SourceProtocol, Target
from protocols.openadr3.policy import NormalizeConfig
from protocols.openadr3.wire import Event, EventPayloadDescriptor, Point, Program, Value, ValuesMap

#: Power units (eventPayloadDescriptor.units) -> W. KW is OpenADR's; W and MW are tolerated.
POWER_UNITS = {"KW": 1000.0, "W": 1.0, "MW": 1_000_000.0}
#: Price denominators -> kWh per unit. None/KWH: price per kWh.
PRICE_UNITS = {"KWH": 1.0, "MWH": 1000.0, "WH": 0.001}
MAX_DURATION_S = 31_536_000.0
MAX_RANDOMIZE_S = 3600


@dataclass(frozen=True, slots=True)
class Rejected:
    """A payload (or whole event, interval_id None) that produced no directive, and why."""

    payload_type: str | None
    interval_id: int | None
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class Normalized:
    directives: tuple[Directive, ...]
    rejected: tuple[Rejected, ...]


class NormalizeError(Exception):
    """Why a payload or event cannot become a directive; `code` is the audit code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def directive_prefix(event_id: str) -> str:
    """Id prefix shared by all directives of one event (hashed when the event id is too long for the model)."""
    if len(event_id) <= 32:
        return f"oa3.{event_id}."
    return f"oa3.h{hashlib.sha256(event_id.encode()).hexdigest()[:24]}."


@dataclass(frozen=True, slots=True)
class _Slot:
    position: int
    interval_id: int
    payloads: tuple[ValuesMap, ...]
    start: datetime | None  # None = now
    duration_s: float | None  # None = until cancelled
    randomize_s: int


def _slots(event: Event, now: datetime) -> list[_Slot]:
    period = event.interval_period
    cursor = period.start if period else None
    default_duration = period.duration_s if period else None
    randomize = period.randomize_start_s if period else None
    event_end: datetime | None = None
    if event.duration_s and event.duration_s < MAX_DURATION_S:
        event_end = (cursor or now) + timedelta(seconds=event.duration_s)
    slots: list[_Slot] = []
    for position, interval in enumerate(event.intervals):
        own = interval.interval_period
        start = own.start if own and own.start else cursor
        duration = own.duration_s if own and own.duration_s is not None else default_duration
        if own and own.randomize_start_s is not None:
            randomize = own.randomize_start_s
        if not duration or duration >= MAX_DURATION_S:
            duration = None
        begin = start or now
        end = None if duration is None else begin + timedelta(seconds=duration)
        if event_end is not None and (end is None or end > event_end):
            end = event_end
            duration = (end - begin).total_seconds()
        if (end is None or end > now) and (duration is None or duration > 0):
            randomize_s = min(int(randomize or 0), MAX_RANDOMIZE_S)
            slots.append(_Slot(position, interval.id, tuple(interval.payloads), start, duration, randomize_s))
        if end is None:
            break
        cursor = end
    return slots


def _descriptor(payload_type: str, event: Event, program: Program | None) -> EventPayloadDescriptor | None:
    candidates: list[EventPayloadDescriptor] = [*event.payload_descriptors]
    if program is not None:
        candidates.extend(program.payload_descriptors)
    for descriptor in candidates:
        if descriptor.payload_type == payload_type:
            return descriptor
    return None


def _number(payload: ValuesMap, *, minimum: float | None = None) -> float:
    if len(payload.values) != 1:
        raise NormalizeError("invalid_payload", f"{payload.type}: expected 1 value, got {len(payload.values)}")
    value = payload.values[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NormalizeError("invalid_payload", f"{payload.type}: expected a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise NormalizeError("invalid_payload", f"{payload.type}: {value} is below {minimum}")
    return float(value)


def _watts(value: float, payload_type: str, descriptor: EventPayloadDescriptor | None) -> float:
    units = (descriptor.units if descriptor else None) or "KW"
    factor = POWER_UNITS.get(units.upper())
    if factor is None:
        raise NormalizeError("unsupported_units", f"{payload_type}: units {units!r} are not a power unit")
    return value * factor


def _fraction_limit(config: NormalizeConfig, fraction: float, why: str) -> Controls:
    if config.reference_import_w is None:
        raise NormalizeError("not_configured", f"{why}: reference_import_w is not configured")
    return Controls(import_limit_w=fraction * config.reference_import_w)


def _points(values: Sequence[Value]) -> list[Point]:
    flat: list[Point] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, Point):
                raise NormalizeError("invalid_payload", f"CURVE: expected points, got {item!r}")
            flat.append(item)
    return flat


def _controls(
    payload: ValuesMap,
    event: Event,
    program: Program | None,
    config: NormalizeConfig,
    baseline_w: float | None,
) -> list[Controls | None]:
    """Controls for one payload: one per sub-interval; None = nothing to do in that (sub-)interval."""
    kind = payload.type
    descriptor = _descriptor(kind, event, program)
    if kind == "IMPORT_CAPACITY_LIMIT":
        return [Controls(import_limit_w=_watts(_number(payload, minimum=0), kind, descriptor))]
    if kind == "EXPORT_CAPACITY_LIMIT":
        return [Controls(export_limit_w=_watts(_number(payload, minimum=0), kind, descriptor))]
    if kind == "DISPATCH_SETPOINT":
        return [Controls(active_power_setpoint_w=_watts(_number(payload, minimum=0), kind, descriptor))]
    if kind == "DISPATCH_SETPOINT_RELATIVE":
        reduction = _watts(_number(payload, minimum=0), kind, descriptor)
        if baseline_w is None:
            raise NormalizeError("no_baseline", f"{kind}: no baseline demand of the target is known")
        return [Controls(import_limit_w=max(0.0, baseline_w - reduction))]
    if kind == "CONTROL_SETPOINT":
        value = payload.values[0] if len(payload.values) == 1 else None
        if isinstance(value, str):
            mode = config.operation_modes.get(value.upper())
            if mode is None:
                raise NormalizeError("unsupported_value", f"{kind}: {value!r} is not a configured operation mode")
            return [Controls(operation_mode=mode)]
        return [Controls(active_power_setpoint_w=_watts(_number(payload), kind, descriptor))]
    if kind == "CHARGE_STATE_SETPOINT":
        raise NormalizeError(
            "unsupported_control", f"{kind}: the canonical model has no target state-of-charge control"
        )
    if kind == "SIMPLE":
        level = _number(payload, minimum=0)
        if not level.is_integer() or int(level) not in config.simple.levels:
            raise NormalizeError("invalid_payload", f"{kind}: level {level} is not one of 0-3")
        fraction = config.simple.levels[int(level)]
        return [None if fraction is None else _fraction_limit(config, fraction, f"SIMPLE level {int(level)}")]
    if kind in ("PRICE", "EXPORT_PRICE"):
        return _prices(payload, descriptor, config)
    if kind == "CURVE":
        name = program.program_name if program else ""
        spec = config.curves.get(name) or config.curves.get("*")
        if spec is None:
            raise NormalizeError("not_configured", f"CURVE: no curve configuration for program {name!r}")
        points = [CurvePoint(x=p.x * spec.x_scale, y=p.y * spec.y_scale) for p in _points(payload.values)]
        return [Controls(curves=[Curve(kind=spec.kind, x_unit=spec.x_unit, y_unit=spec.y_unit, points=points)])]
    if kind.startswith("ALERT_"):
        fraction = config.alerts.fractions.get(kind)
        if fraction is None:
            raise NormalizeError("alert_noted", f"{kind}: audited; the alert policy asks for no action")
        return [_fraction_limit(config, fraction, kind)]
    raise NormalizeError("unknown_payload_type", f"payload type {kind!r} is not supported")


def _prices(
    payload: ValuesMap, descriptor: EventPayloadDescriptor | None, config: NormalizeConfig
) -> list[Controls | None]:
    if not payload.values:
        raise NormalizeError("invalid_payload", f"{payload.type}: no values")
    units = ((descriptor.units if descriptor else None) or "KWH").upper()
    per = PRICE_UNITS.get(units)
    if per is None:
        raise NormalizeError("unsupported_units", f"{payload.type}: price per {units!r} is not an energy unit")
    currency = (descriptor.currency if descriptor else None) or config.price.default_currency
    export = payload.type == "EXPORT_PRICE"
    out: list[Controls | None] = []
    for value in payload.values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NormalizeError("invalid_payload", f"{payload.type}: expected numbers, got {value!r}")
        per_kwh = float(value) / per
        limit = None
        if not export:
            tiers = [t for t in config.price.tiers if per_kwh >= t.at_or_above_per_kwh]
            if tiers:
                tier = max(tiers, key=lambda t: t.at_or_above_per_kwh)
                limit = _fraction_limit(config, tier.import_fraction, f"price tier {tier.at_or_above_per_kwh}")
        price = Price(per_kwh=per_kwh, currency=currency.upper(), export=export)
        out.append(Controls(price=price, import_limit_w=limit.import_limit_w if limit else None))
    return out


def resolve_target(event: Event, config: NormalizeConfig) -> Target:
    """Event targets -> one canonical target. Raises NormalizeError for unknown or mixed targets."""
    if not event.targets:
        return config.default_target
    known = [config.targets[t] for t in event.targets if t in config.targets]
    if not known:
        if config.unknown_targets == "default":
            return config.default_target
        raise NormalizeError("unknown_target", f"no configured target among {event.targets[:10]}")
    if any(t.scope.value == "fleet" for t in known):
        return Target()
    scopes = {t.scope for t in known}
    if len(scopes) > 1:
        raise NormalizeError("mixed_targets", f"targets {event.targets[:10]} map to both stations and groups")
    ids = sorted({i for t in known for i in t.ids})
    return Target(scope=known[0].scope, ids=ids)


def normalize_event(
    event: Event,
    program: Program | None,
    config: NormalizeConfig,
    now: datetime,
    *,
    server: str,
    baseline_w: float | None = None,
) -> Normalized:
    """All directives an event asks for at `now`, and every payload that could not become one (with the reason)."""
    try:
        target = resolve_target(event, config)
    except NormalizeError as exc:
        return Normalized((), (Rejected(None, None, exc.code, exc.reason),))
    source = Source(
        protocol=SourceProtocol.OPENADR3,
        server=server[:512],
        program=(program.program_name if program else event.program_id)[:256],
        signal_id=event.id,
    )
    priority = min(event.priority, 1_000_000) if event.priority is not None else config.default_priority
    prefix = directive_prefix(event.id)
    directives: list[Directive] = []
    rejected: list[Rejected] = []
    for slot in _slots(event, now):
        for index, payload in enumerate(slot.payloads):
            try:
                controls = _controls(payload, event, program, config, baseline_w)
                base_id = f"{prefix}{slot.position}.{index}"
                directives.extend(_directives(controls, slot, base_id, now, source, priority, target))
            except NormalizeError as exc:
                rejected.append(Rejected(payload.type, slot.interval_id, exc.code, exc.reason))
            except ValidationError as exc:
                reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                rejected.append(Rejected(payload.type, slot.interval_id, "invalid_value", f"{payload.type}: {reason}"))
    return Normalized(tuple(directives), tuple(rejected))


def _directives(
    controls: list[Controls | None],
    slot: _Slot,
    base_id: str,
    now: datetime,
    source: Source,
    priority: int,
    target: Target,
) -> list[Directive]:
    if len(controls) > 1 and slot.duration_s is None:
        raise NormalizeError("invalid_payload", "several values in an interval without a finite duration")
    step = None if slot.duration_s is None else slot.duration_s / len(controls)
    out: list[Directive] = []
    for k, control in enumerate(controls):
        start = slot.start
        if k and step is not None:
            start = (slot.start or now) + timedelta(seconds=step * k)
        if control is None or (step is not None and (start or now) + timedelta(seconds=step) <= now):
            continue
        out.append(
            Directive(
                id=base_id if len(controls) == 1 else f"{base_id}.{k}",
                source=source,
                priority=priority,
                start=start,
                duration_s=step,
                randomize_start_s=slot.randomize_s,
                target=target,
                controls=control,
            )
        )
    return out
