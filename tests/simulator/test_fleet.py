"""Fleets: a thousand stations in one process, a version mix, and the `sim stations` command."""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest

from gateway.model import OcppVersion
from protocols.ocpp.simulator import Fleet, ManualClock
from protocols.ocpp.simulator.cli import register
from tests.simulator.csms import MiniCsms


async def test_a_thousand_stations_connect_and_boot() -> None:
    async with MiniCsms() as csms:
        fleet = Fleet(
            csms.url,
            1000,
            [OcppVersion.V21, OcppVersion.V201, OcppVersion.V16],
            clock=ManualClock(),
            concurrency=200,
        )
        began = time.perf_counter()
        await fleet.start()
        elapsed = time.perf_counter() - began
        assert fleet.failures == {}
        assert fleet.booted == 1000
        assert len(csms.booted) == 1000
        assert csms.connections["SIM01000"].version is OcppVersion.V21
        assert csms.connections["SIM00003"].version is OcppVersion.V16
        assert fleet.power_w() == 1000 * 7000
        await fleet.stop()
        assert csms.violations == []
        assert all(not s.faults and not s.violations for s in fleet.stations)
        assert elapsed < 60, f"booting 1000 stations took {elapsed:.1f} s"


async def test_fleet_reports_failures_per_station() -> None:
    async with MiniCsms(passwords={"SIM00001": "right-password"}) as csms:
        fleet = Fleet(csms.url, 2, password="right-password", clock=ManualClock())
        async with fleet:
            assert fleet.booted == 1
            assert list(fleet.failures) == ["SIM00002"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dergw")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_cli_runs_a_fleet_for_some_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    async with MiniCsms() as csms:
        args = _parse(
            [
                *("sim", "stations", "--url", csms.url, "--count", "3", "--version", "2.1", "--version", "1.6"),
                *("--seconds", "0.3", "--status-interval", "0.1", "--no-der"),
            ]
        )
        code = await asyncio.to_thread(args.handler, args)
    assert code == 0
    out = capsys.readouterr().out
    assert "stations=3 connected=3 booted=3 failed=0" in out
    assert set(csms.booted) == {"SIM00001", "SIM00002", "SIM00003"}
    assert csms.connections["SIM00002"].version is OcppVersion.V16
