"""`dergw bench stacks`: the stack-level snapshot a station reconnect takes (`Stacks.load` and the placement for that
station), before and after the store read only the directives placement needs and kept them between changes.

A store (SQLite in a temporary directory) holds `--directives` directives: `--live` live ones, a few that ended
after the first live one was received (they still share levels), and the rest ended long before. Then every one of
`--stations` stations reconnects once, as after an outage: each reconnect loads the snapshot and places its
station's profiles. "before" reads and parses every stored directive per reconnect (the old `Stacks.load`, timed
on `--sample` reconnects); "after" is `Stacks.load` as it is now (one narrowed read, shared by every reconnect
until a directive changes); "after, cold" forces the narrowed read on every reconnect.

It also times the outcome reads of a reconnect for the `--sample` stations, each given an outcome of every stored
directive (as if every one had targeted the fleet; the ended ones with a restore ramp, running at the reconnect for
those that ended lately): "before" decodes the station's whole history twice (was anything of ours ever there;
which restore ramps does it follow), "after" asks whether a row exists and decodes only outcomes whose notes name a
ramp still running. Both must find the same running ramps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from gateway.model import (
    CommandOutcome,
    Directive,
    DirectiveState,
    OcppVersion,
    OutcomeStatus,
    StationCapabilities,
    StationOutcome,
    Target,
)
from gateway.restorer import ramps_of, running_ramps
from gateway.stacks import Stacks
from gateway.store import Store
from mappings.restore_profiles import RESTORE_NOTE
from mappings.units import timestamp

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
GROUP = 50
#: How long each ended directive's restore ramp lasts (a few minutes at the default pace).
RAMP = timedelta(minutes=10)
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Figures:
    stations: int
    directives: int
    needed: int
    #: Seconds per reconnect (median) and the total for every station.
    before_s: float
    after_cold_s: float
    after_s: float
    after_total_s: float
    #: The outcome reads of one reconnect (median seconds), with an outcome of every stored directive per station.
    reads_before_s: float
    reads_after_s: float

    @property
    def history(self) -> int:
        """Outcomes per station whose reads are timed."""
        return self.directives

    def lines(self) -> list[str]:
        return [
            f"{self.directives} stored directives, {self.needed} of them can share stack levels; "
            f"{self.stations} stations reconnect",
            f"before (every directive read per reconnect): {self.before_s * 1e3:8.2f} ms per reconnect, "
            f"{self.before_s * self.stations:8.1f} s for all",
            f"after, cold (narrowed read per reconnect):    {self.after_cold_s * 1e3:8.2f} ms per reconnect, "
            f"{self.after_cold_s * self.stations:8.1f} s for all",
            f"after (one snapshot shared):                 {self.after_s * 1e3:8.2f} ms per reconnect, "
            f"{self.after_total_s:8.1f} s for all (measured)",
            f"outcome reads of a reconnect, {self.history} outcomes per station: "
            f"before {self.reads_before_s * 1e3:.2f} ms, after {self.reads_after_s * 1e3:.3f} ms "
            f"({self.reads_before_s / self.reads_after_s:.0f}x); for all stations "
            f"{self.reads_before_s * self.stations:.1f} s vs {self.reads_after_s * self.stations:.2f} s",
        ]


def _fill(store: Store, directives: int, live: int, stations: int) -> Callable[[Target, str], bool]:
    groups = max(1, stations // GROUP)
    members = {f"g{g}": {f"S{i}" for i in range(g * GROUP, min(stations, (g + 1) * GROUP))} for g in range(groups)}
    ended = directives - live
    recent = min(ended, max(1, ended // 20))  # ended after the first live one came: still placed with it
    for i in range(directives):
        group = f"g{i % groups}"
        if i < ended - recent:  # long ended (completed at the end of its window): one every 10 minutes before
            at = T0 - timedelta(hours=2, minutes=10 * (ended - i))
            state, updated = DirectiveState.COMPLETED, at + timedelta(minutes=90)
        elif i < ended:
            at, state = T0 + timedelta(minutes=i - ended), DirectiveState.CANCELLED
            updated = T0 + timedelta(minutes=5)
        else:
            at, state, updated = T0 + timedelta(minutes=i - ended), DirectiveState.SCHEDULED, None
        directive = Directive.model_validate(
            {
                "id": f"d{i}",
                "priority": 1 + i % 3,
                "start": (at + timedelta(minutes=30)).isoformat(),
                "duration_s": 3600,
                "target": {"scope": "group", "ids": [group]},
                "controls": {"import_limit_w": 1000.0 + i},
            }
        )
        store.add_directive(directive, DirectiveState.RECEIVED, at)
        store.set_directive_state(directive.id, state, updated or at)

    def aims_at(target: Target, station_id: str) -> bool:
        return any(station_id in members.get(g, ()) for g in target.ids)

    return aims_at


def _fill_outcomes(store: Store, stations: list[str]) -> None:
    """An accepted outcome of every stored directive at each of `stations`; an ended one's carries its restore ramp
    (from its last update, for `RAMP`)."""
    for record in store.directives(None, limit=100_000):
        ramp = None
        if record.state in (DirectiveState.COMPLETED, DirectiveState.CANCELLED):
            ended = record.updated
            ramp = f"{RESTORE_NOTE} {timestamp(ended)} until {timestamp(ended + RAMP)}"
        command = CommandOutcome(
            action="SetChargingProfile",
            message_id=f"m-{record.number}",
            controls=["import_limit_w"],
            status=OutcomeStatus.ACCEPTED,
            answer="Accepted",
            detail=ramp,
        )
        outcomes = [
            StationOutcome(
                directive_id=record.directive.id,
                station_id=sid,
                status=OutcomeStatus.ACCEPTED,
                commands=[command],
                updated=record.updated,
            )
            for sid in stations
        ]
        store.save_outcomes(outcomes, record.updated)


def _time_each(work: Callable[[str], _R], stations: list[str]) -> tuple[list[float], list[_R]]:
    """Seconds `work` took for each station, and what it returned."""
    times, results = [], []
    for station in stations:
        began = time.perf_counter()
        results.append(work(station))
        times.append(time.perf_counter() - began)
    return times, results


def _reads_before(store: Store, station: str) -> set[str]:
    every = [s.value for s in OutcomeStatus]
    if not store.station_outcomes(station, [s for s in every if s != OutcomeStatus.CLEARED.value]):
        return set()
    return {o.directive_id for o, _ in running_ramps(store.station_outcomes(station, every), T0)}


def _reads_after(store: Store, station: str) -> set[str]:
    if not store.has_outcomes(station, besides=OutcomeStatus.CLEARED):
        return set()
    return {o.directive_id for o, _ in ramps_of(store, station, T0)}


def _old_load(store: Store, aims_at: Callable[[Target, str], bool]) -> Stacks:
    owed = {(did, sid): due for did, sid, due in store.pending_clears()}
    return Stacks(store.directives(None, limit=100_000), aims_at, owed)


def _time(load: Callable[[], Stacks], stations: list[str], caps: StationCapabilities) -> list[float]:
    return _time_each(lambda station: load().levels(station, caps), stations)[0]


def measure(*, stations: int, directives: int, live: int, sample: int, data_dir: Path | None = None) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store((data_dir or Path(tmp)) / "bench-stacks.sqlite")
        try:
            aims_at = _fill(store, directives, min(live, directives), stations)
            caps = StationCapabilities(version=OcppVersion.V21)
            ids = [f"S{i}" for i in range(stations)]
            sampled = ids[:: max(1, stations // sample)][:sample]
            before = _time(lambda: _old_load(store, aims_at), sampled, caps)

            def cold() -> Stacks:
                store._generation += 1  # as if a directive had changed: the narrowed read runs again
                return Stacks.load(store, aims_at, T0)

            after_cold = _time(cold, sampled, caps)
            began = time.perf_counter()
            after = _time(lambda: Stacks.load(store, aims_at, T0), ids, caps)
            total = time.perf_counter() - began
            _fill_outcomes(store, sampled)
            reads_before, found_before = _time_each(lambda sid: _reads_before(store, sid), sampled)
            reads_after, found_after = _time_each(lambda sid: _reads_after(store, sid), sampled)
            if found_before != found_after or not any(found_after):
                raise RuntimeError("the narrowed outcome reads found other running ramps than the full ones")
            return Figures(
                stations=stations,
                directives=directives,
                needed=len(store.stacking_directives(T0)),
                before_s=statistics.median(before),
                after_cold_s=statistics.median(after_cold),
                after_s=statistics.median(after),
                after_total_s=total,
                reads_before_s=statistics.median(reads_before),
                reads_after_s=statistics.median(reads_after),
            )
        finally:
            store.close()


def register_bench(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `stacks` under `dergw bench`."""
    p = bench_subparsers.add_parser("stacks", help="stack-level snapshot per station reconnect, before and after")
    p.add_argument("--stations", type=int, default=2000, help="stations reconnecting (default 2000)")
    p.add_argument("--directives", type=int, default=1000, help="stored directives (default 1000)")
    p.add_argument("--live", type=int, default=20, help="of which live (default 20)")
    p.add_argument("--sample", type=int, default=100, help="reconnects timed for 'before' and 'cold' (default 100)")
    p.add_argument("--dir", type=Path, help="keep the SQLite file here (default: a temporary directory)")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    if min(args.stations, args.directives, args.sample) < 1 or args.live < 0:
        print("dergw bench stacks: --stations, --directives and --sample must be positive")
        return 2
    figures = measure(
        stations=args.stations, directives=args.directives, live=args.live, sample=args.sample, data_dir=args.dir
    )
    print("\n".join(figures.lines()))
    return 0
