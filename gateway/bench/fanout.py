"""`dergw bench fanout`: connect N simulated stations to a CSMS process and time R fan-outs of a directive.

Three CSMSs run in turn against the same simulator processes' code on the same machine: the gateway, the naive
`ocpp`-library CSMS and the bare websockets floor (gateway/bench/baselines.py). Every process is separate, talks
over 127.0.0.1, and is driven by this one over pipes (gateway/bench/procs.py); times come from time.monotonic,
which is one clock for every process of the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.bench import workload
from gateway.bench.procs import Child
from gateway.bench.stats import median, percentile

KINDS = ("gateway", "naive", "floor")


@dataclass
class Figures:
    """What one CSMS did: connect time, memory, and per-round fan-out, first-frame and CPU figures."""

    kind: str
    connect_s: float = 0.0
    rss_idle_kib: int = 0
    rss_per_station_kib: float = 0.0
    fanout_s: list[float] = field(default_factory=list)
    first_frame_s: list[float] = field(default_factory=list)
    cpu_per_1000_s: list[float] = field(default_factory=list)
    sim_cpu_per_1000_s: list[float] = field(default_factory=list)
    sim_gc_s: list[float] = field(default_factory=list)
    gc_s: list[float] = field(default_factory=list)
    busy_cores: list[float] = field(default_factory=list)
    #: The stations' own calls (heartbeats, meter values) sent during each round, and their answer times, pooled.
    fleet_calls: list[int] = field(default_factory=list)
    fleet_waits_s: list[float] = field(default_factory=list)
    commands: int = 0
    accepted: int = 0


@dataclass
class Report:
    stations: int
    rounds: int
    warmup: int
    sim_procs: int
    figures: dict[str, Figures]
    pin: bool = False
    history: int = 0

    def ratio(self, slow: str, fast: str) -> float | None:
        a, b = self.figures.get(slow), self.figures.get(fast)
        return None if a is None or b is None else median(a.fanout_s) / median(b.fanout_s)

    def render(self) -> str:
        kinds = list(self.figures)
        lines = [
            f"dergw bench fanout: {self.stations} stations, {self.rounds} rounds (+{self.warmup} warm-up), "
            f"{self.sim_procs} simulator process(es)"
            + (", CSMS pinned to one CPU and the simulators to the others" if self.pin else ", CPUs shared")
            + (f", the gateway with {self.history} fleet-wide directives of history" if self.history else ""),
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}",
            f"{'':32}" + "".join(f"{k:>12}" for k in kinds),
        ]

        def row(label: str, values: Sequence[str]) -> None:
            lines.append(f"{label:32}" + "".join(f"{v:>12}" for v in values))

        fig = [self.figures[k] for k in kinds]
        row("connect + boot, all (s)", [f"{f.connect_s:.2f}" for f in fig])
        row("fan-out median (ms)", [f"{median(f.fanout_s) * 1000:.1f}" for f in fig])
        row("fan-out p99 (ms)", [f"{percentile(f.fanout_s, 99) * 1000:.1f}" for f in fig])
        row("first frame median (ms)", [f"{median(f.first_frame_s) * 1000:.2f}" for f in fig])
        row("first frame p99 (ms)", [f"{percentile(f.first_frame_s, 99) * 1000:.2f}" for f in fig])
        row("RSS per idle station (KiB)", [f"{f.rss_per_station_kib:.1f}" for f in fig])
        row("RSS idle, all stations (MiB)", [f"{f.rss_idle_kib / 1024:.0f}" for f in fig])
        row("CPU s per 1000 commands", [f"{median(f.cpu_per_1000_s):.3f}" for f in fig])
        row("CSMS's GC s, most in a round", [f"{max(f.gc_s):.3f}" for f in fig])
        row("simulators' CPU s per 1000", [f"{median(f.sim_cpu_per_1000_s):.3f}" for f in fig])
        row("simulators' GC s, most in a round", [f"{max(f.sim_gc_s):.3f}" for f in fig])
        row("cores busy in the round", [f"{median(f.busy_cores):.2f}" for f in fig])
        row("fleet's own calls in a round", [f"{median(f.fleet_calls):.0f}" for f in fig])
        row("their answers p99 (ms)", [_ms(percentile(f.fleet_waits_s, 99)) if f.fleet_waits_s else "-" for f in fig])
        row("their answers max (ms)", [_ms(max(f.fleet_waits_s)) if f.fleet_waits_s else "-" for f in fig])
        row("commands sent / accepted", [f"{f.commands}/{f.accepted}" for f in fig])
        naive, floor = self.ratio("naive", "gateway"), self.ratio("gateway", "floor")
        if naive is not None:
            lines.append(f"ratio naive / gateway fan-out: {naive:.2f}x (target >= 5x)")
        if floor is not None:
            lines.append(f"ratio gateway / floor fan-out: {floor:.2f}x (target <= 1.5x)")
        return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _measure(
    kind: str,
    *,
    stations: int,
    rounds: int,
    warmup: int,
    sim_procs: int,
    meter_interval: float,
    heartbeat: int,
    timeout: float,
    data_dir: Path | None,
    profile: Path | None,
    pin: bool = False,
    history: int = 0,
) -> Figures:
    counts = [stations // sim_procs + (1 if p < stations % sim_procs else 0) for p in range(sim_procs)]
    fleets = [f"B{p}x:{n}" for p, n in enumerate(counts) if n]
    args = [kind, "--heartbeat", str(heartbeat), "--start", workload.start_time().isoformat()]
    args += [a for f in fleets for a in ("--fleet", f)]
    if data_dir is not None:
        args += ["--dir", str(data_dir / kind)]
    if profile is not None and kind == "gateway":
        args += ["--profile", str(profile)]
    if history and kind == "gateway":
        args += ["--history", str(history)]
    figures = Figures(kind)
    print(f"{kind}: starting, then connecting {stations} stations", flush=True)
    csms_cpus, sim_cpus = _split_cpus() if pin else (None, None)
    server = Child(kind, "gateway.bench.servers", args, csms_cpus)
    sims: list[Child] = []
    try:
        hello = server.read(max(120.0, timeout) if history else 120)  # history is written before it listens
        url = f"ws://127.0.0.1:{hello['port']}/ocpp"
        for f in fleets:
            prefix, count = f.rsplit(":", 1)
            sims.append(
                Child(
                    f"sim-{prefix}",
                    "gateway.bench.simproc",
                    ["--url", url, "--count", count, "--prefix", prefix, "--meter-interval", str(meter_interval)],
                    sim_cpus,
                )
            )
        starting = min(sim.read(120)["starting"] for sim in sims)
        ready = server.request(f"ready {stations} {timeout}", timeout + 30)
        for sim in sims:
            started = sim.read(timeout)
            if started["failures"]:
                raise RuntimeError(f"{sim.name}: {started['failures']} stations failed to connect")
        figures.connect_s = ready["ready_at"] - starting
        figures.rss_idle_kib = ready["rss_kib"]
        figures.rss_per_station_kib = (ready["rss_kib"] - hello["rss_kib"]) / stations
        print(f"{kind}: {stations} stations ready in {figures.connect_s:.2f} s", flush=True)
        for number in range(1, warmup + rounds + 1):
            for sim in sims:  # the load generator's own garbage is not collected inside a round
                sim.request("collect", 60)
            done = server.request(f"round {number}", timeout)
            firsts = [sim.request(f"first {done['t0']}", 30)["first"] for sim in sims]
            spent = [sim.request(f"cpu {done['t0']} {done['done']}", 30) for sim in sims]
            waits = [w for sim in sims for w in sim.request(f"calls {done['t0']} {done['done']}", 30)["waits"]]
            sim_cpu = sum(s["cpu_s"] for s in spent)
            measured = number > warmup
            print(
                f"{kind}: round {number}{'' if measured else ' (warm-up)'}: {done['commands']} commands, "
                f"{done['accepted']} accepted, {(done['done'] - done['t0']) * 1000:.1f} ms",
                flush=True,
            )
            if not measured:
                continue
            figures.fanout_s.append(done["done"] - done["t0"])
            figures.first_frame_s.append(min(f for f in firsts if f is not None) - done["t0"])
            figures.cpu_per_1000_s.append(done["cpu_s"] / max(1, done["commands"]) * 1000)
            figures.sim_cpu_per_1000_s.append(sim_cpu / max(1, done["commands"]) * 1000)
            figures.sim_gc_s.append(sum(s["gc_s"] for s in spent))
            figures.gc_s.append(done["gc_s"])
            figures.busy_cores.append((done["cpu_s"] + sim_cpu) / (done["done"] - done["t0"]))
            figures.fleet_calls.append(len(waits))
            figures.fleet_waits_s.extend(waits)
            figures.commands += done["commands"]
            figures.accepted += done["accepted"]
    finally:
        for sim in sims:
            sim.close()
        server.close()
    return figures


def _split_cpus() -> tuple[set[int], set[int]]:
    """The CSMS on the first CPU this process may use, the simulators on the others: the load generator then takes
    no CPU from the CSMS under test, as if it ran on other machines (`--pin`)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise ValueError("--pin needs at least two CPUs")
    return {cpus[0]}, set(cpus[1:])


def run_fanout(
    *,
    stations: int,
    rounds: int,
    warmup: int = 1,
    sim_procs: int = 1,
    meter_interval: float = 30.0,
    heartbeat: int = 60,
    timeout: float = 300.0,
    kinds: Sequence[str] = KINDS,
    data_dir: Path | None = None,
    profile: Path | None = None,
    pin: bool = False,
    history: int = 0,
) -> Report:
    figures = {
        kind: _measure(
            kind,
            stations=stations,
            rounds=rounds,
            warmup=warmup,
            sim_procs=sim_procs,
            meter_interval=meter_interval,
            heartbeat=heartbeat,
            timeout=timeout,
            data_dir=data_dir,
            profile=profile,
            pin=pin,
            history=history,
        )
        for kind in kinds
    }
    return Report(stations, rounds, warmup, sim_procs, figures, pin, history)


def register_bench(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `fanout` under `dergw bench`."""
    p = bench_subparsers.add_parser("fanout", help="fan-out of a directive to N stations vs. two baselines")
    p.add_argument("--stations", type=int, default=1000, help="simulated stations (default 1000)")
    p.add_argument("--rounds", type=int, default=5, help="measured fan-outs per CSMS (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="fan-outs before measuring (default 1)")
    p.add_argument("--sim-procs", type=int, default=1, help="simulator processes sharing the stations (default 1)")
    p.add_argument("--meter-interval", type=float, default=30.0, help="background MeterValues period per station")
    p.add_argument("--heartbeat", type=int, default=60, help="heartbeat interval given to stations (s)")
    p.add_argument("--timeout", type=float, default=300.0, help="bound on connecting and on each round (s)")
    p.add_argument("--only", choices=KINDS, action="append", help="measure only this CSMS (repeatable)")
    p.add_argument("--dir", type=Path, help="keep the gateway's SQLite file here (default: a temporary directory)")
    p.add_argument("--profile", type=Path, help="profile the gateway's rounds with cProfile and write the stats here")
    p.add_argument(
        "--pin", action="store_true", help="run the CSMS on one CPU and the simulators on the others (Linux)"
    )
    p.add_argument(
        "--history", type=int, default=0, help="start the gateway with this many ended fleet-wide directives on file"
    )
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.stations < 1 or args.rounds < 1 or args.warmup < 0 or args.sim_procs < 1 or args.history < 0:
        print(
            "dergw bench fanout: --stations, --rounds and --sim-procs must be positive, --warmup and --history not"
            " negative",
            file=sys.stderr,
        )
        return 2
    report = run_fanout(
        stations=args.stations,
        rounds=args.rounds,
        warmup=args.warmup,
        sim_procs=min(args.sim_procs, args.stations),
        meter_interval=args.meter_interval,
        heartbeat=args.heartbeat,
        timeout=args.timeout,
        kinds=args.only or KINDS,
        data_dir=args.dir,
        profile=args.profile,
        pin=args.pin,
        history=args.history,
    )
    print(report.render(), flush=True)
    return 0
