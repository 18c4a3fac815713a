"""`dergw bench outcomes`: what a fan-out's outcome rows cost to write as the store's history grows.

A store holds `--history` fleet-wide directives of `--stations` outcomes each (rows written as the store writes
them, a shuffled station order each). Then one more fan-out's outcomes are saved the way the dispatcher saves them,
`--batch` at a time in the order the answers come (shuffled), and a `--sample` of stations are read back as a
reconnect reads them (has_outcomes, then the outcomes whose restore ramps run). The same runs again on a file whose
station index is the plain one of earlier releases (by station only, which the same lookups then use), the
baseline: there a fan-out put one row on each of N random index pages, so its cost grew with the history; by block
it does not.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.bench import workload
from gateway.model import DirectiveState, OutcomeStatus, StationOutcome
from gateway.store import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Timing:
    """CPU seconds of one fan-out's outcome writes, and per station read."""

    save_s: float
    read_s: float


@dataclass(frozen=True, slots=True)
class Figures:
    stations: int
    history: int
    batch: int
    block: Timing
    plain: Timing

    def lines(self) -> list[str]:
        rows = [
            f"dergw bench outcomes: {self.stations:,} stations, {self.history:,} fleet-wide directives of history "
            f"({self.stations * self.history:,} rows), saved {self.batch} at a time",
            f"{'':40}{'block index':>14}{'plain index':>14}{'plain / block':>15}",
        ]
        for label, block, plain, digits in (
            ("save a fan-out (ms CPU)", self.block.save_s, self.plain.save_s, 1),
            ("read one station at reconnect (ms CPU)", self.block.read_s, self.plain.read_s, 3),
        ):
            rows.append(f"{label:40}{block * 1e3:>14.{digits}f}{plain * 1e3:>14.{digits}f}{plain / block:>14.2f}x")
        return rows


def measure(*, stations: int, history: int, batch: int, sample: int, data_dir: Path | None = None) -> Figures:
    with contextlib.ExitStack() as stack:
        where = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dergw-bench-outcomes-")))
        where.mkdir(parents=True, exist_ok=True)
        ids = [f"CS{i:05d}" for i in range(stations)]
        block = _run(where / "block.sqlite", ids, history, batch, sample, plain=False)
        plain = _run(where / "plain.sqlite", ids, history, batch, sample, plain=True)
    return Figures(stations, history, batch, block, plain)


def _run(path: Path, ids: list[str], history: int, batch: int, sample: int, *, plain: bool) -> Timing:
    path.unlink(missing_ok=True)
    store = Store(path)
    try:
        if plain:  # the index of earlier releases, by station only: the store's station lookups then go through it
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.executescript(
                    "DROP INDEX outcomes_by_block; CREATE INDEX outcomes_by_station ON outcomes(station_id);"
                )
        rng = random.Random(history)
        for number in range(history):
            _save(store, _outcomes(store, f"h{number}", rng.sample(ids, len(ids))), len(ids))
        _save(store, _outcomes(store, "warm-up", rng.sample(ids, len(ids))), batch)  # and one-time costs
        with contextlib.closing(sqlite3.connect(path)) as conn:  # the history's pages into the file, the WAL emptied
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        order = rng.sample(ids, len(ids))
        outcomes = _outcomes(store, "now", order)
        started = time.process_time()
        _save(store, outcomes, batch)
        saved = time.process_time() - started
        wanted = order[:sample]
        started = time.process_time()
        for sid in wanted:
            store.has_outcomes(sid, besides=OutcomeStatus.CLEARED)
            store.station_ramps(sid, T0)
        read = (time.process_time() - started) / max(1, len(wanted))
    finally:
        store.close()
    return Timing(saved, read)


def _outcomes(store: Store, directive_id: str, order: list[str]) -> list[StationOutcome]:
    """A stored directive and its accepted outcome at every station of `order`."""
    store.add_directive(workload.named(directive_id, T0), DirectiveState.SCHEDULED, T0)
    return [workload.accepted(directive_id, sid, "m", T0) for sid in order]


def _save(store: Store, outcomes: list[StationOutcome], batch: int) -> None:
    """Outcomes saved `batch` at a time, as the dispatcher's group commits save them."""
    for i in range(0, len(outcomes), batch):
        store.save_outcomes(outcomes[i : i + batch], T0)


def register_bench(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `outcomes` under `dergw bench`."""
    p = bench_subparsers.add_parser(
        "outcomes", help="a fan-out's outcome writes as the history grows, vs the plain index"
    )
    p.add_argument("--stations", type=int, default=10_000, help="stations per fan-out (default 10000)")
    p.add_argument("--history", type=int, default=100, help="fleet-wide directives already stored (default 100)")
    p.add_argument("--batch", type=int, default=700, help="outcomes per write, as a group commit (default 700)")
    p.add_argument("--sample", type=int, default=200, help="stations read back as at a reconnect (default 200)")
    p.add_argument("--dir", type=Path, help="keep the SQLite files here (default: a temporary directory)")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    if min(args.stations, args.batch, args.sample) < 1 or args.history < 0:
        print("dergw bench outcomes: --stations, --batch and --sample must be positive, --history not negative")
        return 2
    figures = measure(
        stations=args.stations, history=args.history, batch=args.batch, sample=args.sample, data_dir=args.dir
    )
    print("\n".join(figures.lines()))
    return 0
