"""`dergw` commands run as a user would: real processes where the command owns the event loop."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.demo import SAMPLE_DIRECTIVE
from protocols.ocpp.auth import verify_password
from tests.support import PASSWORD, make_config, running, station_configs

ROOT = Path(__file__).parents[1]


def test_demo_runs_a_mixed_fleet_and_exits_0_when_every_station_reached_its_outcome(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--stations",
            "9",
            "--seconds",
            "60",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9/9 stations reached their expected outcome" in proc.stdout
    assert proc.stdout.count(" accepted ") == 3
    assert proc.stdout.count(" partial ") == 6
    assert "OCPP 1.6 has no DER control messages" in proc.stdout
    assert "MMXU1.TotW = " in proc.stdout  # utility SCADA read the same fleet over IEC 61850 MMS
    # The OpenADR 3 step: the VTN's event reached every station as one directive per interval, and the VTN holds
    # one report per interval for the VEN's fleet resource.
    event = re.search(r"OpenADR 3 VTN publishes event (\w+): IMPORT_CAPACITY_LIMIT 6 kW, then 4 kW", proc.stdout)
    assert event is not None, proc.stdout
    for position in (0, 1):
        assert f"interval {position} sent as oa3.{event[1]}.{position}.0: station outcomes accepted=9" in proc.stdout
    assert "the VTN received 2 report(s)" in proc.stdout
    reported = rf"{event[1]}\.(\d)-\d demo-fleet: USAGE [\d.]+ kWh, DEMAND [\d.]+ kW, DATA_QUALITY ([A-Z]+)"
    assert [position for position, _ in re.findall(reported, proc.stdout)] == ["0", "1"]
    db = tmp_path / "data" / "dergw.sqlite"
    # The demo's audit trail verifies offline, and the compliance report shows every station's answer.
    verify = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", "--keys", str(tmp_path / "certs"), str(db)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "report", "--db", str(db), "--json", "demo-curtail-1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert report.returncode == 0, report.stdout + report.stderr
    assert "DEMO00009" in report.stdout


def test_example_directive_is_the_demo_sample() -> None:
    assert json.loads((ROOT / "examples" / "directive.json").read_text()) == SAMPLE_DIRECTIVE


def test_check_config_accepts_the_example_and_lists_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DERGW_API_TOKEN", "an-operator-token")
    assert main(["check-config", str(ROOT / "examples" / "gateway.toml")]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[ocpp]\nsecurity_profile = 7\nport = "x"\n[[stations]]\nid = "a:b"\n')
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "ocpp.security_profile: Input should be less than or equal to 3" in err
    assert "ocpp.port: Input should be a valid integer" in err
    assert "stations.0.id: String should match pattern" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("[ocpp\n")
    assert main(["check-config", str(broken)]) == 1
    assert "not valid TOML" in capsys.readouterr().err


def test_hash_password_output_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hash-password", "--password", "a-long-enough-password"]) == 0
    assert verify_password("a-long-enough-password", capsys.readouterr().out.strip())
    assert main(["hash-password", "--password", "short"]) == 1


async def test_sim_stations_command_connects_a_fleet_to_a_running_gateway(tmp_path: Path) -> None:
    """`dergw sim stations` in its own process against a gateway in this one: all stations boot and report."""
    ids = [f"SIM{i:05d}" for i in range(1, 7)]
    async with running(make_config(tmp_path, station_configs(ids))) as gw:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "sim", "stations", "--url", gw.ocpp.url, "--count", "6",
            "--version", "2.1", "--version", "2.0.1", "--version", "1.6", "--password", PASSWORD,
            "--seconds", "3", "--status-interval", "1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await asyncio.wait_for(asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids)), 30)
        versions = sorted(str(gw.fleet.stations[sid].version) for sid in ids)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert versions == ["ocpp1.6"] * 2 + ["ocpp2.0.1"] * 2 + ["ocpp2.1"] * 2
    assert "booted=6" in out.decode()


def test_gateway_killed_mid_fanout_leaves_a_verifiable_audit_log(tmp_path: Path) -> None:
    """SIGKILL the running gateway while it writes the fan-out's audit entries: no gap, no half entry."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--forever", "--stations", "30", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # the directive is submitted: its fan-out is being written and sent now
            if line.startswith("directive demo-curtail-1 submitted"):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    db = tmp_path / "data" / "dergw.sqlite"
    verify = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", "--keys", str(tmp_path / "certs"), str(db)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
