"""A simulator process: `count` stations `{prefix}{i:05d}` against one CSMS, with background traffic.

Each station stamps (time.monotonic, one clock for every process on the machine) when a SetDERControl reaches it,
so the parent can tell when the first frame of a fan-out was on the wire.

Commands: `first T0` answers the earliest SetDERControl arrival at or after T0 and how many arrived since;
`cpu T0 T1` answers the CPU seconds this process spent between T0 and T1 (from samples taken every few ms), so the
bench can say how much of the machine the load generator took during a round, and how much of it went to garbage
collections; `calls T0 T1` answers how long the CSMS took to answer each call the stations sent between T0 and T1
(their heartbeats and meter values: the fleet's own traffic during a fan-out), a call still unanswered counting
the time it has waited so far; `collect` runs a full collection and moves what survives out of the collector's way
(between rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import gc
import itertools
import time

from gateway.bench.collector import GcTimes, collect_between_rounds
from gateway.bench.procs import commands, say
from gateway.bench.stats import cpu_seconds
from gateway.model import OcppVersion
from protocols.ocpp.simulator import Fleet, SimStation
from protocols.ocpp.simulator.station import Payload


class _Stamps:
    """SetDERControl arrival times of every station of this process."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def since(self, t0: float) -> tuple[float | None, int]:
        later = [t for t in self.times if t >= t0]
        return (min(later) if later else None), len(later)


class _CpuSamples:
    """(time.monotonic, CPU seconds) of this process every `every_s`, to read the CPU spent in a past interval."""

    def __init__(self, every_s: float = 0.01, keep: int = 100_000) -> None:
        self.every_s = every_s
        self.keep = keep
        self.times: list[float] = []
        self.cpu: list[float] = []

    async def run(self) -> None:
        while True:
            self.times.append(time.monotonic())
            self.cpu.append(cpu_seconds())
            if len(self.times) > 2 * self.keep:
                del self.times[: self.keep], self.cpu[: self.keep]
            await asyncio.sleep(self.every_s)

    def at(self, t: float) -> float:
        """CPU seconds at `t`, interpolated between the samples around it."""
        i = bisect.bisect_left(self.times, t)
        if i == 0:
            return self.cpu[0]
        if i == len(self.times):
            return self.cpu[-1]
        t1, t2, c1, c2 = self.times[i - 1], self.times[i], self.cpu[i - 1], self.cpu[i]
        return c1 + (c2 - c1) * (t - t1) / (t2 - t1)

    def between(self, t0: float, t1: float) -> float:
        return self.at(t1) - self.at(t0)


class CallTimes:
    """When each call of this process's stations was sent (time.monotonic), and how long its answer took."""

    def __init__(self, keep: int = 100_000) -> None:
        self.keep = keep
        self._tokens = itertools.count()
        self._waiting: dict[int, float] = {}
        self._answered: list[tuple[float, float]] = []

    def sent(self, at: float) -> int:
        token = next(self._tokens)
        self._waiting[token] = at
        return token

    def answered(self, token: int, at: float) -> None:
        sent = self._waiting.pop(token)
        self._answered.append((sent, at - sent))
        if len(self._answered) > 2 * self.keep:
            del self._answered[: self.keep]

    def waits(self, t0: float, t1: float, now: float) -> list[float]:
        """Answer times of the calls sent between `t0` and `t1`; for one still unanswered, how long it has waited."""
        waits = [wait for sent, wait in self._answered if t0 <= sent <= t1]
        return waits + [now - sent for sent in self._waiting.values() if t0 <= sent <= t1]


class BenchStation(SimStation):
    """A SimStation that stamps the arrival of every SetDERControl, times its own calls and forgets what it received
    (memory)."""

    stamps: _Stamps
    calls: CallTimes

    async def call(self, action: str, payload: Payload) -> Payload:
        token = self.calls.sent(time.monotonic())
        try:
            return await super().call(action, payload)
        finally:
            self.calls.answered(token, time.monotonic())

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
    calls = CallTimes()
    BenchStation.calls = calls
    fleet = Fleet(args.url, 0, concurrency=args.concurrency)
    fleet.stations = [
        BenchStation(
            args.url,
            f"{args.prefix}{i:05d}",
            OcppVersion.V21,
            meter_interval=args.meter_interval,
            phase=i / args.count,  # spread evenly: steady background traffic from boot on, not bursts
            reconnect_delay=None,
            call_timeout=120.0,
        )
        for i in range(1, args.count + 1)
    ]
    samples = _CpuSamples()
    collections = GcTimes()
    gc.callbacks.append(collections)
    sampler = asyncio.create_task(samples.run())
    say(starting=time.monotonic())
    await fleet.start()
    collect_between_rounds()
    say(started=time.monotonic(), booted=fleet.booted, failures=len(fleet.failures))
    try:
        async for line in commands():
            verb, *rest = line.split()
            if verb == "first":
                first, count = stamps.since(float(rest[0]))
                say(first=first, count=count)
            elif verb == "cpu":
                t0, t1 = float(rest[0]), float(rest[1])
                say(cpu_s=samples.between(t0, t1), gc_s=collections.between(t0, t1))
            elif verb == "calls":
                waits = calls.waits(float(rest[0]), float(rest[1]), time.monotonic())
                say(waits=[round(w, 6) for w in waits])
            elif verb == "collect":
                say(collected=collect_between_rounds(), automatic=gc.isenabled())
            else:
                say(error=f"unknown command {line!r}")
    finally:
        sampler.cancel()
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
