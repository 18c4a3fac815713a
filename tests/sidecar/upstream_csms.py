"""The upstream counterpart for sidecar tests: a small CSMS built on the `ocpp` library (mobilityhouse, OCPP 2.1 and
1.6) over real WebSockets on 127.0.0.1, recording every frame exactly as it crossed the wire.

It is independent of the gateway's own codec, so a frame that reaches it has passed through the proxy as OCPP, and
a byte-for-byte comparison with what the station sent or received proves the proxy left it alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from ssl import SSLContext
from types import TracebackType
from typing import Any

from ocpp.charge_point import ChargePoint as BaseChargePoint
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint, call_result
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.tls import peer_common_name
from protocols.ocpp.auth import parse_basic_auth


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Recorded(BaseChargePoint):  # type: ignore[misc]
    """Records every frame in both directions, for the byte-for-byte assertions (both OCPP versions)."""

    def __init__(self, station_id: str, ws: ServerConnection, csms: UpstreamCsms) -> None:
        super().__init__(station_id, ws, response_timeout=10)
        self.csms = csms
        self.ws = ws

    async def route_message(self, raw_msg: str) -> None:
        self.csms.record(self.id, "in", raw_msg)
        await super().route_message(raw_msg)

    async def _send(self, message: str) -> None:
        self.csms.record(self.id, "out", message)
        await super()._send(message)


class UpstreamStation(_Recorded, ChargePoint):  # type: ignore[misc]
    """The CSMS side of one proxied station connection."""

    @on("BootNotification")  # type: ignore[untyped-decorator]
    def boot(self, **_: Any) -> Any:
        return call_result.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on("Heartbeat")  # type: ignore[untyped-decorator]
    def heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")  # type: ignore[untyped-decorator]
    def status(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on("Authorize")  # type: ignore[untyped-decorator]
    def authorize(self, **_: Any) -> Any:
        return call_result.Authorize(id_token_info={"status": "Accepted"})

    @on("TransactionEvent")  # type: ignore[untyped-decorator]
    def transaction(self, id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        if id_token is not None and id_token["id_token"] in self.csms.blocked:
            return call_result.TransactionEvent(id_token_info={"status": "Blocked"})
        return call_result.TransactionEvent()

    @on("MeterValues")  # type: ignore[untyped-decorator]
    def meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()

    @on("DataTransfer")  # type: ignore[untyped-decorator]
    def data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return call_result.DataTransfer(status="Accepted", data=f"hello {vendor_id}")

    @on("NotifyDERAlarm")  # type: ignore[untyped-decorator]
    def der_alarm(self, **_: Any) -> Any:
        return call_result.NotifyDERAlarm()

    @on("NotifyDERStartStop")  # type: ignore[untyped-decorator]
    def der_start_stop(self, **_: Any) -> Any:
        return call_result.NotifyDERStartStop()


class UpstreamStation16(_Recorded, ChargePoint16):  # type: ignore[misc]
    """The CSMS side of one proxied OCPP 1.6 station connection; transaction ids count from 1000."""

    @on("BootNotification")  # type: ignore[untyped-decorator]
    def boot(self, **_: Any) -> Any:
        return result16.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on("Heartbeat")  # type: ignore[untyped-decorator]
    def heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=_now())

    @on("StatusNotification")  # type: ignore[untyped-decorator]
    def status(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on("Authorize")  # type: ignore[untyped-decorator]
    def authorize(self, id_tag: str, **_: Any) -> Any:
        return result16.Authorize(id_tag_info={"status": "Blocked" if id_tag in self.csms.blocked else "Accepted"})

    @on("StartTransaction")  # type: ignore[untyped-decorator]
    def start_transaction(self, **_: Any) -> Any:
        self.csms.transaction_ids += 1
        return result16.StartTransaction(transaction_id=self.csms.transaction_ids, id_tag_info={"status": "Accepted"})

    @on("MeterValues")  # type: ignore[untyped-decorator]
    def meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on("StopTransaction")  # type: ignore[untyped-decorator]
    def stop_transaction(self, **_: Any) -> Any:
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})


class UpstreamCsms:
    """Serves ws://127.0.0.1:<port>/csms/<station id> in `versions` (OCPP 2.1 by default); `refuse` answers the
    handshake with that status; tokens in `blocked` are answered Blocked."""

    def __init__(
        self,
        *,
        password: str | None = None,
        refuse: HTTPStatus | None = None,
        ssl: SSLContext | None = None,
        versions: tuple[str, ...] = ("ocpp2.1",),
    ) -> None:
        self.password = password
        self.refuse = refuse
        self.ssl = ssl
        self.versions = versions
        self.blocked: set[str] = set()
        #: The last 1.6 transaction id given.
        self.transaction_ids = 1000
        #: Per station: the client certificate's CN and the Authorization header of its latest connection.
        self.peers: dict[str, tuple[str | None, str | None]] = {}
        self.stations: dict[str, UpstreamStation | UpstreamStation16] = {}
        #: Every frame per station: (direction "in" | "out", the text exactly as on the wire).
        self.frames: dict[str, list[tuple[str, str]]] = {}
        self.connections: dict[str, int] = {}
        self._port = 0
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl else 'ws'}://127.0.0.1:{self._port}/csms"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self._port,
            subprotocols=[Subprotocol(v) for v in self.versions],
            process_request=self._check,
            compression=None,
            ping_interval=None,
            ssl=self.ssl,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> UpstreamCsms:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            await self.stop()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse is not None:
            return connection.respond(self.refuse, "refused by the test CSMS\n")
        if self.password is not None:
            creds = parse_basic_auth(request.headers.get("Authorization"))
            if creds is None or creds[1] != self.password or not request.path.endswith("/" + creds[0]):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        station_id = ws.request.path.rsplit("/", 1)[-1]
        kind = UpstreamStation16 if ws.subprotocol == "ocpp1.6" else UpstreamStation
        station = kind(station_id, ws, self)
        cn = peer_common_name(ws.transport.get_extra_info("ssl_object")) if self.ssl else None
        self.peers[station_id] = (cn, ws.request.headers.get("Authorization"))
        self.stations[station_id] = station
        async with self._changed:
            self.connections[station_id] = self.connections.get(station_id, 0) + 1
            self._changed.notify_all()
        try:
            await station.start()
        except ConnectionClosed:  # start() ends only when the connection does
            pass
        finally:
            async with self._changed:
                self._changed.notify_all()

    def record(self, station_id: str, direction: str, text: str) -> None:
        self.frames.setdefault(station_id, []).append((direction, text))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Until `predicate` holds (checked on every frame and connection change)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), 10)

    def received(self, station_id: str) -> list[list[Any]]:
        """The frames the station (through the proxy) sent, decoded."""
        return [json.loads(t) for d, t in self.frames.get(station_id, []) if d == "in"]

    def received_text(self, station_id: str) -> list[str]:
        return [t for d, t in self.frames.get(station_id, []) if d == "in"]

    def sent_text(self, station_id: str) -> list[str]:
        return [t for d, t in self.frames.get(station_id, []) if d == "out"]

    def actions(self, station_id: str) -> list[str]:
        return [f[2] for f in self.received(station_id) if f[0] == 2]
