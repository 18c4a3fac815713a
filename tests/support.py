"""Shared test helpers: a gateway on free ports with real SQLite, and raw OCPP-J clients."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from gateway.clock import ManualClock
from gateway.config import ApiConfig, GatewayConfig, OcppConfig, StationConfig
from gateway.interfaces import Signal, UpstreamDrop, UpstreamFailure
from gateway.model import Directive
from gateway.runtime import Gateway
from protocols.ocpp.auth import hash_password

PASSWORD = "correct-horse-battery-staple-42"
TOKEN = "test-operator-token"


@cache
def password_hash() -> str:
    """One scrypt hash shared by all test stations (hashing is deliberately slow)."""
    return hash_password(PASSWORD)


def station_configs(ids: Sequence[str], groups: Sequence[str] = ()) -> list[StationConfig]:
    return [StationConfig(id=i, password_hash=password_hash(), groups=list(groups)) for i in ids]


def make_config(tmp_path: Path, stations: Sequence[StationConfig], **ocpp: Any) -> GatewayConfig:
    settings = {"port": 0, "security_profile": 1, "call_timeout_s": 5.0, "heartbeat_s": 60, **ocpp}
    return GatewayConfig(
        data_dir=tmp_path / "data",
        certs_dir=tmp_path / "certs",
        ocpp=OcppConfig(**settings),
        api=ApiConfig(port=0, token=TOKEN),
        stations=list(stations),
    )


@asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[Gateway]:
    gateway = Gateway.build(config)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


def basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@asynccontextmanager
async def raw_station(
    url: str, station_id: str, subprotocols: Sequence[str] = ("ocpp2.1",), password: str | None = PASSWORD
) -> AsyncIterator[ClientConnection]:
    """A bare OCPP-J client: the test writes and reads frames itself."""
    headers = basic(station_id, password) if password is not None else {}
    offered = [Subprotocol(p) for p in subprotocols]
    async with connect(f"{url}/{station_id}", subprotocols=offered, additional_headers=headers) as ws:
        yield ws


async def call(ws: ClientConnection, message_id: str, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send a CALL and return the frame answering it, skipping CALLs the gateway sends meanwhile."""
    await ws.send(json.dumps([2, message_id, action, payload]))
    return await answer_to(ws, message_id)


async def answer_to(ws: ClientConnection, message_id: str) -> list[Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame[0] in (3, 4) and frame[1] == message_id:
            return list(frame)


@dataclass
class RecordingSink:
    """The runtime's side of the utility seam, reduced to a log of what an adapter handed over."""

    submitted: list[tuple[Directive, Signal]] = field(default_factory=list)
    cancelled: list[tuple[str, Signal, int]] = field(default_factory=list)
    rejected: list[tuple[Signal, str, str | None]] = field(default_factory=list)
    upstream: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    failures: list[UpstreamFailure] = field(default_factory=list)
    drops: list[UpstreamDrop] = field(default_factory=list)
    #: Set on every hand-over, for adapters that hand over from another thread via the loop.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def submit(self, directive: Directive, signal: Signal) -> None:
        self.submitted.append((directive, signal))
        self.changed.set()

    async def cancel(
        self, directive_id: str, signal: Signal, *, randomize_s: int = 0, superseded: bool = False
    ) -> None:
        self.cancelled.append((directive_id, signal, randomize_s))
        if superseded:
            self.superseded.append(directive_id)
        self.changed.set()

    def reject(self, signal: Signal, reason: str, *, code: str | None = None) -> None:
        self.rejected.append((signal, reason, code))
        self.changed.set()

    def sent_upstream(
        self, what: str, data: Mapping[str, Any], *, directive_id: str | None = None, signal_id: str | None = None
    ) -> None:
        self.upstream.append((what, dict(data), directive_id))

    def upstream_failed(self, failure: UpstreamFailure) -> None:
        self.failures.append(failure)
        self.changed.set()

    def upstream_dropped(self, drop: UpstreamDrop) -> None:
        self.drops.append(drop)
        self.changed.set()

    def directives(self) -> dict[str, Directive]:
        return {d.id: d for d, _ in self.submitted}

    async def wait(self, done: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
        """Until `done()` holds, re-checked after each hand-over (woken by records, bounded by `timeout_s`)."""
        async with asyncio.timeout(timeout_s):
            while not done():
                self.changed.clear()
                await self.changed.wait()


class Stepper:
    """An injected sleep the test steps: it records each wait a loop asks for and returns when released, so retry
    and backoff run on the test's clock instead of wall time."""

    def __init__(self) -> None:
        self.asked: asyncio.Queue[float] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()

    async def sleep(self, seconds: float) -> None:
        self.asked.put_nowait(seconds)
        await self._go.get()

    async def next(self, timeout_s: float = 5.0) -> float:
        """The next wait asked for (the loop is now sleeping on it)."""
        return await asyncio.wait_for(self.asked.get(), timeout_s)

    def release(self) -> None:
        self._go.put_nowait(None)

    async def step(self, clock: ManualClock) -> float:
        """Wait for the loop to sleep, move `clock` by what it asked, and let it go."""
        seconds = await self.next()
        clock.advance(seconds)
        self.release()
        await asyncio.sleep(0)
        return seconds
