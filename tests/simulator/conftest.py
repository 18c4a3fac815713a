"""Fixtures: a test CSMS on 127.0.0.1 and a station factory; both sides must end the test with clean frames."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.model import OcppVersion
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.simulator.csms import CsmsConnection, MiniCsms

StartStation = Callable[..., Awaitable[tuple[SimStation, CsmsConnection]]]


@pytest.fixture
async def csms() -> AsyncIterator[MiniCsms]:
    async with MiniCsms() as server:
        yield server
        assert server.violations == []


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def start_station(csms: MiniCsms, clock: ManualClock) -> AsyncIterator[StartStation]:
    """Start a station against `csms` on the manual clock; returns it and its CSMS-side connection."""
    started: list[SimStation] = []

    async def start(
        station_id: str = "CS001", version: OcppVersion = OcppVersion.V21, **options: Any
    ) -> tuple[SimStation, CsmsConnection]:
        options.setdefault("clock", clock)
        station = SimStation(csms.url, station_id, version, **options)
        started.append(station)
        await station.start()
        return station, await csms.connection(station_id)

    yield start
    for station in started:
        await station.stop()
        assert station.faults == []
        assert station.violations == []
