"""The VEN's HTTP client: OAuth2 client credentials, registration, programs, events, reports, subscriptions.

The token is fetched with client credentials (the definition's /auth/token takes no other grant) and fetched
again shortly before `expires_in` runs out by the injected clock, or once after a 401. 3.1 VTNs name their token
endpoint at /auth/server; 3.0.1 VTNs serve it at /auth/token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from gateway.clock import Clock
from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.wire import MAX_BODY_BYTES, TokenResponse, WireError, decode_body, parse

#: The definition's page size maximum (`limit` query parameter).
PAGE = 50


class OpenAdrHttpError(Exception):
    """The VTN answered with an error status (its problem detail, when it sent one, is in the message)."""

    def __init__(self, method: str, url: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class MalformedBodyError(WireError):
    """The VTN answered with a body that is not what the definition says (not JSON, not the expected shape); `raw`
    is the body as received, for the audit digest."""

    def __init__(self, message: str, raw: bytes) -> None:
        super().__init__(message)
        self.raw = raw


class VenClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        version: OpenAdrVersion,
        client_id: str,
        client_secret: str,
        *,
        clock: Clock,
        token_url: str | None = None,
        scope: str | None = None,
        refresh_margin_s: float = 30.0,
        timeout_s: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self._session = session
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._token_url = token_url
        self._scope = scope
        self._margin = timedelta(seconds=refresh_margin_s)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_body = max_body_bytes
        self._token: str | None = None
        self._expires: datetime | None = None
        #: How many tokens were fetched (tests and health read it).
        self.tokens_fetched = 0
        #: The last error raised while fetching a token (discovery included).
        self.token_error: Exception | None = None

    async def _read(self, response: aiohttp.ClientResponse, *, camel: bool = True) -> Any:
        declared = response.content_length
        if declared is not None and declared > self._max_body:
            raise WireError(f"{response.method} {response.url}: body of {declared} bytes exceeds {self._max_body}")
        raw = await response.content.read(self._max_body + 1)
        if not raw:
            return None
        try:
            return decode_body(raw, max_bytes=self._max_body, camel=camel)
        except WireError as exc:
            raise MalformedBodyError(f"{response.method} {response.url}: {exc}", raw) from None

    async def _error(self, response: aiohttp.ClientResponse) -> OpenAdrHttpError:
        try:
            body = await self._read(response)
        except WireError as exc:
            body = str(exc)
        detail = body.get("detail") or body.get("title") or body if isinstance(body, dict) else body
        return OpenAdrHttpError(response.method, str(response.url), response.status, str(detail))

    async def _discover_token_url(self) -> str:
        if self._token_url is not None:
            return self._token_url
        if self.version is OpenAdrVersion.V3_1_0:
            async with self._session.get(f"{self.base_url}/auth/server", timeout=self._timeout) as response:
                if response.status != 200:
                    raise await self._error(response)
                body = await self._read(response)
            if not isinstance(body, dict) or not isinstance(body.get("tokenURL"), str):
                raise WireError("/auth/server: tokenURL missing")
            self._token_url = str(body["tokenURL"])
        else:
            self._token_url = f"{self.base_url}/auth/token"
        return self._token_url

    async def token(self) -> str:
        """A bearer token that is valid now by the injected clock (fetching a new one when needed)."""
        now = self._clock.now()
        if self._token is not None and (self._expires is None or now < self._expires - self._margin):
            return self._token
        try:
            url = await self._discover_token_url()
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
            if self._scope is not None:
                form["scope"] = self._scope
            async with self._session.post(url, data=form, timeout=self._timeout) as response:
                if response.status != 200:
                    raise await self._error(response)
                token = parse(TokenResponse, await self._read(response, camel=False))
        except Exception as exc:
            self.token_error = exc  # the caller tells a failed token fetch from a failed API call by identity
            raise
        self._token = token.access_token
        self._expires = None if token.expires_in is None else now + timedelta(seconds=token.expires_in)
        self.tokens_fetched += 1
        return self._token

    async def request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        """One API call with the bearer token; a 401 (3.0.1: 403, its only auth failure) gets one retry with a
        fresh token."""
        refused = 401 if self.version is OpenAdrVersion.V3_1_0 else 403
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {await self.token()}"}
            async with self._session.request(
                method, f"{self.base_url}{path}", json=body, params=params, headers=headers, timeout=self._timeout
            ) as response:
                if response.status == refused and attempt == 1:
                    self._token = None
                    continue
                if response.status >= 400:
                    raise await self._error(response)
                return await self._read(response)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _all(self, path: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = await self.request("GET", path, params={**(params or {}), "skip": str(len(out)), "limit": str(PAGE)})
            if not isinstance(page, list) or not all(isinstance(item, dict) for item in page):
                raw = json.dumps(page, sort_keys=True, separators=(",", ":")).encode()
                raise MalformedBodyError(f"GET {path}: expected a JSON array of objects", raw)
            out.extend(page)
            if len(page) < PAGE:
                return out

    async def programs(self) -> list[dict[str, Any]]:
        return await self._all("/programs")

    async def events(self, program_id: str | None = None) -> list[dict[str, Any]]:
        return await self._all("/events", {"programID": program_id} if program_id else None)

    async def register_ven(self, ven_name: str) -> dict[str, Any]:
        """The VEN object named `ven_name`, created when the VTN does not have it yet."""
        found = await self._all("/vens", {"venName": ven_name})
        if found:
            return found[0]
        body: dict[str, Any] = {"venName": ven_name}
        if self.version is OpenAdrVersion.V3_1_0:
            body["objectType"] = "VEN_VEN_REQUEST"
        return await self._create_or_find("/vens", body, lambda: self._all("/vens", {"venName": ven_name}))

    async def register_resource(self, ven_id: str, resource_name: str) -> dict[str, Any]:
        """3.0.1 keeps resources under /vens/{venID}/resources; 3.1 made them first level (/resources)."""
        if self.version is OpenAdrVersion.V3_0_1:
            path, query = f"/vens/{ven_id}/resources", {"resourceName": resource_name}
            body: dict[str, Any] = {"resourceName": resource_name, "venID": ven_id}
        else:
            path, query = "/resources", {"venID": ven_id, "resourceName": resource_name}
            body = {"objectType": "VEN_RESOURCE_REQUEST", "resourceName": resource_name, "venID": ven_id}

        async def lookup() -> list[dict[str, Any]]:
            return [r for r in await self._all(path, query) if r.get("resourceName") == resource_name]

        found = await lookup()
        if found:
            return found[0]
        return await self._create_or_find(path, body, lookup)

    async def _create_or_find(
        self, path: str, body: dict[str, Any], lookup: Callable[[], Awaitable[list[dict[str, Any]]]]
    ) -> dict[str, Any]:
        """POST `body`; a conflict (created meanwhile, by another instance or the VTN operator: 409, or 400 where
        the definition has no 409, as 3.1.0 createVen) is answered by looking the object up again."""
        try:
            return _object(await self.request("POST", path, body=body), f"POST {path}")
        except OpenAdrHttpError as exc:
            if exc.status not in (400, 409):
                raise
            found = await lookup()
            if not found:
                raise
            return found[0]

    async def create_report(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _object(await self.request("POST", "/reports", body=dict(body)), "POST /reports")

    async def subscribe(
        self, client_name: str, program_id: str, callback_url: str, bearer_token: str
    ) -> dict[str, Any]:
        """Ask for event and program notifications at `callback_url` (the VTN checks it with an echo first)."""
        body = {
            "clientName": client_name,
            "programID": program_id,
            "objectOperations": [
                {
                    "objects": ["EVENT", "PROGRAM"],
                    "operations": ["CREATE", "UPDATE", "DELETE"],
                    "callbackUrl": callback_url,
                    "bearerToken": bearer_token,
                }
            ],
        }
        return _object(await self.request("POST", "/subscriptions", body=body), "POST /subscriptions")

    async def unsubscribe(self, subscription_id: str) -> None:
        await self.request("DELETE", f"/subscriptions/{subscription_id}")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise WireError(f"{what}: expected an object with an id")
    return value
