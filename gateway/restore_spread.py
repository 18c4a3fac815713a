"""The restore spread a simulated fleet will follow after a curtailment ends, read from the charging profiles its
stations hold (each station evaluates its own profiles at every second): the demo's proof that the fleet steps
back over the delay window, not at once (docs/dispatch.md, "Restore")."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.runtime import Gateway
from protocols.ocpp.simulator import SimStation


def _limit(station: SimStation, at: datetime) -> float | None:
    """The lowest limit over the station's EVSEs at `at` (None: nothing limits it)."""
    limits = [station.profiles.rates(e, at).limit_w for e in range(1, station.spec.evses + 1)]
    found = [v for v in limits if v is not None]
    return min(found) if found else None


def restore_report(gateway: Gateway, stations: Sequence[SimStation], directive_id: str) -> list[str]:
    """Lines describing when each station steps back up after `directive_id`'s end, and the fleet's limit over
    time; empty when the directive has no end."""
    record = gateway.store.directive(directive_id)
    end = None if record is None else record.directive.end(record.created)
    if end is None:
        return []
    settings = gateway.dispatcher.settings.restore
    window = int(settings.max_delay_s + (100 / settings.ramp_pct_per_s if settings.ramp_pct_per_s else 0)) + 60
    seconds = range(-1, window)
    series = {s.station_id: [_limit(s, end + timedelta(seconds=t)) for t in seconds] for s in stations if s.booted}
    first: dict[str, int] = {}
    for sid, limits in series.items():
        for t, (a, b) in zip(seconds[1:], itertools.pairwise(limits), strict=True):
            if a is not None and (b is None or b > a):
                first[sid] = t
                break
    if not first:
        return [f"  no station steps back up within {window} s of the end"]
    starts = Counter(first.values())
    lines = [
        f"  {len(first)}/{len(series)} stations step back up after {directive_id}'s end, each on its own ramp:"
        f" first steps from +{min(first.values())} s to +{max(first.values())} s,"
        f" {len(starts)} distinct seconds, at most {max(starts.values())} in any one second",
    ]
    final = {sid: max((v for v in limits if v is not None), default=0.0) for sid, limits in series.items()}
    marks = sorted({0, *range(0, window, max(1, window // 6)), window - 1})
    fleet = [
        (t, sum(final[sid] if limits[t + 1] is None else limits[t + 1] for sid, limits in series.items()) / 1000)
        for t in marks
    ]
    lines.append("  fleet limit over time: " + ", ".join(f"+{t} s {kw:.0f} kW" for t, kw in fleet))
    return lines
