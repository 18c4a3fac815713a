"""The gateway's own WebSocket connection to the upstream CSMS, one per station (part 4, 6.2).

Toward the CSMS the gateway acts as the station (part 4, 6.5): same identity in the URL path, same subprotocol the
station asked for, and its security per the configured profile. Profile 3 uses the gateway's own client certificate,
never the station's (the Local Controller rule); profiles 1 and 2 relay the station's HTTP Basic credentials as the
station sent them, because the CSMS owns and rotates station passwords (SetVariables BasicAuthPassword passes
through the proxy) and the gateway must not store them.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from gateway.model import OcppVersion
from protocols.ocpp.sidecar.buffer import Backoff


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    #: ws://host:port/path or wss://...; the station identity is appended as the last path segment.
    url: str
    #: 0 = no credentials, 1 = Basic over ws, 2 = Basic over wss, 3 = wss with the gateway's client certificate.
    security_profile: int = 1
    connect_timeout_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    #: Station messages kept per station while the CSMS is unreachable.
    buffer_limit: int = 10_000


class UpstreamRefusedError(Exception):
    """The CSMS answered the handshake with an HTTP error: the station is refused the same way."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"upstream CSMS refused the connection: HTTP {status} {reason}")
        self.status = status
        self.reason = reason


class UpstreamUnreachableError(Exception):
    """No answer from the CSMS (connection refused, timeout, TLS or protocol failure)."""


async def open_upstream(
    settings: UpstreamSettings,
    station_id: str,
    offers: Sequence[OcppVersion],
    *,
    authorization: str | None,
    ssl_context: ssl.SSLContext | None,
    max_size: int,
) -> ClientConnection:
    """Connect to the CSMS as `station_id` offering `offers`; UpstreamRefusedError or UpstreamUnreachableError."""
    headers = {"Authorization": authorization} if authorization and settings.security_profile in (1, 2) else {}
    url = f"{settings.url.rstrip('/')}/{quote(station_id, safe='')}"
    try:
        return await connect(
            url,
            subprotocols=[Subprotocol(v.value) for v in offers],
            additional_headers=headers,
            ssl=ssl_context if url.startswith("wss://") else None,
            open_timeout=settings.connect_timeout_s,
            max_size=max_size,
            compression=None,
            proxy=None,
        )
    except InvalidStatus as exc:
        raise UpstreamRefusedError(exc.response.status_code, exc.response.reason_phrase) from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise UpstreamUnreachableError(f"{type(exc).__name__}: {exc}") from None
