"""`dergw bench outcomes` runs small and prints its figures; its baseline file has the plain station index instead of
the block one, and both files hold the same rows."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main


def test_small_run_prints_both_indexes_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "outcomes", "--stations", "40", "--history", "3", "--batch", "15", "--sample", "5"]
    assert main([*args, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "40 stations, 3 fleet-wide directives of history (120 rows), saved 15 at a time" in out
    for label in ("save a fan-out (ms CPU)", "read one station at reconnect (ms CPU)"):
        (line,) = [line for line in out.splitlines() if line.startswith(label)]
        block, plain, ratio = line[len(label) :].split()
        assert float(block) > 0
        assert float(plain) > 0
        assert ratio.endswith("x")
    rows = {}
    block_index, plain_index = "outcomes_by_block", "outcomes_by_station"
    for name, index, other in (("block", block_index, plain_index), ("plain", plain_index, block_index)):
        with contextlib.closing(sqlite3.connect(tmp_path / f"{name}.sqlite")) as conn:
            indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert index in indexes
            assert other not in indexes
            rows[name] = conn.execute("SELECT directive_id, station_id, status FROM outcomes ORDER BY 1, 2").fetchall()
    assert rows["block"] == rows["plain"]
    assert len(rows["block"]) == 40 * 5  # the history, the warm-up and the timed fan-out


def test_bad_sizes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "outcomes", "--stations", "0"]) == 2
    assert "must be positive" in capsys.readouterr().out
