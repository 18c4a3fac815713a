"""`dergw bench fanout` on a tiny fleet: it completes and prints every figure (speed is measured, not tested)."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bench.procs import Child
from gateway.bench.simproc import CallTimes
from gateway.bench.stats import median, percentile
from gateway.cli import main


def test_fanout_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fanout", "--stations", "20", "--rounds", "2", "--sim-procs", "2", "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("dergw bench fanout:") :]
    assert re.search(r"^\s+gateway\s+naive\s+floor$", table, re.MULTILINE)
    for label in (
        "connect + boot, all (s)",
        "fan-out median (ms)",
        "fan-out p99 (ms)",
        "first frame median (ms)",
        "first frame p99 (ms)",
        "RSS per idle station (KiB)",
        "CPU s per 1000 commands",
        "simulators' CPU s per 1000",
        "CSMS's GC s, most in a round",
        "simulators' GC s, most in a round",
        "cores busy in the round",
        "fleet's own calls in a round",
    ):
        (line,) = [line for line in table.splitlines() if line.startswith(label)]
        values = [float(v) for v in line[len(label) :].split()]
        assert len(values) == 3, line
        assert all(v >= 0 for v in values), line
        if "fan-out" in label or "first frame" in label or "connect" in label:
            assert all(v > 0 for v in values), line
    for label in ("their answers p99 (ms)", "their answers max (ms)"):  # "-" when no station called in a round
        (line,) = [line for line in table.splitlines() if line.startswith(label)]
        shown = line[len(label) :].split()
        assert len(shown) == 3, line
        assert all(v == "-" or float(v) > 0 for v in shown), line
    (sent,) = [line for line in table.splitlines() if line.startswith("commands sent / accepted")]
    assert sent.split()[-3:] == ["40/40", "40/40", "40/40"]
    assert re.search(r"ratio naive / gateway fan-out: \d+\.\d\dx", table)
    assert re.search(r"ratio gateway / floor fan-out: \d+\.\d\dx", table)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--pin needs two CPUs")
def test_pinned_bench_runs_each_side_on_its_own_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["bench", "fanout", "--stations", "10", "--rounds", "1", "--only", "floor", "--pin", "--timeout", "60"])
        == 0
    )
    out = capsys.readouterr().out
    assert "CSMS pinned to one CPU and the simulators to the others" in out
    (sent,) = [line for line in out.splitlines() if line.startswith("commands sent / accepted")]
    assert sent.split()[-1] == "10/10"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_children_run_on_the_cpus_they_are_given() -> None:
    last = max(os.sched_getaffinity(0))
    child = Child("floor", "gateway.bench.servers", ["floor", "--start", "2030-01-01T00:00:00+00:00"], {last})
    try:
        assert "port" in child.read(60)  # started and listening, on the CPU it was given
        assert os.sched_getaffinity(child.pid) == {last}
    finally:
        child.close()


def test_stats() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert percentile([5.0, 1.0, 3.0], 99) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


@contextlib.contextmanager
def _two_stations(kind: str = "floor") -> Iterator[tuple[Child, Child, float]]:
    """A CSMS process of the bench and a simulator process of two stations, booted: both, and when the simulator
    started its stations."""
    csms = Child(kind, "gateway.bench.servers", [kind, "--start", "2030-01-01T00:00:00+00:00"])
    try:
        url = f"ws://127.0.0.1:{csms.read(60)['port']}/ocpp"
        sim = Child("sim", "gateway.bench.simproc", ["--url", url, "--count", "2", "--prefix", "G"])
        try:
            t0 = sim.read(60)["starting"]
            started = sim.read(60)
            assert (started["booted"], started["failures"]) == (2, 0)
            yield csms, sim, t0
        finally:
            sim.close()
    finally:
        csms.close()


def test_the_load_generator_collects_between_rounds_only() -> None:
    """A simulator process collects its garbage when told (between rounds) and counts the collection's time in the
    window it falls in; its automatic collector stays off."""
    with _two_stations() as (_, sim, t0):
        assert sim.request("collect", 60)["automatic"] is False
        # the collections after boot and when told fall in the first window, none in the one before it
        assert sim.request(f"cpu {t0} {time.monotonic()}", 30)["gc_s"] > 0
        assert sim.request(f"cpu {t0 - 60} {t0}", 30)["gc_s"] == 0


def test_the_load_generator_times_the_stations_own_calls() -> None:
    """`calls T0 T1` answers how long the CSMS took to answer each call the stations sent in the window (here their
    boot and status notifications), none for a window before they started."""
    with _two_stations() as (_, sim, t0):
        waits = sim.request(f"calls {t0} {time.monotonic()}", 30)["waits"]
        assert len(waits) >= 2  # a BootNotification each, at least
        assert all(0 < w < 60 for w in waits)
        assert sim.request(f"calls {t0 - 60} {t0 - 1e-6}", 30)["waits"] == []


def test_call_times_count_a_call_still_unanswered_as_waiting_so_far() -> None:
    times = CallTimes()
    answered, unanswered, before = times.sent(10.0), times.sent(11.0), times.sent(5.0)
    times.answered(answered, 10.25)
    times.answered(before, 5.5)
    assert sorted(times.waits(9.0, 12.0, now=14.0)) == [0.25, 3.0]
    times.answered(unanswered, 11.5)
    assert sorted(times.waits(9.0, 12.0, now=20.0)) == [0.25, 0.5]
    assert times.waits(0.0, 5.0, now=20.0) == [0.5]


@pytest.mark.parametrize(("kind", "automatic"), [("floor", False), ("naive", True)])
def test_the_floor_collects_between_rounds_and_the_naive_csms_as_python_does(kind: str, automatic: bool) -> None:
    """The floor stands for the wire's limit: its collector, like the load generator's, is off in a round (after a
    full collection before it); the naive CSMS keeps Python's automatic collector. Each says how long its
    collections took in the round."""
    with _two_stations(kind) as (csms, _, _):
        assert csms.request("ready 2 30", 60)["ready"] == 2
        done = csms.request("round 1", 60)
        assert (done["commands"], done["accepted"], done["automatic"]) == (2, 2, automatic)
        assert done["gc_s"] >= 0


def test_the_gateway_starts_with_the_history_asked_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--history N: the gateway's file holds N ended fleet-wide directives with every station's outcome and audit
    entries before the rounds, the rounds run on top, and the audit log still verifies."""
    args = ["bench", "fanout", "--stations", "6", "--rounds", "1", "--warmup", "0", "--only", "gateway"]
    assert main([*args, "--history", "2", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the gateway with 2 fleet-wide directives of history" in out
    db = tmp_path / "gateway" / "dergw.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        states = dict(conn.execute("SELECT id, state FROM directives"))
        outcomes = conn.execute("SELECT directive_id, count(*) FROM outcomes GROUP BY directive_id").fetchall()
        answers = conn.execute(
            "SELECT directive_id, count(*) FROM audit_entries WHERE kind = 'station.answer'"
            " AND directive_id IS NOT NULL GROUP BY directive_id"
        ).fetchall()
    assert {k: v for k, v in states.items() if k.startswith("history-")} == {
        "history-1": "completed",
        "history-2": "completed",
    }
    assert "bench-1" in states
    assert sorted(outcomes) == [("bench-1", 6), ("history-1", 6), ("history-2", 6)]
    assert sorted(answers) == [("bench-1", 6), ("history-1", 6), ("history-2", 6)]
    assert main(["audit", "verify", "--keys", str(tmp_path / "gateway" / "certs"), str(db)]) == 0
