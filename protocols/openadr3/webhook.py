"""The VEN's webhook callback server (optional; polling is the main path).

GET with `?echo=<challenge>` answers the VTN's ownership check (Definition, "Webhooks": 200 with the value in the
body). POST carries a notification; it must present the bearer token we gave in the subscription. Bodies are
decoded tolerantly (double-encoded JSON, snake_case keys) and refused with a problem+json 400 naming the fault.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from protocols.openadr3.wire import MAX_BODY_BYTES, Notification, WireError, decode_body, parse

Handler = Callable[[Notification, bytes], Awaitable[None]]


def problem(status: int, title: str, detail: str) -> web.Response:
    return web.json_response({"title": title, "status": status, "detail": detail}, status=status)


class WebhookServer:
    def __init__(
        self,
        handler: Handler,
        bearer_token: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/openadr3/callback",
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._handler = handler
        self._token = bearer_token
        self._host = host
        self._port = port
        self.path = path
        self._max_body = max_body_bytes
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_get(self.path, self._echo)
        app.router.add_post(self.path, self._notify)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}{self.path}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _echo(self, request: web.Request) -> web.Response:
        echo = request.query.get("echo")
        if echo is None:
            return problem(400, "Bad Request", "query parameter 'echo' is required")
        return web.Response(text=echo, content_type="text/plain")

    async def _notify(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), self._token.encode()):
            return problem(401, "Unauthorized", "missing or wrong bearer token")
        try:
            raw = await request.read()
            notification = parse(Notification, decode_body(raw, max_bytes=self._max_body))
        except web.HTTPRequestEntityTooLarge:
            return problem(413, "Payload Too Large", f"body exceeds {self._max_body} bytes")
        except WireError as exc:
            return problem(400, "Bad Request", str(exc))
        await self._handler(notification, raw)
        return web.Response(status=200)
