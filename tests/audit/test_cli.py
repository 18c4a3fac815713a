"""`dergw audit ...` and `dergw bench audit` through their argparse handlers."""

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.audit.cli import main
from tests.audit.conftest import fill


@pytest.fixture
def paths(tmp_path: Path) -> tuple[str, str]:
    db, keys = tmp_path / "data" / "dergw.sqlite", tmp_path / "certs"
    with AuditLog.open(db, keys, checkpoint_every=10) as log:
        fill(log, 4)
    return str(db), str(keys)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_export_then_verify_bundle_and_database(
    paths: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = paths
    out = str(tmp_path / "out" / "audit.zip")
    code, text = run(capsys, "audit", "export", "--db", db, "--keys", keys, "--directive", "D1", out)
    assert code == 0
    assert "(filtered)" in text
    code, text = run(capsys, "audit", "verify", "--pubkey", f"{keys}/audit-ed25519.pub", out)
    assert code == 0
    assert "OK" in text
    code, text = run(capsys, "audit", "verify", "--keys", keys, db)
    assert (code, "OK" in text) == (0, True)


def test_verify_fails_with_exit_1_and_names_the_entry(
    paths: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, keys = paths
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_entries_no_delete")
        conn.execute("DELETE FROM audit_entries WHERE seq = 7")
    code, text = run(capsys, "audit", "verify", "--keys", keys, db)
    assert code == 1
    assert "first bad entry: seq 7" in text


def test_unusable_input_exits_2(paths: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, keys = paths
    assert main(["audit", "verify", str(tmp_path / "missing")]) == 2
    assert main(["audit", "verify", "--keys", str(tmp_path), db]) == 2
    assert main(["audit", "export", "--db", str(tmp_path / "no.sqlite"), "--keys", keys, "x.zip"]) == 2
    assert main(["audit", "show", "--db", str(tmp_path / "no.sqlite")]) == 2
    assert "dergw audit:" in capsys.readouterr().err


def test_show_filters_and_prints_json_lines(paths: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = paths
    code, text = run(capsys, "audit", "show", "--db", db, "--station", "CS1", "--kind", "command.sent")
    assert code == 0
    assert all("command.sent" in line and "station=CS1" in line for line in text.splitlines())
    code, text = run(capsys, "audit", "show", "--db", db, "--directive", "D2", "--json", "--limit", "4")
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 4
    assert entries[0]["kind"] == "signal.received"
    code, _ = run(capsys, "audit", "show", "--db", db, "--since", "2030-01-01")
    assert code == 1


def test_report_prints_the_summary(paths: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = paths
    code, text = run(capsys, "audit", "report", "--db", db, "D0")
    assert code == 0
    assert "Stations: 3 command(s) sent, 2 answered" in text
    code, text = run(capsys, "audit", "report", "--db", db, "--json", "D0")
    assert json.loads(text)["directive_id"] == "D0"
    assert run(capsys, "audit", "report", "--db", db, "D99")[0] == 1


def test_bench_prints_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(
        capsys, "bench", "audit", "--entries", "300", "--batch", "100", "--single", "5", "--stations", "40"
    )
    assert code == 0
    assert "append, batched (100/transaction)" in text
    assert "verify database" in text
    assert "baseline, plain station index" in text
    assert "40 stations" in text
    code, _ = run(capsys, "bench", "audit", "--entries", "20", "--batch", "10", "--single", "1", "--dir", str(tmp_path))
    assert code == 0
    assert (tmp_path / "bench.sqlite").exists()
