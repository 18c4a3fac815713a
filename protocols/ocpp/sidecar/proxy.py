"""The sidecar: the gateway as a transparent OCPP proxy (a Local Controller, part 4 chapter 6) in front of a CSMS.

Stations connect to `ws[s]://HOST:PORT/ocpp/{stationId}` exactly as in CSMS mode (same handshake rules). Once a
station passes them, the proxy opens its own connection to the upstream CSMS for that station, offering the
subprotocols the station offered, and completes the station's handshake with the one the CSMS chose; an HTTP refusal
by the CSMS refuses the station the same way. A CSMS that does not answer does not keep the station out: grid
duties go on and the station's messages are kept until the CSMS is back (buffer.py).

It is a StationLink (`call`, `is_connected`) and reports StationEvents like OcppServer, so the dispatcher and the
fleet registry work unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.clock import Clock
from gateway.interfaces import AuditSink, Reply, ReplyKind, StationEvents
from gateway.model import OcppVersion
from protocols.ocpp import handshake
from protocols.ocpp.handshake import StationDirectory, serve_stations
from protocols.ocpp.server import CLOSE_NO_SUBPROTOCOL, EndpointSettings
from protocols.ocpp.sidecar import ids
from protocols.ocpp.sidecar.buffer import BufferStore, OfflineBuffer
from protocols.ocpp.sidecar.conflicts import GridHoldings
from protocols.ocpp.sidecar.session import ProxySession, SessionDeps
from protocols.ocpp.sidecar.upstream import (
    UpstreamRefusedError,
    UpstreamSettings,
    UpstreamUnreachableError,
    open_upstream,
)

log = logging.getLogger(__name__)


class SidecarProxy:
    """Sidecar-mode station link: relays stations to the upstream CSMS and sends the gateway's own commands."""

    def __init__(
        self,
        directory: StationDirectory,
        events: StationEvents,
        audit: AuditSink,
        clock: Clock,
        settings: EndpointSettings,
        upstream: UpstreamSettings,
        ssl_context: ssl.SSLContext | None = None,
        upstream_ssl: ssl.SSLContext | None = None,
        *,
        buffer_db: Path | str,
        rng: random.Random | None = None,
    ) -> None:
        """`buffer_db`: the SQLite file that keeps buffered station messages across restarts (the gateway's own)."""
        if settings.security_profile in (2, 3) and ssl_context is None:
            raise ValueError(f"security profile {settings.security_profile} needs TLS (an ssl context)")
        if upstream.security_profile in (2, 3) and upstream_ssl is None:
            raise ValueError(f"upstream security profile {upstream.security_profile} needs a client TLS context")
        if upstream.security_profile in (2, 3) and not upstream.url.startswith("wss://"):
            raise ValueError(f"upstream security profile {upstream.security_profile} needs a wss:// URL")
        self._directory = directory
        self.settings = settings
        self.upstream = upstream
        self._ssl = ssl_context
        self._deps = SessionDeps(
            events=events,
            audit=audit,
            clock=clock,
            endpoint=settings,
            upstream=upstream,
            upstream_ssl=upstream_ssl,
            wait_retry=self._wait_retry,
            rng=rng or random.Random(),
        )
        self._events = events
        self._clock = clock
        self._server: Server | None = None
        self._sessions: dict[str, ProxySession] = {}
        self._store = BufferStore(buffer_db)
        self._buffers: dict[str, OfflineBuffer] = {}
        self._holdings: dict[str, GridHoldings] = {}
        #: Upstream connections opened during a station's handshake, until its session takes them over.
        self._opened: dict[ServerConnection, tuple[ClientConnection | None, OcppVersion | None]] = {}
        self._wake = asyncio.Event()
        self._cleanups: set[asyncio.Task[None]] = set()
        #: Sessions being closed by `disconnect`, set once their handler has reported them gone.
        self._gone: dict[ProxySession, asyncio.Event] = {}

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def url(self) -> str:
        return f"{'wss' if self._ssl else 'ws'}://{self.settings.host}:{self.port}{self.settings.path}"

    async def start(self) -> None:
        self._server = await serve_stations(
            self._handle, self.settings, self._ssl, self._process_request, self._select_subprotocol
        )

    def stop_accepting(self) -> None:
        """Shutdown, first step: refuse new stations, keep the open ones so in-flight calls can finish."""
        if self._server is not None:
            self._server.server.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._cleanups):
            task.cancel()
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        for up, _ in self._opened.values():
            if up is not None:
                await up.close()
        self._store.close()

    def reconnect_now(self) -> None:
        """Cut every waiting back-off short: sessions without a CSMS connection try again at once."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def disconnect(self, station_id: str, reason: str) -> bool:
        """Close a station that left the configuration, both sides: the station's socket (1008, policy violation)
        and its CSMS connection (1001, going away), each with `reason`. Returns once the station is reported gone;
        False when it was not connected."""
        session = self._sessions.get(station_id)
        if session is None:
            return False
        gone = self._gone.setdefault(session, asyncio.Event())
        await session.end(reason)
        if self._sessions.get(station_id) is session:  # its handler has not reported it gone yet
            await gone.wait()
        return True

    async def _wait_retry(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def session(self, station_id: str) -> ProxySession | None:
        """The live session of a station (operators' status views and tests)."""
        session = self._sessions.get(station_id)
        return session if session is not None and not session.closed else None

    # -- StationLink ---------------------------------------------------------------------------------------------

    def new_message_id(self) -> str:
        return ids.new_id()

    def is_connected(self, station_id: str) -> bool:
        return self.session(station_id) is not None

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float, message_id: str | None = None
    ) -> Reply:
        session = self.session(station_id)
        if session is None:
            return Reply(ReplyKind.OFFLINE, message_id, description="station not connected")
        return await session.call(action, payload, timeout=timeout, message_id=message_id)

    # -- handshake -----------------------------------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """The station-side checks of CSMS mode, then the CSMS's own answer to the same station."""
        refusal = handshake.check_request(
            connection,
            request,
            base=self.settings.path,
            directory=self._directory,
            profile=self.settings.security_profile,
        )
        if refusal is not None:
            return refusal
        station_id = handshake.station_id_from_path(request.path, self.settings.path)
        assert station_id is not None
        offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
        offers = handshake.allowed_offers(self._directory, station_id, offered)
        if not offers:  # completes without a subprotocol and is closed, as in CSMS mode
            self._stash(connection, None, None)
            return None
        try:
            up = await open_upstream(
                self.upstream,
                station_id,
                offers,
                authorization=request.headers.get("Authorization"),
                ssl_context=self._deps.upstream_ssl,
                max_size=4 * self.settings.max_message_bytes,
            )
        except UpstreamRefusedError as exc:
            log.info("refused %s: the upstream CSMS answered HTTP %d", station_id, exc.status)
            status = exc.status if 400 <= exc.status < 500 else HTTPStatus.BAD_GATEWAY
            response = connection.respond(status, f"Upstream CSMS refused the connection ({exc.status})\n")
            if status == HTTPStatus.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
        except UpstreamUnreachableError as exc:
            log.warning("station %s: upstream CSMS unreachable (%s); accepted, messages buffered", station_id, exc)
            self._stash(connection, None, offers[0])
            return None
        chosen = OcppVersion(up.subprotocol) if up.subprotocol in {v.value for v in offers} else None
        if chosen is None:
            await up.close()
        self._stash(connection, up if chosen is not None else None, chosen)
        return None

    def _stash(self, connection: ServerConnection, up: ClientConnection | None, version: OcppVersion | None) -> None:
        """Keep the CSMS connection for the station's session; close it if the station's handshake never ends."""
        self._opened[connection] = (up, version)
        if up is not None:
            task = asyncio.ensure_future(self._drop_unclaimed(connection))
            self._cleanups.add(task)
            task.add_done_callback(self._cleanups.discard)

    async def _drop_unclaimed(self, connection: ServerConnection) -> None:
        await connection.wait_closed()
        up, _ = self._opened.pop(connection, (None, None))
        if up is not None:
            await up.close()

    def _select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        _, version = self._opened.get(connection, (None, None))
        return Subprotocol(version.value) if version is not None else None

    # -- connection ----------------------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        up, _ = self._opened.pop(ws, (None, None))
        station_id = handshake.station_id_from_path(ws.request.path, self.settings.path)
        if station_id is None or ws.subprotocol is None:
            if up is not None:
                await up.close()
            await ws.close(CLOSE_NO_SUBPROTOCOL, "no OCPP subprotocol that both the station and the CSMS speak")
            return
        version = OcppVersion(ws.subprotocol)
        holdings = self._holdings.get(station_id)
        if holdings is None or holdings.version is not version:
            holdings = self._holdings[station_id] = GridHoldings(version)
        buffer = self._buffers.get(station_id)
        if buffer is None:
            buffer = self._buffers[station_id] = self._store.buffer(station_id, self.upstream.buffer_limit)
        session = ProxySession(
            self._deps,
            station_id,
            version,
            ws,
            up,
            authorization=ws.request.headers.get("Authorization"),
            buffer=buffer,
            holdings=holdings,
        )
        previous = self._sessions.get(station_id)
        self._sessions[station_id] = session
        if previous is not None and not previous.closed:  # a station reconnecting replaces its old socket
            await previous.ws.close(1000, "replaced by a new connection")
        self._events.station_connected(station_id, version, self._clock.now())
        try:
            await session.run()
        finally:
            if self._sessions.get(station_id) is session:
                del self._sessions[station_id]
                self._events.station_disconnected(station_id, self._clock.now())
            if (gone := self._gone.pop(session, None)) is not None:
                gone.set()
