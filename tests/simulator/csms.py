"""A minimal test-only CSMS over real WebSockets: boots stations, answers their calls and lets a test drive them.

Every frame it sends and receives is schema-validated; anything wrong lands in `violations`, which the fixtures
assert empty, so a test passes only if both sides spoke valid OCPP.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl as ssl_module
from collections import Counter
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from gateway.model import OcppVersion
from protocols.ocpp import frames
from protocols.ocpp.frames import Call, CallError, CallResult, Frame, FrameError
from protocols.ocpp.schemas import SchemaError, validate

Payload = dict[str, Any]
#: Seconds the test CSMS waits for a station's answer before the test fails.
CALL_TIMEOUT = 5.0


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class CsmsConnection:
    """The CSMS side of one station's connection."""

    def __init__(self, csms: MiniCsms, station_id: str, version: OcppVersion, ws: ServerConnection) -> None:
        self.csms = csms
        self.station_id = station_id
        self.version = version
        self.ws = ws
        #: Every CALL the station sent: (action, payload).
        self.received: list[tuple[str, Payload]] = []
        #: Frames the station sent that answer nothing (e.g. its CALLERROR to a broken frame of ours).
        self.unsolicited: asyncio.Queue[Frame] = asyncio.Queue()
        self._counts: Counter[str] = Counter()
        self._waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    def messages(self, action: str) -> list[Payload]:
        return [p for a, p in self.received if a == action]

    async def wait_for(self, action: str, count: int = 1) -> list[Payload]:
        """Until the station has sent `count` CALLs of `action`; returns all of them so far."""
        if self._counts[action] < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((action, count, future))
            await future
        return self.messages(action)

    async def call(self, action: str, payload: Payload) -> Payload | CallError:
        """Send a (validated) CALL and return the response payload, or the station's CALLERROR."""
        validate(self.version, action, payload)
        async with self._lock:  # one outstanding CALL per connection
            message_id = f"csms-{next(self._ids)}"
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending[message_id] = future
            await self.ws.send(frames.serialize(Call(message_id, action, payload)))
            try:
                async with asyncio.timeout(CALL_TIMEOUT):
                    reply = await future
            finally:
                self._pending.pop(message_id, None)
        if isinstance(reply, CallError):
            return reply
        assert isinstance(reply, CallResult)
        self._check(action, reply.payload, response=True)
        return reply.payload

    async def call_ok(self, action: str, payload: Payload) -> Payload:
        """`call` for tests that expect a CALLRESULT."""
        reply = await self.call(action, payload)
        assert not isinstance(reply, CallError), reply
        return reply

    def _check(self, action: str, payload: Payload, *, response: bool) -> bool:
        try:
            validate(self.version, action, payload, response=response)
        except SchemaError as exc:
            self.csms.violations.append(f"{self.station_id}: {exc.description}")
            return False
        return True

    async def serve(self) -> None:
        try:
            async for text in self.ws:
                await self._on_message(text)
        except ConnectionClosed:
            pass

    async def _on_message(self, text: str | bytes) -> None:
        try:
            frame = frames.parse(text, self.version)
        except FrameError as exc:  # answered as part 4 says; tests send these on purpose (send_raw)
            self.csms.broken_frames.append(exc.description)
            code = frames.error_code(exc.code, self.version)
            await self.ws.send(frames.serialize(CallError(exc.message_id, code, exc.description)))
            return
        if isinstance(frame, Call):
            await self._answer(frame)
        elif isinstance(frame, CallResult | CallError) and frame.message_id in self._pending:
            self._pending[frame.message_id].set_result(frame)
        else:
            self.unsolicited.put_nowait(frame)

    async def _answer(self, call: Call) -> None:
        self.received.append((call.action, call.payload))
        if not self._check(call.action, call.payload, response=False):
            await self.ws.send(frames.serialize(CallError(call.message_id, "FormatViolation", "invalid")))
            return
        response = await self.csms.respond(self, call.action, call.payload)
        self._check(call.action, response, response=True)
        await self.ws.send(frames.serialize(CallResult(call.message_id, response)))
        self._counts[call.action] += 1
        for waiter in list(self._waiters):
            if waiter[0] == call.action and self._counts[call.action] >= waiter[1]:
                self._waiters.remove(waiter)
                waiter[2].set_result(None)


class MiniCsms:
    """Serves ws://127.0.0.1:<port>/ocpp/<station id>, all three versions, optional Basic auth and TLS."""

    def __init__(
        self,
        *,
        versions: tuple[OcppVersion, ...] = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16),
        passwords: dict[str, str] | None = None,
        ssl: ssl_module.SSLContext | None = None,
        heartbeat_interval: int = 300,
        boot_status: str = "Accepted",
    ) -> None:
        self.versions = versions
        self.passwords = passwords
        self.ssl = ssl
        self.heartbeat_interval = heartbeat_interval
        self.boot_status = boot_status
        self.connections: dict[str, CsmsConnection] = {}
        self.violations: list[str] = []
        self.broken_frames: list[str] = []
        self.booted: Counter[str] = Counter()
        self._server: Server | None = None
        self._arrivals: dict[str, asyncio.Event] = {}
        self._boots = asyncio.Condition()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{port}/ocpp"

    async def __aenter__(self) -> MiniCsms:
        passwords = self.passwords
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol(v.value) for v in self.versions],
            process_request=(
                basic_auth(check_credentials=lambda user, pw: passwords.get(user) == pw) if passwords else None
            ),
            ssl=self.ssl,
            compression=None,
            ping_interval=None,
            backlog=2048,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def connection(self, station_id: str) -> CsmsConnection:
        """The station's connection, once it has booted."""
        await self._arrival(station_id).wait()
        return self.connections[station_id]

    async def wait_boots(self, station_id: str, count: int) -> None:
        """Until the station has booted `count` times (reconnects, resets)."""
        async with self._boots:
            await self._boots.wait_for(lambda: self.booted[station_id] >= count)

    def _arrival(self, station_id: str) -> asyncio.Event:
        return self._arrivals.setdefault(station_id, asyncio.Event())

    async def _handle(self, ws: ServerConnection) -> None:
        station_id = ws.request.path.rsplit("/", 1)[-1] if ws.request else ""
        version = OcppVersion(ws.subprotocol or OcppVersion.V16)
        conn = CsmsConnection(self, station_id, version, ws)
        self.connections[station_id] = conn
        await conn.serve()

    async def respond(self, conn: CsmsConnection, action: str, payload: Payload) -> Payload:
        """The CSMS's answer to a station's CALL."""
        if action == "BootNotification":
            if self.boot_status == "Accepted":
                async with self._boots:
                    self.booted[conn.station_id] += 1
                    self._boots.notify_all()
                self._arrival(conn.station_id).set()
            return {"currentTime": _now(), "interval": self.heartbeat_interval, "status": self.boot_status}
        if action == "Heartbeat":
            return {"currentTime": _now()}
        return {}
