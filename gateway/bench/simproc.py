"""A simulator process: `count` stations `{prefix}{i:05d}` against one CSMS, with background traffic.

Each station stamps (time.monotonic, one clock for every process on the machine) when a SetDERControl reaches it,
so the parent can tell when the first frame of a fan-out was on the wire.

Commands: `first T0` answers the earliest SetDERControl arrival at or after T0 and how many arrived since.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from gateway.bench.procs import commands, say
from gateway.model import OcppVersion
from protocols.ocpp.simulator import Fleet, SimStation


class _Stamps:
    """SetDERControl arrival times of every station of this process."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def since(self, t0: float) -> tuple[float | None, int]:
        later = [t for t in self.times if t >= t0]
        return (min(later) if later else None), len(later)


class BenchStation(SimStation):
    """A SimStation that stamps the arrival of every SetDERControl and forgets what it received (memory)."""

    stamps: _Stamps

    def _on_message(self, text: str | bytes) -> None:
        arrived = time.monotonic()
        super()._on_message(text)
        if self.received:
            if self.received[-1][0] == "SetDERControl":
                self.stamps.times.append(arrived)
            self.received.clear()


async def _main(args: argparse.Namespace) -> None:
    stamps = _Stamps()
    BenchStation.stamps = stamps
    fleet = Fleet(args.url, 0, concurrency=args.concurrency)
    fleet.stations = [
        BenchStation(
            args.url,
            f"{args.prefix}{i:05d}",
            OcppVersion.V21,
            meter_interval=args.meter_interval,
            reconnect_delay=None,
            call_timeout=120.0,
        )
        for i in range(1, args.count + 1)
    ]
    say(starting=time.monotonic())
    await fleet.start()
    say(started=time.monotonic(), booted=fleet.booted, failures=len(fleet.failures))
    try:
        async for line in commands():
            verb, *rest = line.split()
            if verb == "first":
                first, count = stamps.since(float(rest[0]))
                say(first=first, count=count)
            else:
                say(error=f"unknown command {line!r}")
    finally:
        await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.simproc")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--meter-interval", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=200)
    try:
        asyncio.run(_main(parser.parse_args()))
    except Exception as exc:
        say(error=repr(exc))
        raise


if __name__ == "__main__":
    main()
