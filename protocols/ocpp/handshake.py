"""The station-side WebSocket handshake rules, shared by the CSMS-mode endpoint and the sidecar proxy.

OCPP 2.1 part 4, 3.1: unknown or malformed identities get HTTP 404; HTTP Basic auth for security profiles 1 and 2
(A00.FR.202-207), the client certificate's CN for profile 3; the subprotocol is the first of the gateway's
preference (2.1, then 2.0.1, then 1.6) that the station offers and may use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from gateway.model import OcppVersion
from gateway.tls import peer_common_name
from protocols.ocpp import auth

log = logging.getLogger(__name__)

PREFERENCE: tuple[OcppVersion, ...] = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


class StationDirectory(Protocol):
    """Which stations may connect, and their credentials (from configuration)."""

    def known(self, station_id: str) -> bool: ...

    def check_password(self, station_id: str, password: str) -> bool: ...

    def versions(self, station_id: str) -> Sequence[OcppVersion]:
        """Subprotocols this station may use (all by default)."""
        ...


def station_id_from_path(path: str, base: str) -> str | None:
    """The station identity in `{base}/{stationId}`, None when the path or the identity is malformed."""
    prefix = base.rstrip("/") + "/"
    raw = path.split("?", 1)[0]
    if not raw.startswith(prefix):
        return None
    station_id = unquote(raw[len(prefix) :])
    return station_id if auth.valid_identity(station_id) else None


def check_request(
    connection: ServerConnection, request: Request, *, base: str, directory: StationDirectory, profile: int
) -> Response | None:
    """The HTTP refusal for a station that may not connect, None when it may."""
    station_id = station_id_from_path(request.path, base)
    if station_id is None or not directory.known(station_id):
        log.info("refused %s: unknown or malformed station identity", request.path)
        return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charging station\n")
    if profile in (1, 2):
        creds = auth.parse_basic_auth(request.headers.get("Authorization"))
        if creds is None or creds[0] != station_id or not directory.check_password(station_id, creds[1]):
            log.info("refused %s: bad or missing HTTP Basic credentials", station_id)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
    if profile == 3:
        common_name = peer_common_name(connection.transport.get_extra_info("ssl_object"))
        if common_name != station_id:
            log.info("refused %s: client certificate CN %r does not match", station_id, common_name)
            return connection.respond(HTTPStatus.FORBIDDEN, "Client certificate does not match station\n")
    return None


def allowed_offers(directory: StationDirectory, station_id: str | None, offered: Sequence[str]) -> list[OcppVersion]:
    """The versions the station offers and may use, in the gateway's order of preference."""
    allowed = directory.versions(station_id) if station_id else PREFERENCE
    return [v for v in PREFERENCE if v in allowed and v.value in offered]


if TYPE_CHECKING:
    import ssl

    from protocols.ocpp.server import EndpointSettings


async def serve_stations(
    handler: Callable[[ServerConnection], Awaitable[None]],
    settings: EndpointSettings,
    ssl_context: ssl.SSLContext | None,
    process_request: Callable[[ServerConnection, Request], Awaitable[Response | None] | Response | None],
    select_subprotocol: Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None],
) -> Server:
    """The station-facing WebSocket server, the same for CSMS mode and the sidecar: frames up to 4x the answered
    limit are read (larger ones close the socket); permessage-deflate as configured (part 4: a CSMS SHALL
    support it)."""
    return await serve(
        handler,
        settings.host,
        settings.port,
        ssl=ssl_context,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        compression="deflate" if settings.compression else None,
        max_size=4 * settings.max_message_bytes,
        server_header="dergw",
    )
