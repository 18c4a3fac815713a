"""Stack levels at run time: the charging profiles a station holds or should hold, placed so that the station's own
composite schedule follows the gateway's arbitration (docs/dispatch.md, "Stack levels").

A `Stacks` snapshot is taken once per fan-out, reconciliation or restore. It knows every directive that can share a
station's levels (live ones, ended ones whose restore ramps may still run, and the ended ones whose profiles a
station held while one of those was received; the store reads just those, `Store.stacking_directives`, and keeps
them until the directives change) and places their profiles per station, purpose and EVSE with
`gateway.schedule.stacking.place`, each limit profile holding its level for as long as its restore ramp can last
(`gateway.schedule.restore.ramp_reach`); `restack` moves a mapped directive's profiles (and ramps, which replace
them by id) to their placed levels. Reads the store and the fleet, sends nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.model import Directive, DirectiveState, OcppVersion, StationCapabilities, Target
from gateway.restorer import DEFAULT_PERIODS, RestoreSettings
from gateway.schedule import station_directive
from gateway.schedule.restore import LONGEST_REACH, Pace, pace, ramp_reach
from gateway.schedule.stacking import Entry, place, relevant
from gateway.store import DirectiveRecord, Reach, Store
from mappings import MappingResult, OcppCommand, map_directive
from mappings.decisions import STACK_LEVEL_CEILING
from mappings.restore_profiles import curtailed_limit_w
from mappings.stack_levels import profile_slot, with_stack_level

_LIVE = frozenset({DirectiveState.RECEIVED, DirectiveState.SCHEDULED, DirectiveState.ACTIVE})


@dataclass(frozen=True, slots=True)
class _Level:
    level: int | None
    unordered: bool = False
    #: Not to be sent before this (every level was taken when it was received).
    deferred: datetime | None = None


#: (directive number, purpose) -> its placement. A directive has at most one profile per purpose
#: (mappings/charging_profiles.py slots).
Levels = dict[tuple[int, str], _Level]


@dataclass(frozen=True, slots=True)
class _Known:
    record: DirectiveRecord
    #: When a cancelled (superseded, failed) directive stopped being wanted; None while live or once completed.
    gone: datetime | None


def _noted(command: OcppCommand, note: str) -> OcppCommand:
    joined = note if command.note is None else f"{command.note}; {note}"
    return OcppCommand(command.action, command.payload, command.controls, joined)


class Stacks:
    """The directives that can share stations' stack levels, as of one moment."""

    def __init__(
        self,
        records: Sequence[DirectiveRecord],
        aims_at: Callable[[Target, str], bool],
        owed: Mapping[tuple[str, str], datetime] = {},
        restore: RestoreSettings | None = None,
        now: datetime | None = None,
    ) -> None:
        """`records`: the directives to place (`Store.stacking_directives` narrows them); `restore`: the pace of
        restore ramps (None: limits are not ramped, a profile holds its level until its end); `now`: place per
        station only what matters then (`stacking.relevant`; None: everything). `aims_at(target, station_id)`:
        whether a target takes in a station (`Fleet.aims_at`), asked per station, so building a snapshot never
        resolves a fleet-sized target (a fleet-wide cancel or reconnect storm builds one per station)."""
        self._aims_at = aims_at
        self._known: list[_Known] = []
        #: Defaults in force (best first), whose pace a restore ramp may take.
        self._defaults: list[DirectiveRecord] = []
        for r in sorted(records, key=lambda r: r.number):
            ended = r.state not in _LIVE
            if r.directive.is_default:  # defaults sit at level 0, below every placed profile
                if not ended:
                    self._defaults.append(r)
                continue
            # A completed one lasted its own (randomized) window; any other ended one went when it was last updated.
            completed = r.state is DirectiveState.COMPLETED and r.directive.end(r.created) is not None
            gone = r.updated if ended and not completed else None
            self._known.append(_Known(r, gone))
        self._defaults.sort(key=lambda d: (d.directive.priority, -d.number))
        self._restore = restore
        self._now = now
        self._owed = owed
        self._mapped: dict[tuple[int, StationCapabilities, str | None], MappingResult] = {}
        #: Placements by (station id or None when nothing is randomized and no clear is owed to it, caps, directive
        #: numbers and default numbers at the station):
        #: stations with the same directives and capabilities share one.
        self._levels: dict[tuple[str | None, StationCapabilities, tuple[int, ...], tuple[int, ...]], Levels] = {}

    @classmethod
    def load(
        cls,
        store: Store,
        aims_at: Callable[[Target, str], bool],
        now: datetime,
        restore: RestoreSettings | None = None,
    ) -> Stacks:
        owed = {(did, sid): due for did, sid, due in store.pending_clears()}
        if restore is None:
            return cls(store.stacking_directives(now), aims_at, owed, None, now)
        records = store.stacking_directives(now, store_reach(restore), LONGEST_REACH)
        return cls(records, aims_at, owed, restore, now)

    def restack(
        self, station_id: str, caps: StationCapabilities, number: int, result: MappingResult, now: datetime
    ) -> tuple[MappingResult, datetime | None]:
        """`result` (directive `number` mapped for this station) with its profiles at their placed levels, less the
        profiles that must wait for a level to free; and when the first of those may go."""
        slots = [profile_slot(c) for c in result.commands]
        if not any(s is not None and s.level > 0 for s in slots):
            return result, None
        levels = self.levels(station_id, caps)
        commands = []
        wait: datetime | None = None
        for command, slot in zip(result.commands, slots, strict=True):
            if slot is not None and slot.level > 0:
                placed = levels.get((number, slot.purpose), _Level(slot.level))
                level = placed.level
                if placed.deferred is not None and placed.deferred > now:
                    wait = placed.deferred if wait is None else min(wait, placed.deferred)
                    continue
                if level is None:
                    command = _noted(
                        command, f"no stackLevel frees before it ends on this station: sent at {slot.level}"
                    )
                    level = slot.level
                elif placed.unordered:
                    command = _noted(command, f"too few stackLevels to order it against overlapping profiles: {level}")
                if level != slot.level:
                    command = with_stack_level(command, level)
            commands.append(command)
        return MappingResult(tuple(commands), result.unsupported), wait

    def _at(self, station_id: str) -> list[DirectiveRecord]:
        """The defaults in force at a station, best first."""
        return [r for r in self._defaults if self._aims_at(r.directive.target, station_id)]

    def levels(self, station_id: str, caps: StationCapabilities) -> Levels:
        """Placed levels of the profiles of the directives known at this station."""
        known = [k for k in self._known if self._aims_at(k.record.directive.target, station_id)]
        randomized = any(k.record.directive.randomize_start_s or k.record.directive.randomize_duration_s for k in known)
        owes = any((k.record.directive.id, station_id) in self._owed for k in known)  # its own clear times
        defaults = tuple(r.number for r in self._at(station_id))  # their ramp pace
        alone = station_id if randomized or owes else None
        key = (alone, caps, tuple(k.record.number for k in known), defaults)
        cached = self._levels.get(key)
        if cached is not None:
            return cached
        # One group per purpose, over all EVSEs: a TxDefaultProfile on EVSE 0 applies to every EVSE and may not share
        # a level with one on a specific EVSE (K01.FR.52/53); EVSE-specific ones are kept apart too (more than needed).
        groups: dict[str, list[Entry]] = {}
        for k in known:
            r = k.record
            own = station_directive(r.directive, station_id, r.created)
            cache = (r.number, caps, station_id if randomized else None)
            mapped = self._mapped.get(cache)
            if mapped is None:
                mapped = map_directive(own, caps, number=r.number, now=r.created, evse_id=r.directive.target.evse_id)
                self._mapped[cache] = mapped
            assert own.start is not None  # station_directive gives every non-default directive a start
            gone = self._owed.get((r.directive.id, station_id), k.gone)
            for command in mapped.commands:
                slot = profile_slot(command)
                if slot is None or slot.level == 0:
                    continue
                ramp = timedelta(0)
                if curtailed_limit_w(command, volts=caps.nominal_voltage_v) is not None:
                    ramp = self._ramp(r.directive, station_id, caps)
                groups.setdefault(slot.purpose, []).append(
                    Entry(
                        key=str(r.number),
                        priority=r.directive.priority,
                        sequence=r.number,
                        sent=r.created,
                        start=own.start,
                        end=own.end(r.created),
                        preferred=slot.level,
                        gone=gone,
                        bounded=slot.bounded,
                        ramp=ramp,
                    )
                )
        ceiling = caps.max_stack_level if caps.max_stack_level is not None else STACK_LEVEL_CEILING
        v16 = caps.version is OcppVersion.V16
        levels: Levels = {}
        live = {str(k.record.number) for k in known if k.record.state in _LIVE}
        for purpose, entries in groups.items():
            if self._now is not None:
                entries = relevant(entries, live=live, now=self._now)
            placement = place(entries, ceiling=ceiling, replaces_on_level=v16)
            for number, level in placement.levels.items():
                levels[(int(number), purpose)] = _Level(
                    level, number in placement.unordered, placement.deferred.get(number)
                )
        self._levels[key] = levels
        return levels

    def _ramp(self, directive: Directive, station_id: str, caps: StationCapabilities) -> timedelta:
        """How long past its end a limit profile of `directive` may run on as its restore ramp at this station (the
        restorer's pace for it, gateway/restorer.py; no second random delay is assumed away)."""
        periods = caps.periods_per_schedule or DEFAULT_PERIODS
        if self._restore is None or periods < 2:
            return timedelta(0)
        defaults = [r.directive for r in self._at(station_id)]
        paced = pace(
            directive,
            defaults,
            ramp_pct_per_s=self._restore.ramp_pct_per_s,
            max_delay_s=self._restore.max_delay_s,
            utility_spread=False,
        )
        return ramp_reach(paced, periods - 1)


@functools.cache
def store_reach(restore: RestoreSettings) -> Reach:
    """How long past its last update (or owed clear) an ended directive may hold a stack level at any station: the
    longest ramp any pace it may get can make (its own figures, else any live default's, else the configuration:
    `gateway.schedule.restore.pace`), plus its randomized spread. At least what `Stacks` reserves for it at any
    station, at most `LONGEST_REACH`. One function per settings, so the store's snapshot is kept across loads."""

    def reach(record: DirectiveRecord, live: Sequence[DirectiveRecord]) -> timedelta:
        d = record.directive
        defaults = [r.directive for r in live if r.directive.is_default]
        rate, delay = _own_rate(d), _own_delay(d)
        rates = [rate] if rate is not None else [restore.ramp_pct_per_s, *filter(None, map(_own_rate, defaults))]
        delays = [delay] if delay is not None else [restore.max_delay_s, *filter(None, map(_own_delay, defaults))]
        longest = max(ramp_reach(Pace(r, "", x, ""), 1 << 30) for r in rates for x in delays)
        return longest + timedelta(seconds=abs(d.randomize_start_s) + abs(d.randomize_duration_s))

    return reach


def _own_rate(d: Directive) -> float | None:
    g = d.controls.gradients
    return g.ramp_pct_per_s if g is not None and g.ramp_pct_per_s > 0 else None


def _own_delay(d: Directive) -> float | None:
    e = d.controls.enter_service
    return e.random_delay_s if e is not None and e.random_delay_s else None


class Waits:
    """Stations owed a profile that waits for a stack level to free (`Stacks.restack`), each with the earliest time
    one may go. The dispatcher's timer reconciles a station when its time comes."""

    def __init__(self) -> None:
        self._due: dict[str, datetime] = {}

    def add(self, station_id: str, at: datetime) -> None:
        held = self._due.get(station_id)
        self._due[station_id] = at if held is None else min(held, at)

    def take(self, now: datetime) -> tuple[list[str], list[datetime]]:
        """Stations whose time has come (forgotten here), and the times still ahead."""
        due = [sid for sid, at in self._due.items() if at <= now]
        for sid in due:
            del self._due[sid]
        return due, sorted(self._due.values())[:1]
