"""Fixtures: a real gateway on free ports with a mixed simulated fleet connected (2.1, 2.0.1, 1.6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.model import OcppVersion
from gateway.runtime import Gateway
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs

MIX = {"DASH-21": OcppVersion.V21, "DASH-201": OcppVersion.V201, "DASH-16": OcppVersion.V16}


@dataclass
class World:
    gateway: Gateway
    stations: dict[str, SimStation]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running(make_config(tmp_path, station_configs(list(MIX), groups=["site-a"]))) as gateway:
        sims = {
            sid: SimStation(gateway.ocpp.url, sid, version, password=PASSWORD, meter_interval=3600)
            for sid, version in MIX.items()
        }
        await asyncio.gather(*(s.start() for s in sims.values()))
        try:
            await asyncio.gather(*(gateway.fleet.stations[sid].capabilities_ready.wait() for sid in MIX))
            yield World(gateway, sims)
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))
