"""A CSMS process of the bench: `gateway`, `naive` or `floor`, on 127.0.0.1 with a free port.

It says `{"port": ..., "rss_kib": ...}` once listening, then obeys the parent line by line:
`ready COUNT TIMEOUT` waits for COUNT stations (the gateway: capabilities read; the baselines: booted) and answers
the time and the memory then; `round NUMBER` fans one directive out to every connected station and answers its
start and end on time.monotonic, the CPU seconds it took, the seconds its garbage collections took, whether the
automatic collector was on, and how many commands were sent and accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from gateway.bench import workload
from gateway.bench.baselines import FloorCsms, NaiveCsms
from gateway.bench.collector import GcTimes
from gateway.bench.history import fill
from gateway.bench.procs import commands, say
from gateway.bench.stats import cpu_seconds, rss_kib
from gateway.config import ApiConfig, GatewayConfig, OcppConfig, StationConfig
from gateway.model import OutcomeStatus
from gateway.runtime import Gateway


class BenchServer(Protocol):
    async def begin(self) -> int: ...

    def ready_count(self) -> int: ...

    async def wait_ready(self, count: int) -> None: ...

    async def prepare(self, number: int) -> None: ...

    async def fan_out(self, number: int) -> tuple[int, int]: ...

    async def stop(self) -> None: ...


#: After the untimed cancel: the station traffic it held up (meter values, heartbeats, keepalive pings of 10,000
#: connections) is handled before the round's clock starts, not in front of the round's first frame.
_SETTLE_S = 1.0


class GatewayCsms:
    """The real gateway, built from configuration as `dergw run` builds it (security profile 0: no passwords)."""

    def __init__(
        self, station_ids: list[str], heartbeat_s: int, start: datetime, data_dir: Path, history: int = 0
    ) -> None:
        config = GatewayConfig(
            data_dir=data_dir,
            certs_dir=data_dir / "certs",
            ocpp=OcppConfig(port=0, security_profile=0, heartbeat_s=heartbeat_s, call_timeout_s=120),
            api=ApiConfig(port=0),
            stations=[StationConfig(id=sid) for sid in station_ids],
        )
        if history:
            fill(config.database, config.certs_dir, station_ids, history, datetime.now(UTC))
        self.gateway = Gateway.build(config)
        self._start = start
        self._last: str | None = None

    async def begin(self) -> int:
        await self.gateway.start()
        return self.gateway.ocpp.port

    def ready_count(self) -> int:
        return sum(s.capabilities_ready.is_set() for s in self.gateway.fleet.stations.values())

    async def wait_ready(self, count: int) -> None:
        states = list(self.gateway.fleet.stations.values())[:count]
        await asyncio.gather(*(s.capabilities_ready.wait() for s in states))

    async def prepare(self, number: int) -> None:
        """End the previous round's directive, untimed. Each round's directive covers the previous one, so the
        gateway would supersede it, clearing it from every station inside the timed round: twice the commands the
        baselines send. The gateway does all of the round's own work after submission."""
        if self._last is not None:
            await self.gateway.dispatcher.cancel(self._last)
            self._last = None
            await asyncio.sleep(_SETTLE_S)

    async def fan_out(self, number: int) -> tuple[int, int]:
        directive = workload.directive(number, self._start)
        self._last = directive.id
        record = await self.gateway.submit(directive)
        outcomes = await self.gateway.outcomes(record.directive.id)
        sent = sum(len(o.commands) for o in outcomes)
        return sent, sum(1 for o in outcomes if o.status is OutcomeStatus.ACCEPTED)

    async def stop(self) -> None:
        await self.gateway.stop()


class _Baseline:
    """Adapts a baseline CSMS to BenchServer: ready means booted."""

    def __init__(self, csms: NaiveCsms | FloorCsms) -> None:
        self.csms = csms

    async def begin(self) -> int:
        return await self.csms.begin()

    def ready_count(self) -> int:
        return self.csms.booted.count

    async def wait_ready(self, count: int) -> None:
        await self.csms.booted.wait(count)

    async def prepare(self, number: int) -> None:
        self.csms.prepare(number)

    async def fan_out(self, number: int) -> tuple[int, int]:
        return await self.csms.fan_out(number)

    async def stop(self) -> None:
        await self.csms.stop()


def _station_ids(fleets: list[str]) -> list[str]:
    """`PREFIX:COUNT` items, named as the simulator names its stations."""
    ids: list[str] = []
    for item in fleets:
        prefix, count = item.rsplit(":", 1)
        ids.extend(f"{prefix}{i:05d}" for i in range(1, int(count) + 1))
    return ids


async def _ready(server: BenchServer, count: int, timeout: float) -> None:
    """Wait for `count` ready stations, telling the parent how far it got every few seconds."""
    waiting = asyncio.ensure_future(server.wait_ready(count))
    deadline = time.monotonic() + timeout
    while not waiting.done():
        left = deadline - time.monotonic()
        if left <= 0:
            waiting.cancel()
            say(error=f"only {server.ready_count()} of {count} stations ready after {timeout:g} s")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), min(5.0, left))
        if not waiting.done():
            say(progress=f"{server.ready_count()} of {count} stations ready")
    ready_at = time.monotonic()
    gc.collect()
    say(ready_at=ready_at, ready=server.ready_count(), rss_kib=rss_kib())


async def _round(server: BenchServer, number: int, profiler: cProfile.Profile | None, collections: GcTimes) -> None:
    await server.prepare(number)
    automatic = gc.isenabled()
    cpu = cpu_seconds()
    t0 = time.monotonic()
    if profiler is not None:
        profiler.enable()
    sent, accepted = await server.fan_out(number)
    if profiler is not None:
        profiler.disable()
    done = time.monotonic()
    say(
        t0=t0,
        done=done,
        cpu_s=cpu_seconds() - cpu,
        gc_s=collections.between(t0, done),
        automatic=automatic,
        commands=sent,
        accepted=accepted,
    )


async def _main(args: argparse.Namespace, data_dir: Path) -> None:
    start = datetime.fromisoformat(args.start)
    server: BenchServer
    if args.kind == "gateway":
        server = GatewayCsms(_station_ids(args.fleet), args.heartbeat, start, data_dir, args.history)
    else:
        server = _Baseline((NaiveCsms if args.kind == "naive" else FloorCsms)(args.heartbeat, start))
    collections = GcTimes()
    gc.callbacks.append(collections)
    gc.collect()
    say(port=await server.begin(), rss_kib=rss_kib())
    profiler = None if args.profile is None else cProfile.Profile()
    try:
        async for line in commands():
            verb, *rest = line.split()
            if verb == "ready":
                await _ready(server, int(rest[0]), float(rest[1]))
            elif verb == "round":
                await _round(server, int(rest[0]), profiler, collections)
            else:
                say(error=f"unknown command {line!r}")
    finally:
        await server.stop()
        if profiler is not None:
            profiler.dump_stats(args.profile)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.servers")
    parser.add_argument("kind", choices=["gateway", "naive", "floor"])
    parser.add_argument("--fleet", action="append", default=[], help="PREFIX:COUNT of the stations to expect")
    parser.add_argument("--heartbeat", type=int, default=60)
    parser.add_argument("--start", required=True, help="start of every round's directive (ISO 8601)")
    parser.add_argument("--dir", type=Path, help="the gateway's data directory (default: a temporary one)")
    parser.add_argument("--history", type=int, default=0, help="the gateway: ended fleet-wide directives to start with")
    parser.add_argument("--profile", type=Path, help="profile the rounds (warm-up included) with cProfile, stats here")
    args = parser.parse_args()
    try:
        if args.dir is not None:
            asyncio.run(_main(args, args.dir))
        else:
            with tempfile.TemporaryDirectory(prefix="dergw-bench-") as tmp:
                asyncio.run(_main(args, Path(tmp)))
    except Exception as exc:
        say(error=repr(exc))
        raise


if __name__ == "__main__":
    main()
