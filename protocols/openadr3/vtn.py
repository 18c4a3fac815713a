"""A small OpenADR 3 VTN (3.0.1 or 3.1.0) for tests and the demo: in memory, one process, follows the definition.

Every request body is checked against the definition's requestBody schema (400 with a problem body naming each
fault); objects get the VTN metadata (id, createdDateTime, modificationDateTime, objectType, and clientID where
3.1 requires it). Webhook subscriptions are echo-checked on create/update and notified on every change; the
business-logic side (programs, events) is driven through Python methods rather than HTTP, and every HTTP exchange
is recorded in `exchanges` so tests can check it against the definition.

Faults for tests: `outage` answers every request with one status; `stop` then `start` again is a VTN that is
down and comes back on the same port with its objects; `store_raw` keeps an object without checking it and
`garble` serves a fixed body on a path (exchanges showing either are marked `tampered`); `before_request` runs
before each request is handled (to create a conflicting object mid-registration, say). A venName, and a
resourceName within one VEN, is unique: a second one is refused with 409.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from gateway.clock import Clock
from protocols.openadr3.reports import rfc3339
from protocols.openadr3.spec import OpenAdrVersion, load_spec, request_schema, validate
from protocols.openadr3.wire import MAX_BODY_BYTES, WireError, decode_body

_OBJECT_TYPES = {
    "programs": "PROGRAM",
    "events": "EVENT",
    "reports": "REPORT",
    "subscriptions": "SUBSCRIPTION",
    "vens": "VEN",
    "resources": "RESOURCE",
}
#: Query parameters that filter a listing by equality on the object's field of the same name.
_FILTERS = ("programID", "venName", "resourceName", "venID", "clientName")
_VERB = {"CREATE": "POST", "UPDATE": "PUT", "DELETE": "DELETE"}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request to the VTN and its answer, as bytes on the wire."""

    method: str
    path: str
    template: str
    query: str
    content_type: str
    request_body: bytes
    status: int
    response_content_type: str
    response_body: bytes
    #: The answer was broken on purpose (`outage`, `garble`, or it carries an object stored with `store_raw`).
    tampered: bool = False


@dataclass
class Delivery:
    url: str
    body: bytes
    status: int | None
    error: str | None = None


@dataclass
class _Store:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in _OBJECT_TYPES})
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)


def _problem(status: int, title: str, detail: str) -> web.Response:
    return web.json_response({"title": title, "status": status, "detail": detail}, status=status)


class Vtn:
    def __init__(
        self,
        version: OpenAdrVersion,
        clients: Mapping[str, str],
        *,
        clock: Clock,
        token_ttl_s: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
        require_https_callbacks: bool = False,
        notify_double_encoded: bool = False,
        notify_snake_case: bool = False,
    ) -> None:
        self.version = version
        self._clients = dict(clients)
        self._clock = clock
        self.token_ttl_s = token_ttl_s
        self._host = host
        self._port = port
        self._max_body = max_body_bytes
        self._https_only = require_https_callbacks
        self.notify_double_encoded = notify_double_encoded
        self.notify_snake_case = notify_snake_case
        self._store = _Store()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""
        self.exchanges: list[Exchange] = []
        self.deliveries: list[Delivery] = []
        self.tokens_issued = 0
        #: When set, every request is answered with this status (a VTN failing or behind a broken proxy).
        self.outage: int | None = None
        #: Path -> the body served with 200 instead of the real answer (a VTN sending what is not JSON, say).
        self.garble: dict[str, bytes] = {}
        #: Awaited with (method, path) before each request is handled.
        self.before_request: Callable[[str, str], Awaitable[None]] | None = None
        self._raw_ids: set[str] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_body, middlewares=[self._record])
        app.router.add_post("/auth/token", self._token)
        if self.version is OpenAdrVersion.V3_1_0:
            app.router.add_get("/auth/server", self._auth_server)
            app.router.add_get("/notifiers", self._notifiers)
        for template, operations in load_spec(self.version)["paths"].items():
            if template.startswith(("/auth", "/notifiers")):
                continue
            for method in operations:
                if method in ("get", "post", "put", "delete"):
                    app.router.add_route(method.upper(), template, self._crud)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        host, port = self._runner.addresses[0][:2]
        self._port = port  # a restart after `stop` listens where the VEN expects it
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Vtn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- business-logic side, for tests and the demo ----------------------------------------------------------------

    def objects(self, collection: str) -> list[dict[str, Any]]:
        return list(self._store.objects[collection].values())

    @property
    def reports(self) -> list[dict[str, Any]]:
        return self.objects("reports")

    def store_raw(self, collection: str, obj: Mapping[str, Any]) -> None:
        """Keep `obj` as it is, unchecked (a VTN serving what the definition does not allow)."""
        self._store.objects[collection][str(obj["id"])] = dict(obj)
        self._raw_ids.add(str(obj["id"]))

    def revoke_tokens(self) -> None:
        """Forget every issued token (clients see 401 and must fetch a new one)."""
        self._store.tokens.clear()

    async def create(self, collection: str, body: Mapping[str, Any], *, client_id: str = "bl") -> dict[str, Any]:
        """Create an object as the business logic would (validated like an HTTP request), notifying subscribers."""
        template = f"/{collection}"
        errors = self._check(body, "POST", template)
        if errors:
            raise ValueError("; ".join(errors))
        return await self._insert(collection, dict(body), client_id)

    async def update(self, collection: str, object_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        errors = self._check(body, "PUT", f"/{collection}/{{{_id_param(collection)}}}")
        if errors:
            raise ValueError("; ".join(errors))
        return await self._replace(collection, object_id, dict(body))

    async def delete(self, collection: str, object_id: str) -> dict[str, Any]:
        obj = self._store.objects[collection].pop(object_id)
        await self._notify(collection, "DELETE", obj)
        return obj

    # -- HTTP ------------------------------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            raw = await request.read() if request.can_read_body else b""
            response: web.StreamResponse
            if self.before_request is not None:
                await self.before_request(request.method, request.path)
            if self.outage is not None:
                response = _problem(self.outage, "Outage", "the VTN is failing (test outage)")
            elif request.path in self.garble:
                response = web.Response(body=self.garble[request.path], content_type="application/json")
            else:
                response = await handler(request)
        except web.HTTPRequestEntityTooLarge:
            raw = b""
            response = _problem(413, "Payload Too Large", f"body exceeds {self._max_body} bytes")
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        route = request.match_info.route.resource
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.path,
                template=route.canonical if route is not None else request.path,
                query=request.query_string,
                content_type=request.content_type,
                request_body=raw,
                status=response.status,
                response_content_type=response.content_type,
                response_body=body,
                tampered=self.outage is not None
                or request.path in self.garble
                or any(i.encode() in body for i in self._raw_ids),
            )
        )
        return response

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        errors = validate(self.version, "clientCredentialRequest", {k: str(v) for k, v in form.items()})
        if errors:
            error = "unsupported_grant_type" if any(e.startswith("grant_type") for e in errors) else "invalid_request"
            return web.json_response({"error": error, "error_description": "; ".join(errors)}, status=400)
        client_id, secret = str(form["client_id"]), str(form["client_secret"])
        if not secrets.compare_digest(self._clients.get(client_id, "\0"), secret):
            status = 401 if self.version is OpenAdrVersion.V3_1_0 else 403
            return _problem(status, "Unauthorized", "unknown client or wrong secret")
        token = secrets.token_urlsafe(24)
        self._store.tokens[token] = (client_id, self._clock.now() + timedelta(seconds=self.token_ttl_s))
        self.tokens_issued += 1
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}
        return web.json_response(body)

    async def _auth_server(self, request: web.Request) -> web.Response:
        return web.json_response({"tokenURL": f"{self.url}/auth/token"})

    async def _notifiers(self, request: web.Request) -> web.Response:
        return web.json_response({"WEBHOOK": True})

    def _client(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        entry = self._store.tokens.get(token) if scheme.lower() == "bearer" else None
        if entry is None or self._clock.now() >= entry[1]:
            return None
        return entry[0]

    def _check(self, body: Any, method: str, template: str) -> list[str]:
        component = request_schema(self.version, method, template)
        return [] if component is None else validate(self.version, component, body)

    async def _crud(self, request: web.Request) -> web.Response:
        client_id = self._client(request)
        if client_id is None:  # 3.0.1 defines no 401 on its API paths: 403 is its "not authorized"
            status = 401 if self.version is OpenAdrVersion.V3_1_0 else 403
            return _problem(status, "Unauthorized", "missing, unknown or expired bearer token")
        template = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
        parts = [p for p in template.split("/") if p]
        collection = "resources" if "resources" in parts else parts[0]
        object_id = request.match_info.get(_id_param(collection))
        body: Any = None
        if request.method in ("POST", "PUT"):
            try:
                body = decode_body(await request.read(), max_bytes=self._max_body)
            except WireError as exc:
                return _problem(400, "Bad Request", str(exc))
            errors = self._check(body, request.method, template)
            if errors:
                return _problem(400, "Bad Request", "; ".join(errors))
            if "venID" in request.match_info:
                body["venID"] = request.match_info["venID"]
        try:
            if request.method == "GET" and object_id is None:
                return self._list(collection, request)
            if request.method == "POST":
                problem = await self._admit(collection, body, ("POST", template))
                if problem is not None:
                    return problem
                return web.json_response(await self._insert(collection, body, client_id), status=201)
            if object_id not in self._store.objects[collection]:
                return _problem(404, "Not Found", f"no {_OBJECT_TYPES[collection].lower()} {object_id!r}")
            if request.method == "GET":
                return web.json_response(self._store.objects[collection][object_id])
            if request.method == "PUT":
                problem = await self._admit(collection, body, ("PUT", template), object_id)
                if problem is not None:
                    return problem
                return web.json_response(await self._replace(collection, object_id, body))
            return web.json_response(await self.delete(collection, object_id))
        except _QueryError as exc:
            return _problem(400, "Bad Request", str(exc))

    def _list(self, collection: str, request: web.Request) -> web.Response:
        items = self.objects(collection)
        for name in _FILTERS:
            value = request.match_info.get(name) or request.query.get(name)
            if value is not None:
                items = [o for o in items if o.get(name) == value]
        skip = _int_param(request, "skip", 0, 0, 2**31 - 1)
        limit = _int_param(request, "limit", 50, 0, 50)
        return web.json_response(items[skip : skip + limit])

    async def _admit(
        self, collection: str, body: dict[str, Any], operation: tuple[str, str], object_id: str | None = None
    ) -> web.Response | None:
        """Referential and webhook checks the schema cannot express."""
        program_id = body.get("programID") if collection in ("events", "subscriptions") else None
        if program_id is not None and program_id not in self._store.objects["programs"]:
            return _problem(400, "Bad Request", f"programID: no program {body['programID']!r}")
        if collection == "reports" and body["eventID"] not in self._store.objects["events"]:
            return _problem(400, "Bad Request", f"eventID: no event {body['eventID']!r}")
        unique = {"vens": ("venName",), "resources": ("venID", "resourceName")}.get(collection, ())
        others = [o for o in self.objects(collection) if o["id"] != object_id]
        if unique and any(all(o.get(k) == body.get(k) for k in unique) for o in others):
            # 409 where the definition lists it for the operation (3.1.0 createVen does not: 400 there)
            method, template = operation
            responses = load_spec(self.version)["paths"][template][method.lower()]["responses"]
            status = 409 if "409" in responses else 400
            return _problem(status, "Conflict", f"a {_OBJECT_TYPES[collection].lower()} with this name exists")
        if collection == "subscriptions":
            for index, op in enumerate(body["objectOperations"]):
                fault = await self._echo_check(str(op["callbackUrl"]))
                if fault is not None:
                    return _problem(400, "Bad Request", f"objectOperations/{index}/callbackUrl: {fault}")
        return None

    async def _echo_check(self, url: str) -> str | None:
        """Definition, "Webhooks": GET the callback with a random `echo`; the body must be that value."""
        if self._https_only and not url.startswith("https://"):
            return "must be an https URL"
        assert self._session is not None
        challenge = secrets.token_urlsafe(16)
        try:
            async with self._session.get(
                url, params={"echo": challenge}, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                text = await response.text()
                if response.status != 200 or text.strip() != challenge:
                    return f"echo check failed (HTTP {response.status})"
        except aiohttp.ClientError as exc:
            return f"echo check failed ({type(exc).__name__})"
        return None

    async def _insert(self, collection: str, body: dict[str, Any], client_id: str) -> dict[str, Any]:
        now = rfc3339(self._clock.now())
        obj = {**body, "id": uuid.uuid4().hex, "createdDateTime": now, "modificationDateTime": now}
        obj["objectType"] = _OBJECT_TYPES[collection]
        if self.version is OpenAdrVersion.V3_1_0 and collection in ("reports", "subscriptions", "vens", "resources"):
            obj["clientID"] = client_id
        self._store.objects[collection][obj["id"]] = obj
        await self._notify(collection, "CREATE", obj)
        return obj

    async def _replace(self, collection: str, object_id: str, body: dict[str, Any]) -> dict[str, Any]:
        old = self._store.objects[collection][object_id]
        keep: dict[str, Any] = {k: old[k] for k in ("id", "createdDateTime", "objectType", "clientID") if k in old}
        obj: dict[str, Any] = {**body, **keep, "modificationDateTime": rfc3339(self._clock.now())}
        self._store.objects[collection][object_id] = obj
        await self._notify(collection, "UPDATE", obj)
        return obj

    def notification_body(self, object_type: str, operation: str, obj: Mapping[str, Any]) -> bytes:
        """The notification as this VTN sends it: 3.0.1 names operations by HTTP verb, 3.1 by CRUD."""
        op = _VERB[operation] if self.version is OpenAdrVersion.V3_0_1 else operation
        data: Any = {"objectType": object_type, "operation": op, "object": dict(obj)}
        if self.notify_snake_case:
            data = _snake_keys(data)
        text = json.dumps(data)
        return json.dumps(text).encode() if self.notify_double_encoded else text.encode()

    async def _notify(self, collection: str, operation: str, obj: Mapping[str, Any]) -> None:
        object_type = _OBJECT_TYPES[collection]
        assert self._session is not None
        for sub in list(self._store.objects["subscriptions"].values()):
            if sub.get("programID") and obj.get("programID", sub["programID"]) != sub["programID"]:
                continue
            for op in sub["objectOperations"]:
                if object_type not in op["objects"] or operation not in op["operations"]:
                    continue
                body = self.notification_body(object_type, operation, obj)
                headers = {"Content-Type": "application/json"}
                if op.get("bearerToken"):
                    headers["Authorization"] = f"Bearer {op['bearerToken']}"
                try:
                    async with self._session.post(op["callbackUrl"], data=body, headers=headers) as response:
                        self.deliveries.append(Delivery(op["callbackUrl"], body, response.status))
                except aiohttp.ClientError as exc:
                    self.deliveries.append(Delivery(op["callbackUrl"], body, None, type(exc).__name__))


class _QueryError(Exception):
    pass


def _id_param(collection: str) -> str:
    return {"programs": "programID", "events": "eventID", "reports": "reportID", "subscriptions": "subscriptionID",
            "vens": "venID", "resources": "resourceID"}[collection]  # fmt: skip


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _QueryError(f"query parameter {name}: {raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise _QueryError(f"query parameter {name}: {value} is outside {lo}..{hi}")
    return value


def _snake(key: str) -> str:
    out = key.replace("ID", "Id").replace("URL", "Url")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in out).lstrip("_")


def _snake_keys(data: Any) -> Any:
    """The key style of VTNs that send snake_case (for tolerance tests)."""
    if isinstance(data, dict):
        return {_snake(k): _snake_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_snake_keys(v) for v in data]
    return data
