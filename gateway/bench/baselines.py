"""The two yardsticks the gateway's fan-out is measured against.

`NaiveCsms` is a CSMS written the usual way on the `ocpp` library: one ChargePoint per connection and one `call`
per station, gathered with asyncio. `FloorCsms` is a bare websockets server with no OCPP logic: it answers what
the stations send with canned replies and, per round, sends pre-serialized frames and awaits one reply per station;
it stands for the wire's limit, so its garbage collector, like the load generator's, runs between rounds only.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from ocpp.charge_point import camel_to_snake_case
from ocpp.routing import on
from ocpp.v21 import ChargePoint, call, call_result
from ocpp.v21.enums import Action
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.bench.collector import collect_between_rounds
from gateway.bench.workload import set_der_control

_SUBPROTOCOL = [Subprotocol("ocpp2.1")]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Booted:
    """Counts booted stations and wakes whoever waits for a number of them."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def add(self) -> None:
        self.count += 1
        for waiter in [w for w in self._waiters if w[0] <= self.count]:
            self._waiters.remove(waiter)
            if not waiter[1].done():
                waiter[1].set_result(None)

    async def wait(self, count: int) -> None:
        if self.count < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((count, future))
            await future


class _NaiveChargePoint(ChargePoint):  # type: ignore[misc]  # the ocpp package has no type hints
    booted: _Booted
    heartbeat_s: int

    @on(Action.boot_notification)  # type: ignore[untyped-decorator]
    def on_boot(self, **_: Any) -> Any:
        self.booted.add()
        return call_result.BootNotification(current_time=_now(), interval=self.heartbeat_s, status="Accepted")

    @on(Action.heartbeat)  # type: ignore[untyped-decorator]
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)  # type: ignore[untyped-decorator]
    def on_status(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on(Action.meter_values)  # type: ignore[untyped-decorator]
    def on_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()


class NaiveCsms:
    def __init__(self, heartbeat_s: int, start: datetime) -> None:
        self._heartbeat_s = heartbeat_s
        self._start = start
        self._server: Server | None = None
        self._points: dict[str, _NaiveChargePoint] = {}
        self.booted = _Booted()

    async def begin(self) -> int:
        self._server = await serve(self._handle, "127.0.0.1", 0, subprotocols=_SUBPROTOCOL)
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        point = _NaiveChargePoint(station_id, ws)
        point.booted, point.heartbeat_s = self.booted, self._heartbeat_s
        self._points[station_id] = point
        try:
            await point.start()
        except ConnectionClosed:
            pass
        finally:
            del self._points[station_id]

    def prepare(self, number: int) -> None:
        """Nothing to prepare: the usual way builds each call when it sends it."""

    async def fan_out(self, number: int) -> tuple[int, int]:
        request = camel_to_snake_case(set_der_control(number, self._start))
        results = await asyncio.gather(
            *(point.call(call.SetDERControl(**request)) for point in self._points.values()), return_exceptions=True
        )
        accepted = sum(1 for r in results if getattr(r, "status", None) == "Accepted")
        return len(results), accepted

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class FloorCsms:
    def __init__(self, heartbeat_s: int, start: datetime) -> None:
        self._heartbeat_s = heartbeat_s
        self._start = start
        self._server: Server | None = None
        self._sockets: dict[str, ServerConnection] = {}
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._frames: list[tuple[str, ServerConnection, str]] = []
        self.booted = _Booted()

    async def begin(self) -> int:
        self._server = await serve(self._handle, "127.0.0.1", 0, subprotocols=_SUBPROTOCOL, compression=None)
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    def _canned(self, action: str) -> str:
        if action == "BootNotification":
            self.booted.add()
            return json.dumps({"currentTime": _now(), "interval": self._heartbeat_s, "status": "Accepted"})
        return json.dumps({"currentTime": _now()}) if action == "Heartbeat" else "{}"

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        self._sockets[station_id] = ws
        try:
            async for message in ws:
                assert isinstance(message, str)
                if message.startswith("[3"):
                    waiting = self._waiting.pop(station_id, None)
                    if waiting is not None:
                        waiting.set_result(message)
                elif message.startswith("[2"):
                    frame = json.loads(message)
                    await ws.send(f"[3,{json.dumps(frame[1])},{self._canned(frame[2])}]")
        except ConnectionClosed:
            pass
        finally:
            del self._sockets[station_id]

    def prepare(self, number: int) -> None:
        """Serialize every station's frame before the clock starts: the floor does no work per command; and keep
        its garbage collector out of the round, as the load generator's (gateway.bench.collector)."""
        collect_between_rounds()
        body = json.dumps(set_der_control(number, self._start), separators=(",", ":"))
        self._frames = [(sid, ws, f'[2,"{sid}-{number}","SetDERControl",{body}]') for sid, ws in self._sockets.items()]

    async def fan_out(self, number: int) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        replies: list[asyncio.Future[str]] = []
        for sid, ws, frame in self._frames:
            self._waiting[sid] = future = loop.create_future()
            replies.append(future)
            await ws.send(frame)
        answers = await asyncio.gather(*replies)
        return len(answers), sum(1 for a in answers if '"Accepted"' in a)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
