"""The operator dashboard: a static page (no build step, no framework, no CDN) and its server-sent event stream.

`attach` wires an EventHub into a running gateway's parts and registers the routes on the operator API app:

- `GET /` redirects to `/dashboard/`; `/dashboard/` serves index.html, app.js and style.css (no data, no token).
- `GET /dashboard/events?token=...` is the live stream (text/event-stream). EventSource cannot set headers, so
  this one endpoint takes the bearer token as a query parameter; every /api call stays header-only. The page
  reads the token from the URL fragment (`/dashboard/#token=...`), which browsers never send to the server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.dashboard.hub import EventHub, Message, Subscription
from gateway.dispatch import Dispatcher
from gateway.fleet import Fleet
from gateway.interfaces import UtilityAdapter
from gateway.store import Store

__all__ = ["EventHub", "Message", "Subscription", "attach"]

_STATIC = Path(__file__).parent
_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
#: A comment line this often keeps proxies from closing an idle stream and finds browsers that went away.
KEEPALIVE_S = 15.0

_HUB = web.AppKey("dashboard_hub", EventHub)
_TOKEN: web.AppKey[str | None] = web.AppKey("dashboard_token")
_TASK: web.AppKey[asyncio.Task[None]] = web.AppKey("dashboard_task")


def attach(
    app: web.Application,
    *,
    fleet: Fleet,
    dispatcher: Dispatcher,
    store: Store,
    audit: AuditLog,
    clock: Clock,
    adapters: Sequence[UtilityAdapter],
    token: str | None,
) -> EventHub:
    """Make the hub, subscribe it to the fleet and the dispatcher, and serve the page and its stream on `app`.
    The hub's timer starts and stops with the app."""
    hub = EventHub(fleet, store, audit, clock, adapters)
    fleet.on_change(hub.station_changed)
    fleet.on_alarm(hub.alarm)
    dispatcher.on_event(hub.directive_event)
    app[_HUB], app[_TOKEN] = hub, token
    app.router.add_get("/", _root)
    app.router.add_get("/dashboard", _root)
    app.router.add_get("/dashboard/", _file)
    app.router.add_get("/dashboard/events", _events)
    app.router.add_get("/dashboard/{name}", _file)
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    return hub


async def _start(app: web.Application) -> None:
    app[_TASK] = asyncio.create_task(app[_HUB].run())


async def _shutdown(app: web.Application) -> None:
    """Before aiohttp waits for open requests: end the streams, or shutdown would wait for every browser."""
    app[_HUB].close()
    task = app[_TASK]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


async def _file(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name", "index.html")
    if name not in _FILES:
        raise web.HTTPNotFound()
    return web.Response(
        body=(_STATIC / name).read_bytes(),
        content_type=_FILES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": "default-src 'self'"},
    )


async def _events(request: web.Request) -> web.StreamResponse:
    token = request.app[_TOKEN]
    given = request.query.get("token", "")
    if token is not None and not secrets.compare_digest(given.encode(), token.encode()):
        return web.json_response({"error": "missing or wrong token (?token=)"}, status=401)
    hub = request.app[_HUB]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    sub = hub.subscribe()
    try:
        while True:
            try:
                message = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if message is None:
                break
            await response.write(encode(message))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        hub.unsubscribe(sub)
    return response


def encode(message: Message) -> bytes:
    """One SSE frame; JSON has no raw newlines, so the data fits one `data:` line."""
    return f"event: {message.event}\ndata: {json.dumps(message.data, separators=(',', ':'))}\n\n".encode()
