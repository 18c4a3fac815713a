"""The gateway's own supersession: after a directive's fan-out, the live directives it fully replaces
(`gateway.schedule.supersede.covers`) at stations that took it. The dispatcher then ends them as superseded:
their controls are cleared from the stations and `superseded` goes to the utility that sent them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from gateway.model import Directive, OutcomeStatus, StationOutcome
from gateway.schedule.supersede import covers
from gateway.store import DirectiveRecord, Store

#: Outcomes at which the newer directive counts as in place (an offline station gets it, and loses the older
#: one, when it reconnects).
_TAKEN = frozenset({OutcomeStatus.ACCEPTED, OutcomeStatus.OFFLINE})


def superseded_by(
    store: Store,
    resolve: Callable[[Directive], Iterable[str]],
    newer: DirectiveRecord,
    outcomes: Sequence[StationOutcome],
    now: datetime,
) -> list[str]:
    """Ids of the live directives received before `newer` that it fully replaces at every station they target."""
    taken = {o.station_id for o in outcomes if o.status in _TAKEN}
    found = []
    for older in store.live_directives():
        if older.number >= newer.number:
            continue
        if not covers(newer.directive, newer.created, older.directive, older.created, now):
            continue
        stations = set(resolve(older.directive))
        if stations and stations <= taken:
            found.append(older.directive.id)
    return found
