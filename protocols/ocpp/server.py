"""The OCPP-J endpoint for stations: `ws[s]://HOST:PORT/ocpp/{stationId}` (CSMS mode).

Handshake rules (OCPP 2.1 part 4, 3.1): unknown or malformed identities get HTTP 404; HTTP Basic auth for security
profiles 1 and 2 (A00.FR.202-207), the client certificate's CN for profile 3; the subprotocol is chosen by the
gateway's preference (2.1, then 2.0.1, then 1.6) and when none is offered the handshake completes without one and
the connection is closed at once (part 4, 3.1.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.clock import Clock
from gateway.interfaces import Reply, ReplyKind, StationEvents
from gateway.model import OcppVersion, StationCapabilities
from protocols.ocpp import capabilities, frames, handshake
from protocols.ocpp.connection import StationConnection
from protocols.ocpp.handshake import PREFERENCE, StationDirectory, serve_stations
from protocols.ocpp.message_ids import new_message_id

__all__ = ["PREFERENCE", "EndpointSettings", "OcppServer", "StationDirectory", "read_capabilities"]

log = logging.getLogger(__name__)

CLOSE_NO_SUBPROTOCOL = 1002

#: Sends one CALL to a station: (action, payload, timeout) -> its Reply.
Caller = Callable[[str, dict[str, Any], float], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    path: str = "/ocpp"
    #: 0 = no authentication (development only), 1 = Basic over ws, 2 = Basic over wss, 3 = mutual TLS.
    security_profile: int = 1
    call_timeout_s: float = 30.0
    #: Largest frame answered; bigger ones get CALLERROR FormatViolation. Frames over 4x this close the socket.
    max_message_bytes: int = 1_048_576
    heartbeat_s: int = 300
    #: How long to wait for BootNotification before reading capabilities of a station that reconnected silently.
    boot_wait_s: float = 10.0
    compression: bool = True


class OcppServer:
    """CSMS-mode station link: accepts stations, answers them, and sends the gateway's commands."""

    def __init__(
        self,
        directory: StationDirectory,
        events: StationEvents,
        clock: Clock,
        settings: EndpointSettings,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if settings.security_profile in (2, 3) and ssl_context is None:
            raise ValueError(f"security profile {settings.security_profile} needs TLS (an ssl context)")
        if settings.security_profile == 3 and ssl_context is not None and ssl_context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("security profile 3 needs an ssl context that requires client certificates")
        self._directory = directory
        self._events = events
        self._clock = clock
        self.settings = settings
        self._ssl = ssl_context
        self._server: Server | None = None
        self._stations: dict[str, StationConnection] = {}
        #: Set when a connection's handler has reported the station gone (disconnect() waits for it).
        self._gone: dict[StationConnection, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._texts = frames.PayloadTexts()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        sock = next(iter(self._server.sockets))
        port: int = sock.getsockname()[1]
        return port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def url(self) -> str:
        scheme = "wss" if self._ssl else "ws"
        return f"{scheme}://{self.settings.host}:{self.port}{self.settings.path}"

    async def start(self) -> None:
        self._server = await serve_stations(
            self._handle, self.settings, self._ssl, self._process_request, self._select_subprotocol
        )

    def stop_accepting(self) -> None:
        """Shutdown, first step: refuse new connections, keep the open ones so in-flight calls can finish."""
        if self._server is not None:
            self._server.server.close()

    async def disconnect(self, station_id: str, reason: str) -> bool:
        """Close a station's connection (it left the configuration) and return once it is reported gone; False
        when it was not connected."""
        conn = self._stations.get(station_id)
        if conn is None:
            return False
        gone = self._gone.setdefault(conn, asyncio.Event())
        await conn.ws.close(1008, reason)  # policy violation: the station is no longer allowed
        if self._stations.get(station_id) is conn:  # its handler has not reported it gone yet
            await gone.wait()
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- StationLink ---------------------------------------------------------------------------------------------

    def new_message_id(self) -> str:
        return new_message_id()

    def is_connected(self, station_id: str) -> bool:
        conn = self._stations.get(station_id)
        return conn is not None and not conn.closed

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float, message_id: str | None = None
    ) -> Reply:
        conn = self._stations.get(station_id)
        if conn is None or conn.closed:
            return Reply(ReplyKind.OFFLINE, message_id, description="station not connected")
        return await conn.call(action, payload, timeout=timeout, message_id=message_id, text=self._texts.text(payload))

    # -- handshake -----------------------------------------------------------------------------------------------

    def _station_id(self, path: str) -> str | None:
        return handshake.station_id_from_path(path, self.settings.path)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return handshake.check_request(
            connection,
            request,
            base=self.settings.path,
            directory=self._directory,
            profile=self.settings.security_profile,
        )

    def _select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        station_id = self._station_id(connection.request.path) if connection.request else None
        choices = handshake.allowed_offers(self._directory, station_id, offered)
        return Subprotocol(choices[0].value) if choices else None

    # -- connection ----------------------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = self._station_id(ws.request.path)
        if station_id is None:  # process_request already refused it; unreachable in practice
            return
        if ws.subprotocol is None:
            await ws.close(CLOSE_NO_SUBPROTOCOL, "no supported OCPP subprotocol offered")
            return
        version = OcppVersion(ws.subprotocol)
        previous = self._stations.get(station_id)
        conn = StationConnection(
            station_id,
            version,
            ws,
            events=self._events,
            clock=self._clock,
            max_message_bytes=self.settings.max_message_bytes,
            heartbeat_s=self.settings.heartbeat_s,
            on_boot=self._booted,
        )
        self._stations[station_id] = conn
        if previous is not None and not previous.closed:  # a station reconnecting replaces its old socket
            await previous.ws.close(1000, "replaced by a new connection")
        self._events.station_connected(station_id, version, self._clock.now())
        self._spawn(self._await_boot(conn))
        try:
            await conn.run()
        finally:
            if self._stations.get(station_id) is conn:
                del self._stations[station_id]
                self._events.station_disconnected(station_id, self._clock.now())
            if (gone := self._gone.pop(conn, None)) is not None:
                gone.set()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _booted(self, conn: StationConnection) -> None:
        """BootNotification answered: (re)read capabilities, since a boot may mean new firmware or settings."""
        self._spawn(self._read_capabilities(conn))

    async def _await_boot(self, conn: StationConnection) -> None:
        """A station that reconnects without booting (part 4, 5.3) still gets its capabilities read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(conn.booted), self.settings.boot_wait_s)
            return
        if not conn.closed:
            await self._read_capabilities(conn)

    async def _read_capabilities(self, conn: StationConnection) -> None:
        async def send(action: str, payload: dict[str, Any], timeout: float) -> Reply:
            return await conn.call(action, payload, timeout=timeout)

        caps = await read_capabilities(send, conn.station_id, conn.version, self.settings.call_timeout_s)
        if not conn.closed:
            self._events.station_capabilities(conn.station_id, caps, self._clock.now())


async def read_capabilities(send: Caller, station_id: str, version: OcppVersion, timeout: float) -> StationCapabilities:
    """Ask a station for its DER capabilities (GetVariables on 2.x, GetConfiguration on 1.6); a failed read gives
    the capabilities of a plain charger of that version, so directives still get the limits every station takes."""
    if version is OcppVersion.V16:
        reply = await send("GetConfiguration", {"key": list(capabilities.WANTED_16)}, timeout)
        caps = capabilities.capabilities_v16(reply.payload or {})
    else:
        reply = await send("GetVariables", capabilities.get_variables_request(), timeout)
        values = capabilities.values_from_get_variables(reply.payload or {})
        caps = capabilities.capabilities_v2(version, values)
    if reply.kind is not ReplyKind.RESULT:
        log.warning("station %s: capability read failed (%s %s)", station_id, reply.kind, reply.error_code)
    return capabilities.shared(caps)
