"""A station's DER control store (OCPP 2.1 use case R04), pure: no I/O, the time is always an argument.

Readings where R04 is silent, chosen to match IEEE 2030.5 / CSIP (which R04 deliberately follows):
- superseding applies only between controls of one type whose [start, end) windows overlap, so a day's schedule of
  back-to-back controls all run; on equal priority the newer control wins;
- a new control that loses to an existing one, active or not, is superseded at once (R04.FR.08, applied to both);
- a new default that loses to the existing default is stored superseded (the R04.FR.03 mirror image);
- a scheduled control without startTime starts when received; without duration it never ends;
- a control received after its own end is stored and deleted silently: it never ran, so nothing is notified.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mappings.naming import DER_SETTING_FIELD, der_setting_field

CONTROL_FIELDS = frozenset({*DER_SETTING_FIELD.values(), "curve"})
#: Control types that exist only as defaults (R04.FR.14/15).
DEFAULT_ONLY = frozenset({"EnterService", "Gradients"})
#: Largest array in one ReportDERControlRequest (schema maxItems).
REPORT_CHUNK = 24


def control_field(control_type: str) -> str:
    """The SetDERControlRequest field that carries `control_type` (R04.FR.16)."""
    return der_setting_field(control_type)


def parse_time(text: str) -> datetime:
    """An OCPP date-time (RFC 3339, 'Z' allowed) as an aware datetime."""
    return datetime.fromisoformat(text)


def format_time(when: datetime) -> str:
    """An aware datetime in the RFC 3339 form OCPP uses, e.g. 2030-01-01T00:00:00Z."""
    return when.isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class DerControl:
    """One stored control. `setting` is the control field's value exactly as received (for ReportDERControl)."""

    control_id: str
    control_type: str
    is_default: bool
    priority: int
    setting: dict[str, Any]
    received: datetime
    start: datetime | None = None
    end: datetime | None = None
    superseded: bool = False
    started: bool = False
    #: Active controls this one supersedes when it starts (R04.FR.07, R04.FR.21).
    displaces: list[str] = field(default_factory=list)

    def active_at(self, now: datetime) -> bool:
        """Scheduled, not superseded and inside its window (defaults are never 'active', only in effect)."""
        if self.is_default or self.superseded or self.start is None or self.start > now:
            return False
        return self.end is None or now < self.end

    def overlaps(self, other: DerControl) -> bool:
        assert self.start is not None
        assert other.start is not None
        return (other.end is None or self.start < other.end) and (self.end is None or other.start < self.end)


@dataclass(frozen=True, slots=True)
class SetResult:
    """The outcome of a SetDERControlRequest."""

    status: str
    superseded_ids: tuple[str, ...] = ()
    reason: str | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.superseded_ids:
            out["supersededIds"] = list(self.superseded_ids)
        if self.reason:
            out["statusInfo"] = {"reasonCode": self.reason}
        return out


@dataclass(frozen=True, slots=True)
class StartStop:
    """A NotifyDERStartStop the station owes (R04.FR.20-22)."""

    control_id: str
    started: bool
    timestamp: datetime
    superseded_ids: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "controlId": self.control_id,
            "started": self.started,
            "timestamp": format_time(self.timestamp),
        }
        if self.superseded_ids:
            out["supersededIds"] = list(self.superseded_ids)
        return out


class DerStore:
    """The DER controls of one station. Call `advance(now)` before each request so the state is current."""

    def __init__(self, supported: Iterable[str]) -> None:
        self.supported = frozenset(supported)
        self.controls: dict[str, DerControl] = {}

    def __iter__(self) -> Iterator[DerControl]:
        return iter(list(self.controls.values()))

    def set(self, request: dict[str, Any], now: datetime) -> SetResult:
        """Apply a (schema-valid) SetDERControlRequest received at `now`."""
        control_type: str = request["controlType"]
        if control_type not in self.supported:
            return SetResult("NotSupported")  # R04.FR.01
        present = CONTROL_FIELDS.intersection(request)
        if present != {control_field(control_type)}:
            return SetResult("Rejected", reason="InvalidValue")  # R04.FR.17
        setting: dict[str, Any] = request[control_field(control_type)]
        is_default: bool = request["isDefault"]
        if is_default and ("startTime" in setting or "duration" in setting):
            return SetResult("Rejected", reason="InvalidValue")  # R04.FR.13
        if not is_default and control_type in DEFAULT_ONLY:
            return SetResult("Rejected", reason="UnsupportedRequest")  # R04.FR.15
        self._remove(request["controlId"])
        new = DerControl(request["controlId"], control_type, is_default, setting["priority"], setting, now)
        if not is_default:
            new.start = parse_time(setting["startTime"]) if "startTime" in setting else now
            if "duration" in setting:
                new.end = new.start + timedelta(seconds=setting["duration"])
        self.controls[new.control_id] = new
        rivals = [
            c
            for c in self.controls.values()
            if c is not new
            and c.control_type == control_type
            and c.is_default == is_default
            and not c.superseded
            and (is_default or c.overlaps(new))
        ]
        if any(c.priority < new.priority for c in rivals):
            new.superseded = True  # R04.FR.08
            return SetResult("Accepted", (new.control_id,))
        superseded: list[str] = []
        for rival in rivals:
            if not is_default and rival.start is not None and rival.start <= now:
                new.displaces.append(rival.control_id)  # R04.FR.07: runs on until the new one starts
            else:
                rival.superseded = True  # R04.FR.03 / R04.FR.06
                superseded.append(rival.control_id)
        return SetResult("Accepted", tuple(superseded))

    def advance(self, now: datetime) -> list[StartStop]:
        """Run every start and end due by `now`, in time order; returns the notifications to send."""
        events: list[StartStop] = []
        while (due := self._next_due()) is not None and due[0] <= now:
            when, is_start, control = due
            if not is_start:
                del self.controls[control.control_id]  # R04.FR.10
                if control.started and not control.superseded:
                    events.append(StartStop(control.control_id, False, when))  # R04.FR.22
                continue
            control.started = True
            displaced = [
                d for d in control.displaces if d in self.controls and not self.controls[d].superseded
            ]  # R04.FR.21
            for control_id in displaced:
                self.controls[control_id].superseded = True
            events.append(StartStop(control.control_id, True, when, tuple(displaced)))  # R04.FR.20
        return events

    def next_event(self) -> datetime | None:
        """When `advance` next has something to do, if ever."""
        due = self._next_due()
        return due[0] if due else None

    def active(self, control_type: str, now: datetime) -> DerControl | None:
        """The scheduled control of this type running at `now`."""
        return next((c for c in self.controls.values() if c.control_type == control_type and c.active_at(now)), None)

    def in_effect(self, control_type: str, now: datetime) -> DerControl | None:
        """The active scheduled control, else the default that is not superseded (R04.FR.11)."""
        active = self.active(control_type, now)
        if active is not None:
            return active
        return next(
            (c for c in self.controls.values() if c.control_type == control_type and c.is_default and not c.superseded),
            None,
        )

    def get(
        self, is_default: bool | None, control_type: str | None, control_id: str | None
    ) -> tuple[str, list[DerControl]]:
        """GetDERControl status and the matching controls (R04.FR.30-37); absent criteria match anything."""
        if control_type is not None and control_type not in self.supported:
            return "NotSupported", []  # R04.FR.36
        found = self._matching(is_default, control_type, control_id)
        return ("Accepted", found) if found else ("NotFound", [])  # R04.FR.30

    def clear(self, is_default: bool, control_type: str | None, control_id: str | None) -> str:
        """ClearDERControl status (R04.FR.41-46, errata 2025-09); matching controls are deleted."""
        if control_id is None and control_type is not None and control_type not in self.supported:
            return "NotSupported"  # R04.FR.43
        found = self._matching(is_default, control_type, control_id)
        for control in found:
            self._remove(control.control_id)
        if control_id is None and control_type is None:
            return "Accepted"  # R04.FR.44
        return "Accepted" if found else "NotFound"  # R04.FR.41/42/45/46

    def _matching(self, is_default: bool | None, control_type: str | None, control_id: str | None) -> list[DerControl]:
        return [
            c
            for c in self.controls.values()
            if (is_default is None or c.is_default == is_default)
            and (control_type is None or c.control_type == control_type)
            and (control_id is None or c.control_id == control_id)
        ]

    def _remove(self, control_id: str) -> None:
        self.controls.pop(control_id, None)

    def _next_due(self) -> tuple[datetime, bool, DerControl] | None:
        """The earliest pending (time, is_start, control); ends sort before starts at the same instant."""
        best: tuple[datetime, bool, DerControl] | None = None
        for c in self.controls.values():
            if c.end is not None and (best is None or (c.end, False) < best[:2]):
                best = (c.end, False, c)
            if c.is_default or c.superseded or c.started or c.start is None:
                continue
            if c.end is not None and c.end <= c.received:
                continue  # arrived after its end: never runs
            when = max(c.start, c.received)
            if best is None or (when, True) < best[:2]:
                best = (when, True, c)
        return best


def report_payloads(controls: list[DerControl], request_id: int) -> list[dict[str, Any]]:
    """ReportDERControlRequests for `controls`, at most REPORT_CHUNK per message, tbc on all but the last."""
    chunks = [controls[i : i + REPORT_CHUNK] for i in range(0, len(controls), REPORT_CHUNK)] or [[]]
    messages: list[dict[str, Any]] = []
    for index, chunk in enumerate(chunks):
        message: dict[str, Any] = {"requestId": request_id}
        for control in chunk:
            name = control_field(control.control_type)
            message.setdefault(name, []).append(_report_entry(control))
        if index < len(chunks) - 1:
            message["tbc"] = True
        messages.append(message)
    return messages


def _report_entry(control: DerControl) -> dict[str, Any]:
    name = control_field(control.control_type)
    if name in ("enterService", "gradient"):
        return {"id": control.control_id, name: control.setting}
    entry: dict[str, Any] = {
        "id": control.control_id,
        "isDefault": control.is_default,
        "isSuperseded": control.superseded,
    }
    if name == "curve":
        entry["curveType"] = control.control_type
    entry["fixedPF" if name.startswith("fixedPF") else name] = control.setting
    return entry
