"""Ramped, staggered restore on the wire: when a curtailment ends, each station's limit profile is replaced in place
by one that steps up along its own restore plan, so a fleet never steps back at the same second (docs/dispatch.md,
"Restore").

- An end known in advance (a directive's duration, per station its randomized window) is handled ahead: once the
  station's end is `lead_s` away, its profile is re-sent with the ramp appended, and the station follows it on its
  own clock at the end.
- A removal (cancel, a randomized cancel's owed clear, a station dropped by a change, a station that comes back
  holding a cancelled curtailment) replaces the profile with a ramp starting then, instead of clearing it.
- Each ramp is capped by the limit in force among the other directives at each of its steps
  (gateway/schedule/restore_cap.py): it sits at its curtailment's stack level and may only lower what governs. A
  directive that reaches stations after their ramps were planned has them planned again (or withdrawn) with it.
- A ramp's stack level is reserved until the longest it can last (gateway/stacks.py), so it goes out at the level
  the station holds the curtailment at and no later profile shares that level while it runs.
The plans are pure (gateway/schedule/restore.py, mappings/restore_profiles.py); this module picks their inputs and
sends the results through the dispatcher's recorded sends (command.sent / station.answer), plus one
`restore.planned` audit entry per directive, trigger and pace.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.config import DispatchConfig
from gateway.fleet import Fleet
from gateway.model import (
    CommandOutcome,
    Directive,
    DirectiveState,
    OutcomeStatus,
    StationCapabilities,
    StationOutcome,
)
from gateway.schedule.arbitration import Candidate
from gateway.schedule.restore import Pace, pace, restore_plan
from gateway.schedule.restore_cap import IMPORT, Other, capped
from gateway.store import DirectiveRecord, Store
from mappings import MappingResult, OcppCommand
from mappings.engine import clear_command
from mappings.restore_profiles import RESTORE_NOTE, curtailed_limit_w, with_restore
from mappings.stack_levels import profile_slot

#: Schedule periods assumed when a station does not report SmartChargingCtrlr.PeriodsPerSchedule (1.6:
#: ChargingScheduleMaxPeriods): the curtailed period and 10 steps.
DEFAULT_PERIODS = 11
_WITHDRAWN = "restore ramp withdrawn: a later directive limits the station"
_NOTE = re.compile(rf"^{RESTORE_NOTE} (\S+) until (\S+)")


@dataclass(frozen=True, slots=True)
class RestoreSettings:
    """The gateway's own restore pace (configuration `[dispatch]`), used where the utility gives none."""

    ramp_pct_per_s: float = 0.33
    max_delay_s: float = 300.0
    #: Per-EVSE charge rating assumed for a station that reports none (1.6, 2.0.1 without DCDERCtrlr).
    rating_w: float = 22_000.0
    #: How long before a known end the ramp is sent.
    lead_s: float = 60.0


def restore_settings(config: DispatchConfig) -> RestoreSettings:
    """The `[dispatch]` configuration as the restorer's settings."""
    return RestoreSettings(
        ramp_pct_per_s=config.restore_ramp_pct_per_s,
        max_delay_s=config.restore_max_delay_s,
        rating_w=config.restore_rating_w,
        lead_s=config.restore_lead_s,
    )


@dataclass(frozen=True, slots=True)
class RestoreHooks:
    """The dispatcher's recorded sends and state, which a restore goes through like any other command."""

    #: Record and send one command: (directive id, station id, command, detail for its outcome).
    call: Callable[[str, str, OcppCommand, str | None], Awaitable[CommandOutcome]]
    outcomes: Callable[[str], list[StationOutcome]]
    record: Callable[[StationOutcome], None]
    append: Callable[..., None]
    now: Callable[[], datetime]
    #: The directive as one station runs it (its own randomized window).
    own: Callable[[Directive, str, datetime], Directive]
    #: The commands the station was sent for a directive (as fan-out and reconciliation map them for it).
    mapped: Callable[[DirectiveRecord, str, StationCapabilities], MappingResult]
    #: Run a send in the background (the dispatcher tracks it with its resends).
    spawn: Callable[[Awaitable[None]], None]


def _limits(directive: Directive) -> bool:
    """Whether a directive can have put a limit profile on a station (import limit, setpoint as a limit, 0 W)."""
    c = directive.controls
    return c.import_limit_w is not None or c.active_power_setpoint_w is not None or False in (c.connect, c.energize)


def _ramps(outcome: StationOutcome) -> list[CommandOutcome]:
    """The restore ramps the station accepted for this directive since the last withdrawal (the notes say so, also
    after a restart)."""
    ramps: list[CommandOutcome] = []
    for c in outcome.commands:
        if c.detail == _WITHDRAWN:
            ramps = []
        elif c.status is OutcomeStatus.ACCEPTED and c.detail and c.detail.startswith(RESTORE_NOTE):
            ramps.append(c)
    return ramps


def _restored(outcome: StationOutcome) -> bool:
    return bool(_ramps(outcome))


def _restore_window(outcome: StationOutcome) -> tuple[datetime, datetime] | None:
    """(restore moment, end) of the last restore ramp the station accepted for this directive (None: none)."""
    windows = [
        (_time(m.group(1)), _time(m.group(2))) for c in _ramps(outcome) if c.detail and (m := _NOTE.match(c.detail))
    ]
    return max(windows, key=lambda w: w[1], default=None)


#: An outcome with the (restore moment, end) of its last accepted restore ramp.
Ramp = tuple[StationOutcome, tuple[datetime, datetime]]


def running_ramps(outcomes: Iterable[StationOutcome], now: datetime) -> list[Ramp]:
    """The outcomes whose last accepted restore ramp still runs at `now`, each with that ramp's window."""
    return [(o, window) for o in outcomes if (window := _restore_window(o)) is not None and window[1] > now]


def ramps_of(store: Store, station_id: str, now: datetime) -> list[Ramp]:
    """The station's outcomes whose restore ramp runs at `now`, decoding only those whose notes name a ramp running
    then (not the station's whole history)."""
    return running_ramps(store.station_ramps(station_id, now), now)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _holds_limit(outcome: StationOutcome) -> bool:
    return any(c.action == "SetChargingProfile" and c.status is OutcomeStatus.ACCEPTED for c in outcome.commands)


class Restorer:
    def __init__(self, store: Store, fleet: Fleet, settings: RestoreSettings, hooks: RestoreHooks) -> None:
        self._store = store
        self._fleet = fleet
        self.settings = settings
        self._hooks = hooks
        #: Directives whose ends were all handled ahead.
        self._done: set[str] = set()
        #: Ramps being sent ahead: (directive, station).
        self._sending: set[tuple[str, str]] = set()
        #: (directive, trigger, pace) already audited as restore.planned.
        self._planned: set[tuple[str, str, Pace]] = set()

    # -- ends known in advance -------------------------------------------------------------------------------

    def ahead(self, now: datetime) -> list[datetime]:
        """Start sending the ramps of stations whose own end is at most `lead_s` away (in `spawn`ed tasks, so a
        slow station never holds up the timer); return the due time of the next ones."""
        due: list[datetime] = []
        lead = timedelta(seconds=self.settings.lead_s)
        for record in self._store.live_directives():
            if record.state is DirectiveState.RECEIVED:
                continue  # its fan-out is under way
            d = record.directive
            if d.is_default or d.duration_s is None or d.id in self._done or not _limits(d):
                continue
            end = d.end(record.created)
            assert end is not None
            spread = timedelta(seconds=abs(d.randomize_start_s) + abs(d.randomize_duration_s))
            if end - spread - lead > now:
                due.append(end - spread - lead)
                continue
            later: list[datetime] = []
            for outcome in self._hooks.outcomes(d.id):
                key = (d.id, outcome.station_id)
                if not _holds_limit(outcome) or _restored(outcome) or key in self._sending:
                    continue
                own_end = self._hooks.own(d, outcome.station_id, record.created).end(record.created)
                assert own_end is not None
                if own_end - lead > now:
                    later.append(own_end - lead)
                    continue
                self._sending.add(key)
                self._hooks.spawn(self._ahead_one(record, outcome, own_end))
            if later:
                due.append(min(later))
            else:
                self._done.add(d.id)
        return due

    async def _ahead_one(self, record: DirectiveRecord, outcome: StationOutcome, at: datetime) -> None:
        d = record.directive
        try:
            spread = bool(d.randomize_start_s or d.randomize_duration_s)
            done = await self._ramp(record, outcome.station_id, at, "end", spread)
            if done:
                self._hooks.record(outcome.model_copy(update={"commands": [*outcome.commands, *(c for _, c in done)]}))
        finally:
            self._sending.discard((d.id, outcome.station_id))

    def station_back(self) -> None:
        """A station reconnected and may now hold a directive whose ends were all handled: look at them again."""
        self._done.clear()

    # -- removals ----------------------------------------------------------------------------------------------

    async def replace(
        self, record: DirectiveRecord, station_id: str, *, utility_spread: bool
    ) -> list[tuple[str, CommandOutcome]]:
        """Replace what limits the station in `record` by ramps starting now, instead of clearing it: (profile id,
        command outcome) per ramp sent; the caller records them and clears the rest."""
        return await self._ramp(record, station_id, self._hooks.now(), "removal", utility_spread)

    async def instead_of_clear(
        self, record: DirectiveRecord, station_id: str, profile_id: str
    ) -> CommandOutcome | None:
        """A station back from an absence still holds a profile of a cancelled curtailment: ramp that one profile
        from now instead of clearing it (None: it holds no limit, or the operator chose 0/0)."""
        ramps = await self._ramp(record, station_id, self._hooks.now(), "reconnect", False, only=profile_id)
        return ramps[0][1] if ramps else None

    def under_way(self, station_id: str, now: datetime) -> set[int]:
        """Numbers of directives whose restore ramp the station is still following: reconciliation leaves them."""
        numbers: set[int] = set()
        for outcome, _ in ramps_of(self._store, station_id, now):
            if record := self._store.directive(outcome.directive_id):
                numbers.add(record.number)
        return numbers

    async def directive_added(self, directive: Directive, station_ids: Sequence[str]) -> None:
        """A directive reached stations after ramps they hold were planned (sent ahead, or under way): a ramp sits at
        its curtailment's stack level and may overrule the newcomer's profile, so plan each such ramp again with it
        in the picture. A ramp with nothing left to ramp becomes the plain curtailment again before its restore
        moment (it lapses at its end) and is cleared after it (the newcomer's limit is no higher)."""
        if not _limits(directive):
            return
        now = self._hooks.now()
        for station_id in station_ids:
            for outcome, window in ramps_of(self._store, station_id, now):
                if outcome.directive_id == directive.id:
                    continue
                record = self._store.directive(outcome.directive_id)  # only for a ramp still running
                if record is None:
                    continue
                d = record.directive
                spread = bool(d.randomize_start_s or d.randomize_duration_s)
                done = [c for _, c in await self._ramp(record, station_id, window[0], "replan", spread)]
                if not done:
                    done = await self._unramp(record, station_id, back=window[0] > now)
                self._hooks.record(outcome.model_copy(update={"commands": [*outcome.commands, *done]}))

    async def _unramp(self, record: DirectiveRecord, station_id: str, *, back: bool) -> list[CommandOutcome]:
        """Undo a station's ramps of `record`: its plain limit profiles again (`back`), else clear them."""
        caps = self._fleet.stations[station_id].capabilities
        if caps is None:
            return []
        d = record.directive
        mapped = self._hooks.mapped(record, station_id, caps)
        commands = [c for c in mapped.commands if curtailed_limit_w(c, volts=caps.nominal_voltage_v) is not None]
        if not back:
            commands = [clear_command(c, caps.version) for c in commands]
        return [await self._send(d.id, station_id, command, _WITHDRAWN) for command in commands]

    async def _send(
        self, directive_id: str, station_id: str, command: OcppCommand, detail: str | None
    ) -> CommandOutcome:
        """One command on its own (audited and recorded by the dispatcher's call)."""
        return await self._hooks.call(directive_id, station_id, command, detail)

    # -- one station -------------------------------------------------------------------------------------------

    async def _ramp(
        self,
        record: DirectiveRecord,
        station_id: str,
        at: datetime,
        trigger: str,
        utility_spread: bool,
        *,
        only: str | None = None,
    ) -> list[tuple[str, CommandOutcome]]:
        state = self._fleet.stations.get(station_id)
        caps = None if state is None else state.capabilities
        if caps is None or (caps.periods_per_schedule or DEFAULT_PERIODS) < 2:
            return []
        d = record.directive
        own = self._hooks.own(d, station_id, record.created)
        if own.start is not None and own.start >= at:
            return []  # removed before it began: it never limited the station, a clear is all it takes
        others = self._others(record, station_id, at)
        if any(o.directive.priority == d.priority and not o.directive.is_default for o in others):
            # The next directive of the same priority (an event's next interval) holds the same stack level: a ramp
            # overlapping it would break K01.FR.06, and it brings its own limit anyway.
            return []
        defaults = [o.directive for o in others if o.directive.is_default]
        paced = pace(
            d,
            defaults,
            ramp_pct_per_s=self.settings.ramp_pct_per_s,
            max_delay_s=self.settings.max_delay_s,
            utility_spread=utility_spread,
        )
        if not (paced.ramp_pct_per_s or paced.max_delay_s):
            return []  # 0/0: the operator chose to step back at once (the limit is cleared or lapses)
        # What governs once the ramp has lapsed: the best of the others with an import limit (defaults below every
        # scheduled directive, as their stack level 0 is): the ramp's target. While it runs, it is capped by what is
        # in force among the others at each moment (gateway/schedule/restore_cap.py).
        governing = sorted(
            (o for o in others if o.directive.controls.import_limit_w is not None),
            key=lambda o: (o.directive.is_default, o.directive.priority, -o.number),
        )
        ceiling = governing[0].directive.controls.import_limit_w if governing else None
        limits = self._limits_over(record, station_id, caps, at)
        mapped = self._hooks.mapped(record, station_id, caps)
        commands = [
            restored
            for command in mapped.commands
            if (only is None or (command.action == "SetChargingProfile" and command.target_id() == only))
            and (restored := self._restore_command(record, station_id, command, caps, at, paced, ceiling, limits))
            is not None
        ]
        if not commands:
            return []
        self._audit(record, trigger, paced, at)
        return [(str(c.target_id()), await self._send(d.id, station_id, c, c.note)) for c in commands]

    def _restore_command(
        self,
        record: DirectiveRecord,
        station_id: str,
        command: OcppCommand,
        caps: StationCapabilities,
        at: datetime,
        paced: Pace,
        ceiling: float | None,
        limits: list[Other],
    ) -> OcppCommand | None:
        """The limit profile `command` with its restore ramp from `at`; None for commands that hold no limit."""
        directive, number = record.directive, record.number
        from_w = curtailed_limit_w(command, volts=caps.nominal_voltage_v)
        if from_w is None:
            return None
        per_evse = caps.max_charge_rate_w or caps.max_w or self.settings.rating_w
        slot = profile_slot(command)  # a limit: a charging profile
        assert slot is not None
        whole_station = slot.purpose.endswith("MaxProfile")
        rating = per_evse * (len(caps.evse_ids) if whole_station else 1)
        plan = restore_plan(
            directive.id,
            station_id,
            from_w=from_w,
            to_w=rating if ceiling is None else min(rating, ceiling),
            rating_w=rating,
            ramp_pct_per_s=paced.ramp_pct_per_s,
            max_delay_s=paced.max_delay_s,
            max_steps=(caps.periods_per_schedule or DEFAULT_PERIODS) - 1,
        )
        hold = plan[-1].offset_s - plan[-2].offset_s if len(plan) > 1 else 1
        end_s = plan[-1].offset_s + max(1, hold)
        # The restore starts on the whole second after `at` (mappings/restore_profiles.py): cap from there.
        start = datetime.fromisoformat(_schedule_start(command).replace("Z", "+00:00"))
        whole = start + timedelta(seconds=math.ceil((at - start).total_seconds()))
        max_steps = (caps.periods_per_schedule or DEFAULT_PERIODS) - 1
        steps = capped(plan, whole, limits, rank=(directive.priority, number), end_s=end_s, max_steps=max_steps)
        return with_restore(command, steps, restore_at=at, end_s=end_s, volts=caps.nominal_voltage_v)

    def _limits_over(
        self, record: DirectiveRecord, station_id: str, caps: StationCapabilities, at: datetime
    ) -> list[Other]:
        """The other directives for this station that may be in force from `at` on, each with the import limit the
        station holds for it (its share of an aggregate, in its own window): what caps the ramp."""
        found = []
        for other in self._store.live_directives():
            o = other.directive
            if other.number == record.number or not self._fleet.aims_at(o.target, station_id) or not _limits(o):
                continue
            own = o if o.is_default else self._hooks.own(o, station_id, other.created)
            end = None if o.is_default else own.end(other.created)
            if end is not None and end <= at:
                continue
            held = [
                w
                for c in self._hooks.mapped(other, station_id, caps).commands
                if (w := curtailed_limit_w(c, volts=caps.nominal_voltage_v)) is not None
            ]
            if held:
                candidate = Candidate(o.id, o.priority, other.number, frozenset({IMPORT}), o.is_default, own.start, end)
                found.append(Other(candidate, min(held)))
        return found

    def _others(self, record: DirectiveRecord, station_id: str, at: datetime) -> list[DirectiveRecord]:
        """The other directives for this station in force at `at` (defaults always), best priority first."""
        found = []
        for other in self._store.live_directives():
            o = other.directive
            if other.number == record.number or not self._fleet.aims_at(o.target, station_id):
                continue
            if not o.is_default:
                own = self._hooks.own(o, station_id, other.created)
                end = own.end(other.created)
                if own.start is None or own.start > at or (end is not None and end <= at):
                    continue
            found.append(other)
        return sorted(found, key=lambda r: (r.directive.priority, -r.number))

    def _audit(self, record: DirectiveRecord, trigger: str, paced: Pace, at: datetime) -> None:
        """One restore.planned per directive, trigger and pace, at the first station that restores with it."""
        key = (record.directive.id, trigger, paced)
        if key in self._planned:
            return
        self._planned.add(key)
        data: Mapping[str, Any] = {
            "number": record.number,
            "trigger": trigger,
            "first_at": at.isoformat(),
            "ramp_pct_per_s": paced.ramp_pct_per_s,
            "ramp_source": paced.ramp_source,
            "max_delay_s": paced.max_delay_s,
            "delay_source": paced.delay_source,
            "lead_s": self.settings.lead_s,
        }
        self._hooks.append("restore.planned", data, at=self._hooks.now(), directive_id=record.directive.id)


def _schedule_start(command: OcppCommand) -> str:
    profile = command.payload.get("chargingProfile") or command.payload["csChargingProfiles"]
    schedule = profile["chargingSchedule"]
    start: str = (schedule[0] if isinstance(schedule, list) else schedule)["startSchedule"]
    return start
