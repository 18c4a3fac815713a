"""Progress of `dergw audit export|verify` on stderr: shown with --progress (or on a terminal), never otherwise, and
never changing what the command writes or returns."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.audit.bench import sample_entry
from gateway.audit.cli import main
from gateway.progress import TICK_EVERY, Progress, sampled, ticking

ENTRIES = 2 * TICK_EVERY + 452  # three ticks' worth: two intermediate counts and the last


@pytest.fixture
def paths(tmp_path: Path) -> tuple[str, str]:
    db, keys = tmp_path / "data" / "dergw.sqlite", tmp_path / "certs"
    with AuditLog.open(db, keys, checkpoint_every=1000) as log:
        for start in range(0, ENTRIES, 500):
            log.append_many([sample_entry(i) for i in range(start, min(start + 500, ENTRIES))])
    return str(db), str(keys)


def counts(err: str, label: str) -> list[tuple[int, int]]:
    return [
        (int(d.replace(",", "")), int(t.replace(",", ""))) for d, t in re.findall(rf"{label}: ([\d,]+)/([\d,]+)", err)
    ]


def test_export_and_verify_show_progress_only_when_asked_and_change_nothing_else(
    paths: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = paths
    quiet, shown = tmp_path / "quiet.zip", tmp_path / "shown.zip"
    assert main(["audit", "export", "--db", db, "--keys", keys, str(quiet)]) == 0
    quiet_out = capsys.readouterr()
    assert quiet_out.err == ""  # stderr is not a terminal here: scripts see nothing
    assert main(["audit", "export", "--db", db, "--keys", keys, "--progress", str(shown)]) == 0
    shown_out = capsys.readouterr()
    assert shown_out.out == quiet_out.out.replace(str(quiet), str(shown))
    lines = counts(shown_out.err, "export: entries written")
    assert lines[0] == (TICK_EVERY, ENTRIES)  # the first tick is shown at once, the final count at the end
    assert lines[-1] == (ENTRIES, ENTRIES)
    assert re.search(r"entries written: [\d,]+/[\d,]+ \(100 %\), [\d,]+/s", shown_out.err)
    with zipfile.ZipFile(quiet) as a, zipfile.ZipFile(shown) as b:
        assert a.read("entries.jsonl") == b.read("entries.jsonl")

    for target in (db, str(shown)):
        assert main(["audit", "verify", "--keys", keys, target]) == 0
        plain = capsys.readouterr()
        assert plain.err == ""
        assert main(["audit", "verify", "--keys", keys, "--progress", target]) == 0
        verbose = capsys.readouterr()
        assert verbose.out == plain.out
        lines = counts(verbose.err, "verify: entries checked")
        assert (lines[0], lines[-1]) == ((TICK_EVERY, ENTRIES), (ENTRIES, ENTRIES))


def test_failed_verify_keeps_its_exit_code_with_progress(
    paths: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = paths
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_entries_no_delete")
        conn.execute("DELETE FROM audit_entries WHERE seq = 1500")
    assert main(["audit", "verify", "--keys", keys, "--progress", db]) == 1
    out = capsys.readouterr()
    assert "first bad entry: seq 1500" in out.out
    assert counts(out.err, "verify: entries checked")[-1] == (ENTRIES - 1, ENTRIES)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_throttled_and_rewritten_in_place_on_a_terminal() -> None:
    now = [0.0]
    lines, tty = io.StringIO(), _Tty()
    for stream in (lines, tty):
        now[0] = 0.0
        progress = Progress("work", stream=stream, interval_s=1.0, clock=lambda: now[0])
        for done in range(100, 1001, 100):
            now[0] += 0.25
            progress(done, 1000)
        progress.finish()
    # Shown at 0.25 s (the first), 1.25 s, 2.25 s, and the final count once it is over.
    assert lines.getvalue().splitlines() == [
        "work: 100/1,000 (10 %), 400/s",
        "work: 500/1,000 (50 %), 400/s",
        "work: 900/1,000 (90 %), 400/s",
        "work: 1,000/1,000 (100 %), 400/s",
    ]
    assert tty.getvalue() == "".join(f"\rwork: {n}/1,000 ({n // 10} %), 400/s" for n in (100, 500, 900)) + (
        "\rwork: 1,000/1,000 (100 %), 400/s\n"
    )


async def test_sampled_shows_the_count_while_the_work_runs_and_the_final_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    booted = 0

    async def boot() -> None:
        nonlocal booted
        booted = 3

    await sampled(boot(), lambda: booted, 3, "fleet: stations booted")
    err = capsys.readouterr().err
    assert counts(err, "fleet: stations booted") == [(0, 3), (3, 3)]  # sampled before the work ran, then at its end


def test_ticking_tells_every_tick_every_items_and_the_count_at_the_end() -> None:
    heard: list[tuple[int, int]] = []
    items = list(range(2 * TICK_EVERY + 3))
    assert [item for _, item in ticking(items, lambda done, total: heard.append((done, total)), 99)] == items
    assert heard == [(TICK_EVERY, 99), (2 * TICK_EVERY, 99), (len(items), 99)]
    heard.clear()
    assert list(ticking([], lambda done, total: heard.append((done, total)), 5)) == []
    assert heard == [(0, 5)]
    assert [n for n, _ in ticking("ab", None, 2)] == [1, 2]
