"""A real MMS server (the adapter) on 127.0.0.1 and a SCADA client, with a recording DirectiveSink."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from protocols.iec61850.adapter import Iec61850Adapter, Iec61850Config
from protocols.iec61850.client import ScadaClient
from protocols.iec61850.translate import StationReading
from tests.support import RecordingSink

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@dataclass
class Fleet:
    stations: dict[str, StationReading] = field(default_factory=dict)

    def readings(self) -> Mapping[str, StationReading]:
        return self.stations


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Rig:
    adapter: Iec61850Adapter
    sink: RecordingSink
    fleet: Fleet
    scada: ScadaClient


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fleet, sink = Fleet(), RecordingSink()
    config = Iec61850Config(port=free_port(), hold_s=900, sample_s=0)
    adapter = Iec61850Adapter(config, fleet, clock=lambda: NOW)
    await adapter.start(sink)
    scada = ScadaClient("127.0.0.1", config.port, origin="scada-test")
    try:
        yield Rig(adapter, sink, fleet, scada)
    finally:
        await asyncio.to_thread(scada.close)
        await adapter.stop()
