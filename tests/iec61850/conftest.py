"""A real MMS server (the adapter) on 127.0.0.1 and a SCADA client, with a recording DirectiveSink."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from protocols.iec61850.adapter import Iec61850Adapter, Iec61850Config
from protocols.iec61850.clib import Fc
from protocols.iec61850.client import ScadaClient, ScadaError
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


def _associate(port: int) -> ScadaClient:
    """Connect and prove the association with one read. Known issue (docs/iec61850.md): under pytest the first
    request on a fresh association is now and then answered with connection-lost (IedClientError 3); cause not
    found yet. A new association then works, so the rig retries a bounded number of times."""
    for _ in range(3):
        scada = ScadaClient("127.0.0.1", port, origin="scada-test")
        try:
            scada.read("LLN0.Beh.stVal", Fc.ST)
        except ScadaError as exc:
            scada.close()
            if exc.code != 3:
                raise
            continue
        return scada
    raise AssertionError("no working MMS association after 3 attempts")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fleet, sink = Fleet(), RecordingSink()
    config = Iec61850Config(port=free_port(), hold_s=900, sample_s=0)
    adapter = Iec61850Adapter(config, fleet, clock=lambda: NOW)
    await adapter.start(sink)
    scada = _associate(config.port)
    try:
        yield Rig(adapter, sink, fleet, scada)
    finally:
        await asyncio.to_thread(scada.close)
        await adapter.stop()
