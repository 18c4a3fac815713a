"""Report bodies per an event's reportDescriptors, from fleet data, and when to send them. Pure: samples and times
are arguments.

Timing (Definition, reportDescriptor), counted in the event's intervals: the first report is generated at the end
of interval `startInterval` (-1: the last), then every `frequency` intervals (-1: same as numIntervals; all: only
one), `repeat` times (-1: as long as the event has intervals). Each report covers the `numIntervals` intervals up
to and including the one just ended (`historical: true`; -1: every interval since the event started), one report
interval per event interval, with that interval's id. `historical: false` asks for a forecast of the intervals that
follow, which the fleet cannot give: such descriptors are skipped (and said so). Descriptors whose schedules match
share one report.

Units follow the definition: energy in KWH, power in KW, STORAGE_CHARGE_LEVEL as a PERCENT fraction (0-1).
A descriptor's `units` may ask for W/WH instead; other units are not converted and the payload is left out (and
listed in `Built.skipped`), as are payload types we have no data for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.wire import Event, ReportDescriptor

MAX_DURATION_S = 31_536_000.0

AGGREGATED = "AGGREGATED_REPORT"
_STATE_RANK = ("NORMAL", "IDLE_NORMAL", "RUNNING_NORMAL", "RUNNING_CURTAILED", "IDLE_CURTAILED", "ERROR")
_QUALITY_RANK = ("OK", "ESTIMATED", "MISSING", "BAD")


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """What the fleet knows about one resource (a station or group) for one report interval. Canonical units."""

    #: Mean active power over the interval, W, + import.
    power_w: float | None = None
    #: Energy imported during the interval, Wh.
    energy_wh: float | None = None
    #: Cumulative import register at the end of the interval, Wh.
    meter_wh: float | None = None
    #: State of charge, 0-1.
    soc_fraction: float | None = None
    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    #: An OPERATING_STATE enumeration (NORMAL, ERROR, RUNNING_CURTAILED, ...).
    operating_state: str = "NORMAL"
    simple_level: int | None = None
    #: A DATA_QUALITY enumeration (OK, MISSING, ESTIMATED, BAD).
    quality: str = "OK"


_ENERGY = {"KWH": 0.001, "WH": 1.0}
_POWER = {"KW": 0.001, "W": 1.0}


def _scaled(value: float | None, units: str | None, table: dict[str, float], default: str) -> float | None:
    factor = table.get((units or default).upper())
    return None if value is None or factor is None else round(value * factor, 6)


#: payload type -> (default units, value getter taking (sample, descriptor units)).
_GETTERS: dict[str, tuple[str | None, Callable[[ResourceSample, str | None], Any]]] = {
    "USAGE": ("KWH", lambda s, u: _scaled(s.energy_wh, u, _ENERGY, "KWH")),
    "READING": ("KWH", lambda s, u: _scaled(s.meter_wh, u, _ENERGY, "KWH")),
    "DEMAND": ("KW", lambda s, u: _scaled(None if s.power_w is None else max(0.0, s.power_w), u, _POWER, "KW")),
    "STORAGE_MAX_CHARGE_POWER": ("KW", lambda s, u: _scaled(s.max_charge_w, u, _POWER, "KW")),
    "STORAGE_MAX_DISCHARGE_POWER": ("KW", lambda s, u: _scaled(s.max_discharge_w, u, _POWER, "KW")),
    "STORAGE_CHARGE_LEVEL": ("PERCENT", lambda s, u: s.soc_fraction),
    "OPERATING_STATE": (None, lambda s, u: s.operating_state),
    "SIMPLE_LEVEL": (None, lambda s, u: s.simple_level),
    "DATA_QUALITY": (None, lambda s, u: s.quality),
}


def aggregate(samples: Mapping[str, ResourceSample]) -> ResourceSample:
    """One sample for many resources: sums of powers and energies, mean SoC, the worst state and quality."""

    def total(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    items = list(samples.values())
    socs = [s.soc_fraction for s in items if s.soc_fraction is not None]
    levels = [s.simple_level for s in items if s.simple_level is not None]
    return ResourceSample(
        power_w=total([s.power_w for s in items]),
        energy_wh=total([s.energy_wh for s in items]),
        meter_wh=total([s.meter_wh for s in items]),
        soc_fraction=sum(socs) / len(socs) if socs else None,
        max_charge_w=total([s.max_charge_w for s in items]),
        max_discharge_w=total([s.max_discharge_w for s in items]),
        operating_state=max((s.operating_state for s in items), key=_rank(_STATE_RANK), default="NORMAL"),
        simple_level=max(levels) if levels else None,
        quality=max((s.quality for s in items), key=_rank(_QUALITY_RANK), default="MISSING"),
    )


def _rank(order: tuple[str, ...]) -> Callable[[str], int]:
    return lambda value: order.index(value) if value in order else len(order)


@dataclass(frozen=True, slots=True)
class Built:
    body: dict[str, Any]
    skipped: list[str] = field(default_factory=list)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Period:
    """One event interval as reports see it: its id, start and end (None: until cancelled)."""

    position: int
    id: int
    start: datetime
    end: datetime | None


def event_periods(event: Event, anchor: datetime) -> list[Period]:
    """Every interval of `event` with its times, ended ones included (normalize's timing rules: an interval's own
    period overrides the event's, a missing start follows the previous interval, the first one's is `anchor` (the
    time the VEN first saw the event), no/zero/over-a-year duration = until cancelled, event.duration truncates)."""
    period = event.interval_period
    cursor = period.start if period and period.start else anchor
    default_duration = period.duration_s if period else None
    event_end: datetime | None = None
    if event.duration_s and event.duration_s < MAX_DURATION_S:
        event_end = cursor + timedelta(seconds=event.duration_s)
    periods: list[Period] = []
    for position, interval in enumerate(event.intervals):
        own = interval.interval_period
        begin = own.start if own and own.start else cursor
        duration = own.duration_s if own and own.duration_s is not None else default_duration
        end = None if not duration or duration >= MAX_DURATION_S else begin + timedelta(seconds=duration)
        if event_end is not None and (end is None or end > event_end):
            end = event_end
        if end is not None and end <= begin:
            break
        periods.append(Period(position, interval.id, begin, end))
        if end is None:
            break
        cursor = end
    return periods


@dataclass(frozen=True, slots=True)
class ReportPlan:
    """One report to send: when (None: when the last covered interval ends, which nothing announces), for which
    descriptors (positions in event.reportDescriptors) and over which event intervals."""

    due: datetime | None
    descriptors: tuple[int, ...]
    periods: tuple[Period, ...]

    @property
    def key(self) -> str:
        return f"{self.periods[0].id}-{self.periods[-1].id}@{self.due.isoformat() if self.due else 'open'}"


def report_plans(event: Event, periods: list[Period]) -> tuple[list[ReportPlan], list[str]]:
    """The reports `event`'s reportDescriptors ask for over `periods` (event_periods), in due order, and the
    descriptors that cannot be honoured, with why."""
    skipped: list[str] = []
    merged: dict[tuple[datetime | None, tuple[int, ...]], list[int]] = {}
    n = len(periods)
    for index, d in enumerate(event.report_descriptors):
        if not d.historical:
            skipped.append(f"{d.payload_type}: historical=false asks for a forecast, which the fleet cannot give")
            continue
        first = n - 1 if d.start_interval < 0 else d.start_interval
        if first >= n:
            skipped.append(f"{d.payload_type}: startInterval {d.start_interval} is past the event's {n} interval(s)")
            continue
        every = d.frequency if d.frequency > 0 else d.num_intervals if d.num_intervals > 0 else n
        repeat = n if d.repeat < 0 else d.repeat
        for number in range(repeat):
            last = first + number * every
            if last >= n:
                break
            since = 0 if d.num_intervals < 0 else max(0, last - d.num_intervals + 1)
            merged.setdefault((periods[last].end, tuple(range(since, last + 1))), []).append(index)
    plans = [
        ReportPlan(due, tuple(indexes), tuple(periods[i] for i in covered))
        for (due, covered), indexes in merged.items()
    ]
    far = datetime.max.replace(tzinfo=UTC)
    plans.sort(key=lambda p: (p.due or far, p.periods[0].position))
    return plans, skipped


def build_report(
    version: OpenAdrVersion,
    event: Event,
    client_name: str,
    samples: Mapping[str, ResourceSample],
    start: datetime,
    duration_s: float,
    *,
    report_name: str | None = None,
) -> Built:
    """A report request body (3.0.1 `report` / 3.1 `reportRequest`) answering every reportDescriptor of `event`
    for one interval [start, start + duration)."""
    return build_intervals_report(
        version, event, client_name, [(0, start, duration_s, samples)], report_name=report_name
    )


def build_intervals_report(
    version: OpenAdrVersion,
    event: Event,
    client_name: str,
    intervals: Sequence[tuple[int, datetime, float, Mapping[str, ResourceSample]]],
    *,
    descriptors: tuple[int, ...] | None = None,
    report_name: str | None = None,
) -> Built:
    """A report body answering the reportDescriptors of `event` at positions `descriptors` (default: all) over
    `intervals`: (interval id, start, duration in seconds, samples per resource name) each."""
    skipped: list[str] = []
    per_resource: dict[str, dict[int, list[dict[str, Any]]]] = {}
    payload_descriptors: list[dict[str, Any]] = []
    wanted = range(len(event.report_descriptors)) if descriptors is None else descriptors
    periods = {iid: {"start": rfc3339(at), "duration": f"PT{max(0, round(d))}S"} for iid, at, d, _ in intervals}
    for position in wanted:
        descriptor = event.report_descriptors[position]
        spec = _GETTERS.get(descriptor.payload_type)
        if spec is None:
            skipped.append(f"{descriptor.payload_type}: no fleet data for this payload type")
            continue
        default_units, getter = spec
        units = descriptor.units or default_units
        wrote = False
        for interval_id, _, _, samples in intervals:
            for name, sample in _select(descriptor, samples).items():
                value = getter(sample, units)
                if value is None:
                    continue
                payload = {"type": descriptor.payload_type, "values": [value]}
                per_resource.setdefault(name, {}).setdefault(interval_id, []).append(payload)
                wrote = True
        if not wrote:
            skipped.append(f"{descriptor.payload_type}: no value (units {units!r} or missing data)")
            continue
        entry: dict[str, Any] = {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": descriptor.payload_type}
        if units is not None:
            entry["units"] = units
        if descriptor.reading_type is not None:
            entry["readingType"] = descriptor.reading_type
        payload_descriptors.append(entry)
    first = periods[intervals[0][0]] if intervals else None
    resources: list[dict[str, Any]] = []
    for name, by_interval in sorted(per_resource.items()):
        rows: list[dict[str, Any]] = []
        for iid, payloads in by_interval.items():
            row: dict[str, Any] = {"id": iid, "payloads": payloads}
            if len(periods) > 1:  # one interval: the resource's intervalPeriod says it
                row["intervalPeriod"] = periods[iid]
            rows.append(row)
        resources.append({"resourceName": name, "intervalPeriod": first, "intervals": rows})
    body: dict[str, Any] = {
        "eventID": event.id,
        "clientName": client_name,
        "reportName": report_name,
        "payloadDescriptors": payload_descriptors,
        "resources": resources,
    }
    if version is OpenAdrVersion.V3_0_1:
        body["programID"] = event.program_id
    return Built(body, skipped)


def _select(descriptor: ReportDescriptor, samples: Mapping[str, ResourceSample]) -> dict[str, ResourceSample]:
    chosen = {k: v for k, v in samples.items() if not descriptor.targets or k in descriptor.targets}
    if descriptor.aggregate and chosen:
        return {AGGREGATED: aggregate(chosen)}
    return chosen
