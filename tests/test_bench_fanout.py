"""`dergw bench fanout` on a tiny fleet: it completes and prints every figure (speed is measured, not tested)."""

from __future__ import annotations

import re

import pytest

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
        "cores busy in the round",
    ):
        (line,) = [line for line in table.splitlines() if line.startswith(label)]
        values = [float(v) for v in line[len(label) :].split()]
        assert len(values) == 3, line
        assert all(v >= 0 for v in values), line
        if "fan-out" in label or "first frame" in label or "connect" in label:
            assert all(v > 0 for v in values), line
    (sent,) = [line for line in table.splitlines() if line.startswith("commands sent / accepted")]
    assert sent.split()[-3:] == ["40/40", "40/40", "40/40"]
    assert re.search(r"ratio naive / gateway fan-out: \d+\.\d\dx", table)
    assert re.search(r"ratio gateway / floor fan-out: \d+\.\d\dx", table)


def test_stats() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert percentile([5.0, 1.0, 3.0], 99) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
