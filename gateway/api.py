"""Operator HTTP API (aiohttp): directives in canonical JSON, per-station outcomes, fleet state, alarms, utility
links, health and metrics. `/api/openapi.json` (gateway/openapi.py) describes every route.

Every /api call needs `Authorization: Bearer <token>` when a token is configured, except the OpenAPI document;
/livez, /readyz and /metrics (aggregates, no per-station data) do not.
Bad input gets a precise JSON error and an audit entry; it never reaches the fleet.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.dispatch import Dispatcher, TargetError
from gateway.fleet import Fleet, StationState
from gateway.interfaces import LinkHealth
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.model import Alarm, Directive, DirectiveState, OutcomeStatus, StationOutcome
from gateway.openapi import document
from gateway.store import DirectiveRecord, Store

MAX_BODY_BYTES = 1_048_576
#: Paths under /api/ that need no token: they read no fleet data.
_OPEN_PATHS = frozenset({"/api/openapi.json"})


class RecentAlarms:
    """The latest station alarms, newest last (the fleet registry keeps only the last one per station)."""

    def __init__(self, limit: int = 1000) -> None:
        self._alarms: deque[Alarm] = deque(maxlen=limit)

    def add(self, alarm: Alarm) -> None:
        self._alarms.append(alarm)

    def latest(self, limit: int) -> list[Alarm]:
        return list(self._alarms)[-limit:] if limit else []


@dataclass(frozen=True)
class Operations:
    """What the runtime offers the operator API beyond its stores: link health, station reload, alarms, metrics."""

    links: Callable[[], Mapping[str, LinkHealth]]
    #: Re-read the station list; returns the ids added, removed and kept. LookupError: nothing to reload from.
    reload: Callable[[], Awaitable[dict[str, list[str]]]]
    alarms: RecentAlarms
    metrics: Metrics


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_DISPATCHER = web.AppKey("dispatcher", Dispatcher)
_FLEET = web.AppKey("fleet", Fleet)
_STORE = web.AppKey("store", Store)
_AUDIT = web.AppKey("audit", AuditLog)
_CLOCK = web.AppKey("clock", Clock)
ReadyProbe = Callable[[], bool]
_READY: web.AppKey[ReadyProbe] = web.AppKey("ready")
_OPS = web.AppKey("operations", Operations)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def build_app(
    *,
    dispatcher: Dispatcher,
    fleet: Fleet,
    store: Store,
    audit: AuditLog,
    clock: Clock,
    token: str | None,
    ready: Callable[[], bool],
    operations: Operations,
) -> web.Application:
    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.path.startswith("/api/") and request.path not in _OPEN_PATHS:
            given = request.headers.get("Authorization", "")
            if not given.startswith("Bearer ") or not secrets.compare_digest(given[7:].encode(), token.encode()):
                return _error(
                    401,
                    "missing or wrong bearer token",
                )
        return await handler(request)

    app = web.Application(middlewares=[bearer], client_max_size=MAX_BODY_BYTES)
    app[_DISPATCHER], app[_FLEET], app[_STORE], app[_AUDIT], app[_CLOCK], app[_READY] = (
        dispatcher,
        fleet,
        store,
        audit,
        clock,
        ready,
    )
    app[_OPS] = operations
    app.router.add_get("/livez", _livez)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/api/openapi.json", _openapi)
    app.router.add_post("/api/directives", _submit)
    app.router.add_get("/api/directives", _list_directives)
    app.router.add_get("/api/directives/{id}", _show_directive)
    app.router.add_delete("/api/directives/{id}", _cancel_directive)
    app.router.add_get("/api/stations", _list_stations)
    app.router.add_post("/api/stations/reload", _reload_stations)
    app.router.add_get("/api/stations/{id}", _show_station)
    app.router.add_get("/api/alarms", _alarms)
    app.router.add_get("/api/links", _links)
    app.router.add_get("/api/audit", _audit_query)
    return app


async def _livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    ok = request.app[_READY]()
    return web.json_response({"status": "ready" if ok else "not ready"}, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_OPS].metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(document())


def _reject(request: web.Request, reason: str, details: Any = None) -> None:
    request.app[_AUDIT].append(
        "input.rejected",
        {"source": "api", "path": request.path, "reason": reason, "details": details},
        at=request.app[_CLOCK].now(),
    )


async def _submit(request: web.Request) -> web.Response:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        _reject(request, f"body larger than {MAX_BODY_BYTES} bytes")
        return _error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = json.loads(body)
    except ValueError as exc:
        _reject(request, f"invalid JSON: {exc}")
        return _error(400, f"invalid JSON: {exc}")
    try:
        directive = Directive.model_validate(raw)
    except ValidationError as exc:
        details = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        _reject(request, "invalid directive", details)
        return _error(422, "invalid directive", details=details)
    try:
        record = await request.app[_DISPATCHER].submit(directive)
    except TargetError as exc:
        _reject(request, str(exc))
        status = 409 if "already exists" in str(exc) else 422
        return _error(status, str(exc))
    request.app[_AUDIT].append(
        "operator.action",
        {"action": "submit", "remote": request.remote},
        at=request.app[_CLOCK].now(),
        directive_id=directive.id,
    )
    return web.json_response(_directive_json(record, []), status=202)


async def _list_directives(request: web.Request) -> web.Response:
    records = request.app[_STORE].directives(limit=200)
    return web.json_response({"directives": [_directive_json(r, None) for r in records]})


async def _show_directive(request: web.Request) -> web.Response:
    store = request.app[_STORE]
    record = store.directive(request.match_info["id"])
    if record is None:
        return _error(404, f"no directive {request.match_info['id']!r}")
    return web.json_response(_directive_json(record, store.outcomes(record.directive.id)))


async def _cancel_directive(request: web.Request) -> web.Response:
    directive_id = request.match_info["id"]
    dispatcher = request.app[_DISPATCHER]
    try:
        record = await dispatcher.cancel(directive_id)
    except KeyError:
        return _error(404, f"no directive {directive_id!r}")
    request.app[_AUDIT].append(
        "operator.action", {"action": "cancel"}, at=request.app[_CLOCK].now(), directive_id=directive_id
    )
    return web.json_response(_directive_json(record, request.app[_STORE].outcomes(directive_id)))


async def _list_stations(request: web.Request) -> web.Response:
    fleet = request.app[_FLEET]
    held = _in_force(request.app[_STORE])
    return web.json_response({"stations": [_station_json(s, held.get(s.id, [])) for s in fleet.stations.values()]})


async def _show_station(request: web.Request) -> web.Response:
    state = request.app[_FLEET].stations.get(request.match_info["id"])
    if state is None:
        return _error(404, f"no station {request.match_info['id']!r}")
    return web.json_response(_station_json(state, _in_force(request.app[_STORE]).get(state.id, [])))


async def _reload_stations(request: web.Request) -> web.Response:
    try:
        changes = await request.app[_OPS].reload()
    except LookupError as exc:
        return _error(409, str(exc))
    except ValueError as exc:  # the configuration file no longer validates: nothing changed
        return _error(422, "configuration not reloaded", details=str(exc).splitlines())
    request.app[_AUDIT].append(
        "operator.action", {"action": "reload stations", **changes}, at=request.app[_CLOCK].now()
    )
    return web.json_response(changes)


async def _alarms(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        return _error(400, "limit must be an integer")
    if not 1 <= limit <= 1000:
        return _error(400, "limit must be between 1 and 1000")
    alarms = request.app[_OPS].alarms.latest(limit)
    return web.json_response({"alarms": [a.model_dump(mode="json", exclude={"raw"}) for a in alarms]})


async def _links(request: web.Request) -> web.Response:
    links = request.app[_OPS].links()
    return web.json_response(
        {
            "links": [
                {
                    "protocol": name,
                    "ok": h.ok,
                    "last_seen": h.last_seen.isoformat() if h.last_seen else None,
                    "detail": h.detail,
                }
                for name, h in links.items()
            ]
        }
    )


_AUDIT_FILTERS = ("directive", "station", "kind", "message", "signal")


async def _audit_query(request: web.Request) -> web.Response:
    """Audit entries by directive, station, kind, message or signal id and time (since inclusive, until not)."""
    audit = request.app[_AUDIT]
    q = request.query
    unknown = sorted(set(q) - {*_AUDIT_FILTERS, "since", "until", "limit"})
    if unknown:
        return _error(400, f"unknown query parameter(s): {', '.join(unknown)}")
    try:
        since = datetime.fromisoformat(q["since"]) if "since" in q else None
        until = datetime.fromisoformat(q["until"]) if "until" in q else None
        limit = int(q.get("limit", "1000"))
    except ValueError as exc:
        return _error(400, f"bad query parameter: {exc}")
    if not 1 <= limit <= 10_000:
        return _error(400, "limit must be between 1 and 10000")
    if any(t is not None and t.tzinfo is None for t in (since, until)):
        return _error(400, "since and until need a time zone (e.g. 2026-01-01T00:00:00Z)")
    entries = audit.query(
        directive_id=q.get("directive"),
        station_id=q.get("station"),
        kind=q.get("kind"),
        message_id=q.get("message"),
        signal_id=q.get("signal"),
        since=since,
        until=until,
        limit=limit,
    )
    return web.json_response({"entries": [json.loads(e.body) for e in entries]})


def _directive_json(record: DirectiveRecord, outcomes: list[StationOutcome] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.directive.id,
        "number": record.number,
        "state": record.state.value,
        "created": record.created.isoformat(),
        "updated": record.updated.isoformat(),
        "directive": record.directive.model_dump(mode="json", exclude_none=True),
    }
    if outcomes is not None:
        summary: dict[str, int] = {}
        for o in outcomes:
            summary[o.status.value] = summary.get(o.status.value, 0) + 1
        body["summary"] = summary
        body["outcomes"] = [o.model_dump(mode="json", exclude_none=True) for o in outcomes]
    return body


def _in_force(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Per station, what scheduled and active directives hold on it: the controls of the commands it accepted."""
    held: dict[str, list[dict[str, Any]]] = {}
    for record in store.directives([DirectiveState.SCHEDULED, DirectiveState.ACTIVE]):
        for outcome in store.outcomes(record.directive.id):
            controls = sorted(
                {c for cmd in outcome.commands if cmd.status is OutcomeStatus.ACCEPTED for c in cmd.controls}
            )
            if controls:
                held.setdefault(outcome.station_id, []).append(
                    {
                        "directive_id": record.directive.id,
                        "state": record.state.value,
                        "priority": record.directive.priority,
                        "controls": controls,
                    }
                )
    return held


def _station_json(state: StationState, in_force: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": state.id,
        "groups": sorted(state.groups),
        "connected": state.connected,
        "version": state.version.value if state.version else None,
        "capabilities": state.capabilities.model_dump(mode="json") if state.capabilities else None,
        "power_w": state.power_w,
        "last_alarm": state.last_alarm.model_dump(mode="json", exclude={"raw"}) if state.last_alarm else None,
        "last_seen": state.last_seen.isoformat() if state.last_seen else None,
        "in_force": in_force,
    }
