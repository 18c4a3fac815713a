"""The fleet registry: every configured station, what it is and whether it is reachable right now.

It receives the station link's events (StationEvents), keeps the live view the dispatcher and the API read, and
records what matters in the store and the audit log. Audit entries are grouped (gateway.audit.group): what
happens in one turn of the event loop (10,000 stations connecting, booting and reporting capabilities) is written
in one transaction at the start of the next, or with the next durable write, ahead of it.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from gateway.audit.entry import AuditEntry
from gateway.audit.group import BatchAuditSink, GroupCommit
from gateway.model import Alarm, OcppVersion, StationCapabilities, Target, TargetScope
from gateway.store import Store

#: Station-initiated messages worth an audit entry (the DER story); heartbeats and meter values are not.
_AUDITED_MESSAGES = frozenset({"NotifyDERStartStop", "ReportDERControl", "NotifyReport", "ReportChargingProfiles"})
#: Energy readings kept per meter (about 3 days at one reading a minute); the oldest go first.
MAX_ENERGY_READINGS = 4096


class EnergyPoint(NamedTuple):
    at: datetime
    import_wh: float | None
    export_wh: float | None


@dataclass(frozen=True, slots=True)
class EnergySpan:
    """Imported energy over an interval from one station's registers."""

    #: Energy imported in [start, end], Wh.
    energy_wh: float
    #: The import register at `end`, Wh (summed over the meters used).
    meter_wh: float
    #: False when readings do not surround both bounds (the nearest reading stands in) or a register went back.
    covered: bool


def _register_at(points: list[tuple[datetime, float]], at: datetime) -> tuple[float, bool]:
    """The register at `at`: interpolated between the readings around it, else the nearest one (not covered)."""
    i = bisect.bisect_left(points, at, key=lambda p: p[0])
    if i < len(points) and points[i][0] == at:
        return points[i][1], True
    if i == 0:
        return points[0][1], False
    if i == len(points):
        return points[-1][1], False
    (t0, v0), (t1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (at - t0).total_seconds() / (t1 - t0).total_seconds(), True


def energy_between(meters: Mapping[int, list[EnergyPoint]], start: datetime, end: datetime) -> EnergySpan | None:
    """Import energy over [start, end] from per-meter register readings (sorted by time). The main meter (0) is
    used when present, else the sum of the EVSE/connector meters. A register that goes back (meter reset or
    replacement) counts only its increases and makes the result not covered. None without any import reading."""
    used = [0] if meters.get(0) else sorted(m for m in meters if m != 0)
    total = register = 0.0
    covered, found = True, False
    for meter in used:
        points = [(p.at, p.import_wh) for p in meters[meter] if p.import_wh is not None]
        if not points:
            continue
        found = True
        first, ok_start = _register_at(points, start)
        last, ok_end = _register_at(points, end)
        values = [first, *(v for t, v in points if start < t < end), last]
        steps = [b - a for a, b in itertools.pairwise(values)]
        total += sum(step for step in steps if step > 0)
        register += last
        covered = covered and ok_start and ok_end and all(step >= 0 for step in steps)
    return EnergySpan(total, register, covered) if found else None


@dataclass(slots=True)
class StationState:
    id: str
    groups: frozenset[str]
    version: OcppVersion | None = None
    connected: bool = False
    capabilities: StationCapabilities | None = None
    capabilities_ready: asyncio.Event = field(default_factory=asyncio.Event)
    power_w: float | None = None
    power_at: datetime | None = None
    #: Latest power per meter (0 = main meter, n = EVSE n), W and when.
    power_by_meter: dict[int, tuple[float, datetime]] = field(default_factory=dict)
    #: Latest reactive power (var, + absorbing), grid frequency (Hz) and per-phase power (W), where metered.
    vars: float | None = None
    hz: float | None = None
    phase_w: tuple[float, float, float] | None = None
    #: Energy register readings per meter (connector/EVSE id, 0 = main meter), sorted by time.
    energy: dict[int, list[EnergyPoint]] = field(default_factory=dict)
    last_alarm: Alarm | None = None
    last_seen: datetime | None = None
    #: EVSEs with a vehicle plugged in (charging or ready to), and the transaction running there when known.
    sessions: dict[int, str | None] = field(default_factory=dict)

    @property
    def charging(self) -> bool:
        """A vehicle is at one of its EVSEs (an aggregate limit gives the station a share)."""
        return bool(self.sessions)


class Fleet:
    """Implements gateway.interfaces.StationEvents for the OCPP endpoint."""

    def __init__(
        self, stations: Iterable[tuple[str, Iterable[str]]], store: Store, audit: BatchAuditSink | GroupCommit
    ) -> None:
        self._store = store
        #: Shared with the dispatcher (gateway.runtime), so their entries keep one order.
        self._audit = GroupCommit.over(audit)
        self.stations: dict[str, StationState] = {sid: StationState(sid, frozenset(g)) for sid, g in stations}
        self._ready_listeners: list[Callable[[str], None]] = []
        self._alarm_listeners: list[Callable[[Alarm], None]] = []
        self._change_listeners: list[Callable[[str], None]] = []
        self._message_listeners: list[Callable[[str, str, Mapping[str, Any]], None]] = []
        for record in store.stations():
            state = self.stations.get(record.id)
            if state is not None:
                state.version, state.capabilities, state.last_seen = (
                    record.version,
                    record.capabilities,
                    record.last_seen,
                )

    @property
    def audit(self) -> GroupCommit:
        """The group commit this registry writes through (give the dispatcher the same one)."""
        return self._audit

    def _record(
        self,
        kind: str,
        data: Mapping[str, Any],
        at: datetime,
        station_id: str,
        message_id: str | None = None,
    ) -> None:
        """Buffer an entry: on disk at the start of the next turn of the event loop, or with the next durable
        audit write (ahead of it)."""
        self._audit.later(AuditEntry(kind, data, at, station_id=station_id, message_id=message_id))

    def on_ready(self, listener: Callable[[str], None]) -> None:
        """Call `listener(station_id)` whenever a connected station's capabilities are (re)read."""
        self._ready_listeners.append(listener)

    def on_alarm(self, listener: Callable[[Alarm], None]) -> None:
        self._alarm_listeners.append(listener)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(station_id)` whenever a station's live view changes (connection, version, capabilities,
        power, alarm), so a live view (the dashboard) need not poll every station."""
        self._change_listeners.append(listener)

    def _changed(self, station_id: str) -> None:
        for listener in self._change_listeners:
            listener(station_id)

    def on_message(self, listener: Callable[[str, str, Mapping[str, Any]], None]) -> None:
        """Call `listener(station_id, action, payload)` for other station messages (reports a query asked for)."""
        self._message_listeners.append(listener)

    def set_stations(self, stations: Iterable[tuple[str, Iterable[str]]]) -> None:
        """A reloaded configuration: add new stations, drop removed ones, update groups; live state is kept."""
        wanted = {sid: frozenset(g) for sid, g in stations}
        changed = [sid for sid in self.stations if sid not in wanted]
        changed += [
            sid for sid, groups in wanted.items() if sid not in self.stations or self.stations[sid].groups != groups
        ]
        for sid in [s for s in self.stations if s not in wanted]:
            del self.stations[sid]
        for sid, groups in wanted.items():
            state = self.stations.setdefault(sid, StationState(sid, groups))
            state.groups = groups
        for sid in changed:  # change listeners (the dashboard) see removed, added and regrouped stations
            self._changed(sid)

    def resolve(self, target: Target) -> list[str]:
        """Station ids of a target; KeyError naming the unknown stations or groups."""
        if target.scope is TargetScope.FLEET:
            return sorted(self.stations)
        if target.scope is TargetScope.STATION:
            unknown = [sid for sid in target.ids if sid not in self.stations]
            if unknown:
                raise KeyError(f"unknown station(s): {', '.join(unknown)}")
            return sorted(set(target.ids))
        missing = [g for g in target.ids if g not in self.groups()]
        if missing:
            raise KeyError(f"unknown group(s): {', '.join(missing)}")
        return sorted({sid for g in target.ids for sid in self.members(g)})

    def aims_at(self, target: Target, station_id: str) -> bool:
        """Whether `target` takes in the station: `resolve`'s rule for one station, without building the fleet-sized
        list (reconciliation and restore ramps ask this per station and directive). Unknown ids or groups beside it
        do not matter here."""
        state = self.stations.get(station_id)
        if state is None:
            return False
        if target.scope is TargetScope.FLEET:
            return True
        if target.scope is TargetScope.STATION:
            return station_id in target.ids
        return any(g in state.groups for g in target.ids)

    def members(self, group: str) -> list[str]:
        return sorted(s.id for s in self.stations.values() if group in s.groups)

    def groups(self) -> set[str]:
        return {g for s in self.stations.values() for g in s.groups}

    # -- StationEvents -----------------------------------------------------------------------------------------
    # Events of a station no longer in the registry (a reload removed it while its connection was closing) are
    # dropped: it is not part of the fleet any more.

    def station_connected(self, station_id: str, version: OcppVersion, at: datetime) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        if state.version is not None and state.version is not version:
            state.capabilities = None  # a different protocol version means different abilities: read them again
        state.version, state.connected, state.last_seen = version, True, at
        state.capabilities_ready.clear()
        self._store.station_connected(station_id, version, at)
        self._record("station.connected", {"version": version.value}, at, station_id)
        self._changed(station_id)

    def station_disconnected(self, station_id: str, at: datetime) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        state.connected, state.last_seen = False, at
        state.capabilities_ready.clear()
        self._store.station_disconnected(station_id, at)
        self._record("station.disconnected", {}, at, station_id)
        self._changed(station_id)

    def station_booted(self, station_id: str, boot: Mapping[str, Any], at: datetime) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        state.last_seen = at
        self._store.station_boot(station_id, dict(boot))
        self._record("station.message", {"action": "BootNotification", "payload": dict(boot)}, at, station_id)

    def station_capabilities(self, station_id: str, caps: StationCapabilities, at: datetime) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        state.capabilities = caps
        state.capabilities_ready.set()
        self._store.station_capabilities(station_id, caps)
        self._record("station.capabilities", caps.model_dump(mode="json"), at, station_id)
        for listener in self._ready_listeners:
            listener(station_id)
        self._changed(station_id)

    def station_power(self, station_id: str, watts: float, at: datetime, *, meter: int | None = None) -> None:
        """The station's power is its main meter's reading, or the sum over its EVSEs when those are newer
        (stations send one MeterValues per EVSE); an unknown meter counts as the last EVSE heard from, or the
        whole station when none has been."""
        if (state := self.stations.get(station_id)) is None:
            return
        evses = [k for k in state.power_by_meter if k > 0]
        key = meter if meter is not None else (max(evses, key=lambda k: state.power_by_meter[k][1]) if evses else 0)
        state.power_by_meter[key] = (watts, at)
        main = state.power_by_meter.get(0)
        latest_evse = max((t for k, (_, t) in state.power_by_meter.items() if k > 0), default=None)
        if main is not None and (latest_evse is None or main[1] >= latest_evse):
            total = main[0]
        else:
            total = sum(w for k, (w, _) in state.power_by_meter.items() if k > 0)
        state.power_w, state.power_at, state.last_seen = total, at, at
        self._changed(station_id)

    def station_measured(
        self,
        station_id: str,
        vars_: float | None,
        hz: float | None,
        phase_w: tuple[float, float, float] | None,
        at: datetime,
    ) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        state.vars = vars_ if vars_ is not None else state.vars
        state.hz = hz if hz is not None else state.hz
        state.phase_w = phase_w if phase_w is not None else state.phase_w
        self._changed(station_id)

    def station_energy(
        self, station_id: str, meter: int, import_wh: float | None, export_wh: float | None, at: datetime
    ) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        points = state.energy.setdefault(meter, [])
        point = EnergyPoint(at, import_wh, export_wh)
        i = bisect.bisect_right(points, at, key=lambda p: p.at)
        if i > 0 and points[i - 1].at == at:
            points[i - 1] = point  # a repeated reading (a retried message) replaces the first
        else:
            points.insert(i, point)
        del points[:-MAX_ENERGY_READINGS]

    def station_session(
        self, station_id: str, evse: int | None, transaction: str | None, present: bool, at: datetime
    ) -> None:
        """Kept across disconnects: a station charges on while away, and says otherwise when it is back."""
        state = self.stations[station_id]
        sessions = state.sessions
        if evse is None:  # a later TransactionEvent or a 1.6 StopTransaction: the EVSE its transaction runs on
            evse = next((e for e, tx in sessions.items() if tx is not None and tx == transaction), None)
            if evse is None:
                return
        before = state.charging
        if present:
            sessions[evse] = transaction or sessions.get(evse)
        else:
            sessions.pop(evse, None)
        state.last_seen = at
        if state.charging is not before:
            self._record("station.session", {"charging": state.charging, "evse": evse}, at, station_id)
            self._changed(station_id)

    def station_alarm(self, alarm: Alarm) -> None:
        if (state := self.stations.get(alarm.station_id)) is None:
            return
        state.last_alarm = alarm
        self._record("station.alarm", alarm.model_dump(mode="json", exclude={"raw"}), alarm.at, alarm.station_id)
        for listener in self._alarm_listeners:
            listener(alarm)
        self._changed(alarm.station_id)

    def station_message(
        self, station_id: str, action: str, payload: Mapping[str, Any], message_id: str, at: datetime
    ) -> None:
        if (state := self.stations.get(station_id)) is None:
            return
        state.last_seen = at
        if action in _AUDITED_MESSAGES:
            self._record("station.message", {"action": action, "payload": dict(payload)}, at, station_id, message_id)
        for listener in self._message_listeners:
            listener(station_id, action, payload)

    def protocol_error(
        self, station_id: str, code: str, description: str, message_id: str, at: datetime, *, by_station: bool
    ) -> None:
        data = {"source": "ocpp", "code": code, "description": description, "by_station": by_station}
        self._record("input.rejected", data, at, station_id, message_id)
