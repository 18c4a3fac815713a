"""Report bodies per an event's reportDescriptors, from fleet data. Pure: samples and times are arguments.

Units follow the definition: energy in KWH, power in KW, STORAGE_CHARGE_LEVEL as a PERCENT fraction (0-1).
A descriptor's `units` may ask for W/WH instead; other units are not converted and the payload is left out (and
listed in `Built.skipped`), as are payload types we have no data for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.wire import Event, ReportDescriptor

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
    skipped: list[str] = []
    per_resource: dict[str, list[dict[str, Any]]] = {}
    descriptors: list[dict[str, Any]] = []
    for descriptor in event.report_descriptors:
        spec = _GETTERS.get(descriptor.payload_type)
        if spec is None:
            skipped.append(f"{descriptor.payload_type}: no fleet data for this payload type")
            continue
        default_units, getter = spec
        units = descriptor.units or default_units
        chosen = _select(descriptor, samples)
        wrote = False
        for name, sample in chosen.items():
            value = getter(sample, units)
            if value is None:
                continue
            per_resource.setdefault(name, []).append({"type": descriptor.payload_type, "values": [value]})
            wrote = True
        if not wrote:
            skipped.append(f"{descriptor.payload_type}: no value (units {units!r} or missing data)")
            continue
        entry: dict[str, Any] = {"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": descriptor.payload_type}
        if units is not None:
            entry["units"] = units
        if descriptor.reading_type is not None:
            entry["readingType"] = descriptor.reading_type
        descriptors.append(entry)
    period = {"start": rfc3339(start), "duration": f"PT{max(0, round(duration_s))}S"}
    body: dict[str, Any] = {
        "eventID": event.id,
        "clientName": client_name,
        "reportName": report_name,
        "payloadDescriptors": descriptors,
        "resources": [
            {"resourceName": name, "intervalPeriod": period, "intervals": [{"id": 0, "payloads": payloads}]}
            for name, payloads in sorted(per_resource.items())
        ],
    }
    if version is OpenAdrVersion.V3_0_1:
        body["programID"] = event.program_id
    return Built(body, skipped)


def _select(descriptor: ReportDescriptor, samples: Mapping[str, ResourceSample]) -> dict[str, ResourceSample]:
    chosen = {k: v for k, v in samples.items() if not descriptor.targets or k in descriptor.targets}
    if descriptor.aggregate and chosen:
        return {AGGREGATED: aggregate(chosen)}
    return chosen
