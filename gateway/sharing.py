"""Aggregate targets: a directive whose `target.share` is `total` has its import/export limits shared across its
stations (docs/dispatch.md, "Aggregate targets"). The split is `mappings.allocation`; this module feeds it from
the fleet registry, hands each station its share (the dispatcher maps the directive through `variant`), and
re-shares when a station becomes ready, drops, or a vehicle arrives or leaves: decreases are sent and answered
before any increase, and increases only take the room the confirmed decreases freed.

Per directive and limit two tables are kept: `allowed`, what each station is to hold (what a fan-out or a
reconciliation sends it), and `held`, what it may be holding now (the accounting against the cap): the last value
it confirmed, or the larger of that and one it was sent but did not confirm. A station that is not ready (offline,
or its capabilities not read yet) keeps its `held` value reserved: it may still be charging at it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.entry import AuditEntry
from gateway.clock import Clock
from gateway.dispatch import Dispatcher
from gateway.fleet import Fleet, StationState
from gateway.model import Directive, DirectiveState, OutcomeStatus, Share, Target
from gateway.store import Store
from mappings.allocation import Member, allocate, fit_raises, transition

#: The limits a total share applies to.
LIMITS = ("import_limit_w", "export_limit_w")
#: A station's import rating when neither the configuration nor the station gives one (A x V x phases), and the
#: least current an EV charges at (IEC 61851-1: 6 A).
DEFAULT_RATING_A = 32.0
MIN_CURRENT_A = 6.0
_ENDED = (DirectiveState.CANCELLED, DirectiveState.COMPLETED, DirectiveState.SUPERSEDED, DirectiveState.FAILED)
_CONFIRMED = (OutcomeStatus.ACCEPTED, OutcomeStatus.PARTIAL)
#: Reasons named in one decision's audit entry (a connect storm gathers thousands).
_REASONS = 20

#: Configured (max_w, min_w) of a station, either None when not configured.
Ratings = Callable[[str], tuple[float | None, float | None]]
Table = dict[str, dict[str, float]]


@dataclass
class _Aggregate:
    directive_id: str
    #: The caps the shares were decided for, by limit name.
    caps: dict[str, float]
    stations: frozenset[str]
    allowed: Table
    held: Table
    reasons: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    #: The target the stations were resolved from.
    target: Target | None = None
    #: A fan-out of a changed version is sending `allowed`: what it delivers is held.
    fanout: bool = False


class Sharing:
    """Shares of every live aggregate directive, kept in memory and re-decided as the fleet changes."""

    def __init__(
        self,
        fleet: Fleet,
        store: Store,
        dispatcher: Dispatcher,
        clock: Clock,
        ratings: Ratings,
        history: Callable[[str], Mapping[str, Any] | None] = lambda _: None,
    ) -> None:
        """`history(directive_id)` is the data of the directive's last `allocation.decided` entry, if any, with
        `reached` (`reached_after`) when the audit after it is known: after a restart, stations are counted at what
        they may hold."""
        self._history = history
        self._fleet = fleet
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._ratings = ratings
        self._aggregates: dict[str, _Aggregate] = {}
        #: Per station: (ready, charging) as last seen, so only changes that matter re-share.
        self._seen: dict[str, tuple[bool, bool]] = {}
        dispatcher.set_variant(self.variant)
        fleet.on_change(self._station_changed)

    def variant(self, directive: Directive, station_id: str) -> Directive:
        """`directive` as `station_id` is to hold it: its limits replaced by the station's shares."""
        if directive.target.share is not Share.TOTAL:
            return directive
        aggregate = self._current(directive)
        controls = {name: aggregate.allowed[name].get(station_id, 0.0) for name in aggregate.caps}
        return directive.model_copy(update={"controls": directive.controls.model_copy(update=controls)})

    def shares(self, directive_id: str) -> Table:
        """What each station is to hold now, by limit (W); empty for a directive that is not shared."""
        aggregate = self._aggregates.get(directive_id)
        return {} if aggregate is None else _copy(aggregate.allowed)

    async def settled(self) -> None:
        """Until no re-sharing is under way."""
        while running := self._running():
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        """Stop re-sharing (shutdown): what was sent stays; a restart reads the last decision back."""
        running = self._running()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _running(self) -> list[asyncio.Task[None]]:
        return [a.task for a in self._aggregates.values() if a.task is not None and not a.task.done()]

    # -- deciding ------------------------------------------------------------------------------------------------

    def _current(self, directive: Directive) -> _Aggregate:
        """The shares of `directive`, decided now if it is new or its caps or stations changed."""
        caps = {name: value for name in LIMITS if (value := getattr(directive.controls, name)) is not None}
        aggregate = self._aggregates.get(directive.id) or self._restored(directive.id)
        if aggregate is not None and aggregate.caps == caps and aggregate.target == directive.target:
            return aggregate  # called once per station of a fan-out: resolving the target again would be O(n^2)
        stations = self._stations(directive)
        shares, members = self._decide(caps, stations, {} if aggregate is None else aggregate.held)
        if aggregate is None:
            # First send: nothing of it is on the stations yet, so everyone gets the share at once.
            aggregate = _Aggregate(directive.id, caps, stations, shares, _copy(shares))
            aggregate.target = directive.target
            self._aggregates[directive.id] = aggregate
            self._audit(directive.id, "received", caps, members, {}, shares, shares)
            return aggregate
        # Changed caps or stations (or shares restored after a restart): what goes out now only lowers; raises
        # follow once it is answered.
        reason = "restored" if not aggregate.caps else "changed"
        aggregate.caps, aggregate.stations, aggregate.target = caps, stations, directive.target
        aggregate.allowed = {
            name: {sid: min(share, aggregate.held.get(name, {}).get(sid, 0.0)) for sid, share in table.items()}
            for name, table in shares.items()
        }
        aggregate.held = {name: aggregate.held.get(name, {}) for name in caps}
        self._audit(directive.id, reason, caps, members, aggregate.held, shares, aggregate.allowed)
        aggregate.fanout = reason == "changed"
        self._schedule(aggregate, reason)
        return aggregate

    def _restored(self, directive_id: str) -> _Aggregate | None:
        """The shares last decided before a restart, each station counted at what it may hold; with no caps, so they
        are decided again at once.

        The decision's `sent` table holds raises that wait for the decreases' answers and may never have left: a
        station counted at one would be sent it again at once, ungated. So with the audit after the decision known
        (`reached`), a station is counted at its new value once it accepted a command, at the larger of the two
        while one is unanswered, and at its value before the decision when nothing was sent; without it, at the
        larger of the two."""
        last = self._history(directive_id)
        if last is None:
            return None
        sent: Table = last.get("sent", {})
        previous: Table = last.get("previous", {})
        reached: Mapping[str, str] | None = last.get("reached")
        held = {
            name: {sid: _may_hold(w, previous.get(name, {}).get(sid, 0.0), reached, sid) for sid, w in table.items()}
            for name, table in sent.items()
        }
        aggregate = _Aggregate(directive_id, {}, frozenset(), _copy(sent), held)
        self._aggregates[directive_id] = aggregate
        return aggregate

    def _stations(self, directive: Directive) -> frozenset[str]:
        try:
            return frozenset(self._fleet.resolve(directive.target))
        except KeyError:
            return frozenset()

    def _ready(self, state: StationState) -> bool:
        return state.capabilities is not None and state.capabilities_ready.is_set() and state.connected

    def _member(self, state: StationState, name: str) -> Member:
        caps = state.capabilities
        assert caps is not None
        volt_phases = caps.nominal_voltage_v * caps.phases
        if name == "export_limit_w":
            return Member(state.id, caps.max_discharge_rate_w or 0.0, 0.0, state.charging)
        configured_max, configured_min = self._ratings(state.id)
        rating = configured_max or caps.max_charge_rate_w or caps.max_w or DEFAULT_RATING_A * volt_phases
        least = configured_min if configured_min is not None else MIN_CURRENT_A * volt_phases
        return Member(state.id, rating, least, state.charging)

    def _decide(
        self, caps: Mapping[str, float], stations: frozenset[str], held: Mapping[str, Mapping[str, float]]
    ) -> tuple[Table, list[dict[str, Any]]]:
        """New shares per limit: ready stations share what the stations that are not ready leave (they keep what
        they hold), and the members as decided on, for the audit."""
        shares: Table = {}
        members: list[dict[str, Any]] = []
        states = [self._fleet.stations[sid] for sid in sorted(stations) if sid in self._fleet.stations]
        ready = [s for s in states if self._ready(s)]
        for name, cap in caps.items():
            reserved = {s.id: held.get(name, {}).get(s.id, 0.0) for s in states if not self._ready(s)}
            of_name = [self._member(s, name) for s in ready]
            table = allocate(max(0.0, cap - sum(reserved.values())), of_name)
            shares[name] = {sid: _watts(w) for sid, w in {**reserved, **table}.items()}
            members.extend(
                {"limit": name, "station": m.station_id, "max_w": m.max_w, "min_w": m.min_w, "charging": m.charging}
                for m in of_name
            )
        return shares, members

    def _audit(
        self,
        directive_id: str,
        reason: str,
        caps: Mapping[str, float],
        members: list[dict[str, Any]],
        previous: Table,
        shares: Table,
        sent: Table,
        order: list[tuple[str, str, float]] | None = None,
    ) -> None:
        data: dict[str, Any] = {  # copies: the entry is written on the next turn, the tables change meanwhile
            "reason": reason,
            "caps": dict(caps),
            "members": members,
            "previous": _copy(previous),
            "shares": _copy(shares),
            "sent": _copy(sent),
        }
        if order is not None:
            data["order"] = [list(step) for step in order]
        self._fleet.audit.later(AuditEntry("allocation.decided", data, self._clock.now(), directive_id=directive_id))

    # -- re-sharing ----------------------------------------------------------------------------------------------

    def _station_changed(self, station_id: str) -> None:
        state = self._fleet.stations.get(station_id)
        if state is None:
            return
        seen = (self._ready(state), state.charging)
        before = self._seen.get(station_id, (False, False))
        if seen == before:
            return
        self._seen[station_id] = seen
        if seen[0] != before[0]:
            reason = "ready" if seen[0] else "not ready"
        else:
            reason = "session started" if seen[1] else "session ended"
        for aggregate in list(self._aggregates.values()):
            if station_id in aggregate.stations:
                self._schedule(aggregate, f"{station_id} {reason}")

    def _schedule(self, aggregate: _Aggregate, reason: str) -> None:
        aggregate.reasons.append(reason)
        if aggregate.task is None or aggregate.task.done():
            aggregate.task = asyncio.ensure_future(self._run(aggregate))

    async def _run(self, aggregate: _Aggregate) -> None:
        while aggregate.reasons:
            outcomes = await self._dispatcher.wait(aggregate.directive_id)  # its fan-out first
            delivered, aggregate.fanout = aggregate.fanout, False
            for outcome in outcomes if delivered else ():  # what the changed version's fan-out delivered is held
                if outcome.status in _CONFIRMED:
                    for name, table in aggregate.allowed.items():
                        if outcome.station_id in table:
                            aggregate.held.setdefault(name, {})[outcome.station_id] = table[outcome.station_id]
            reasons, aggregate.reasons = aggregate.reasons, []
            more = f"; and {len(reasons) - _REASONS} more" if len(reasons) > _REASONS else ""
            await self._reshare(aggregate, "; ".join(reasons[:_REASONS]) + more)

    async def _reshare(self, aggregate: _Aggregate, reason: str) -> None:
        record = self._store.directive(aggregate.directive_id)
        if record is None or record.state in _ENDED:
            self._aggregates.pop(aggregate.directive_id, None)
            return
        caps, held = aggregate.caps, aggregate.held
        wanted, members = self._decide(caps, aggregate.stations, held)
        lower = {
            name: {sid: w for sid, w in table.items() if w < held.get(name, {}).get(sid, 0.0)}
            for name, table in wanted.items()
        }
        steps = [
            (sid, n, w, w < held.get(n, {}).get(sid, 0.0))
            for n, t in wanted.items()
            for sid, w in transition(held.get(n, {}), t)
        ]
        order = [(sid, n, w) for sid, n, w, down in steps if down] + [
            (sid, n, w) for sid, n, w, down in steps if not down
        ]
        if not order:
            return
        self._audit(aggregate.directive_id, reason, caps, members, held, wanted, wanted, order)  # _audit copies
        # 1. Decreases, all at once; each station's answer decides what it now holds.
        for name, table in lower.items():
            aggregate.allowed.setdefault(name, {}).update(table)
        await self._send(aggregate, {sid for t in lower.values() for sid in t})
        # 2. Increases, within the room the confirmed decreases left.
        raised = {name: fit_raises(caps[name], held.get(name, {}), wanted[name]) for name in wanted}
        for name, table in raised.items():
            aggregate.allowed.setdefault(name, {}).update({sid: _watts(w) for sid, w in table.items()})
        short = [(sid, n, aggregate.allowed[n][sid]) for n, t in raised.items() for sid in t if t[sid] < wanted[n][sid]]
        if short:  # a decrease was not confirmed: those stations still count at what they held
            self._audit(
                aggregate.directive_id, "raises held back", caps, members, held, wanted, aggregate.allowed, short
            )
        await self._send(aggregate, {sid for t in raised.values() for sid in t})

    async def _send(self, aggregate: _Aggregate, stations: set[str]) -> None:
        """Send each station its allowed values and account for what it answered."""
        ready = sorted(sid for sid in stations if self._ready(self._fleet.stations[sid]))
        outcomes = await asyncio.gather(*(self._dispatcher.reapply(aggregate.directive_id, sid) for sid in ready))
        for sid, outcome in zip(ready, outcomes, strict=True):
            confirmed = outcome is not None and outcome.status in _CONFIRMED
            for name, table in aggregate.allowed.items():
                mine = aggregate.held.setdefault(name, {})
                sent = table.get(sid, 0.0)
                mine[sid] = sent if confirmed else max(sent, mine.get(sid, 0.0))


def reached_after(entries: Iterable[tuple[int, str, str | None, str | None, str | None]]) -> dict[str, str]:
    """Per station, how far a directive's commands written after a decision got: "accepted" when its last command
    was answered Accepted, else "sent". `entries`: (seq, kind, station_id, message_id, answer status) of the
    directive's command.sent and station.answer entries after the decision, in any order."""
    reached: dict[str, str] = {}
    last_sent: dict[str, str | None] = {}
    for _, kind, station_id, message_id, status in sorted(entries, key=lambda e: e[0]):
        if station_id is None:
            continue
        if kind == "command.sent":
            last_sent[station_id], reached[station_id] = message_id, "sent"
        elif kind == "station.answer" and status == "Accepted" and last_sent.get(station_id) == message_id:
            reached[station_id] = "accepted"
    return reached


def _may_hold(decided: float, before: float, reached: Mapping[str, str] | None, station_id: str) -> float:
    if reached is None:
        return max(decided, before)
    got = reached.get(station_id)
    return decided if got == "accepted" else max(decided, before) if got == "sent" else before


def _copy(table: Table) -> Table:
    return {name: dict(values) for name, values in table.items()}


def _watts(value: float) -> int:
    """Whole watts, rounded down (so shares never add up to more than the cap), ignoring float noise."""
    return math.floor(value + 1e-6)
