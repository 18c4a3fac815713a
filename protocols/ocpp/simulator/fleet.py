"""Many simulated stations in one event loop, started with bounded concurrency."""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from gateway.model import OcppVersion
from protocols.ocpp.simulator.station import SimStation


class Fleet:
    """N stations `{prefix}{i:05d}` (i from 1); a version list is cycled through to build a mix."""

    def __init__(
        self,
        url: str,
        count: int,
        version: OcppVersion | Sequence[OcppVersion] = OcppVersion.V21,
        *,
        prefix: str = "SIM",
        password: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        concurrency: int = 100,
        **station_options: Any,
    ) -> None:
        versions = [version] if isinstance(version, OcppVersion) else list(version)
        self.concurrency = concurrency
        self.stations = [
            SimStation(
                url,
                f"{prefix}{i:05d}",
                versions[(i - 1) % len(versions)],
                password=password,
                ssl=ssl,
                **station_options,
            )
            for i in range(1, count + 1)
        ]
        #: Stations whose first connect/boot failed, with the reason.
        self.failures: dict[str, BaseException] = {}

    def __getitem__(self, station_id: str) -> SimStation:
        return next(s for s in self.stations if s.station_id == station_id)

    @property
    def connected(self) -> int:
        return sum(s.connected for s in self.stations)

    @property
    def booted(self) -> int:
        return sum(s.booted for s in self.stations)

    def power_w(self) -> float:
        """Fleet power now, the sum over every EVSE of every booted station."""
        return sum(s.power_w(e) for s in self.stations if s.booted for e in range(1, s.spec.evses + 1))

    async def start(self) -> None:
        """Connect and boot every station, at most `concurrency` handshakes at once; failures go to `failures`."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(station: SimStation) -> None:
            async with gate:
                try:
                    await station.start()
                except Exception as exc:  # reported per station: the fleet keeps going
                    self.failures[station.station_id] = exc

        await asyncio.gather(*(one(s) for s in self.stations))

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.stations))

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
