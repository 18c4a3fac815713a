"""HTTPS transport to a 2030.5 server: mutual TLS, conditional GETs, bounded bodies, precise transport errors."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
from multidict import CIMultiDict

from protocols.ieee2030_5.errors import TransportError
from protocols.ieee2030_5.safexml import MAX_DOCUMENT_BYTES

CONTENT_TYPE = "application/sep+xml"


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Validator:
    etag: str | None
    last_modified: str | None
    body: bytes


class Client:
    """One server, one session. Remembers ETag/Last-Modified per URL and sends them back (RFC 9110 conditional
    requests); a 304 returns the body kept from the last 200, so callers see the same document either way."""

    def __init__(self, base_url: str, context: ssl.SSLContext, *, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self._context = context
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._validators: dict[str, _Validator] = {}
        #: Requests answered 304 (for tests and health detail).
        self.not_modified = 0

    def url(self, href: str, query: str = "") -> str:
        full = urljoin(self.base_url + "/", href.lstrip("/")) if not href.startswith("http") else href
        return f"{full}?{query}" if query else full

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context), timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, href: str, query: str = "") -> Fetched:
        url = self.url(href, query)
        headers = {"Accept": CONTENT_TYPE}
        cached = self._validators.get(url)
        if cached is not None:
            if cached.etag:
                headers["If-None-Match"] = cached.etag
            if cached.last_modified:
                headers["If-Modified-Since"] = cached.last_modified
        status, body, resp_headers = await self._request("GET", url, headers=headers)
        if status == 304 and cached is not None:
            self.not_modified += 1
            return Fetched(url, cached.body)
        etag, modified = resp_headers.get("ETag"), resp_headers.get("Last-Modified")
        if etag or modified:
            self._validators[url] = _Validator(etag, modified, body)
        return Fetched(url, body)

    async def post(self, href: str, body: bytes) -> str | None:
        """POST a document; returns the Location of what the server created, if it says."""
        _, _, headers = await self._request("POST", self.url(href), body=body)
        return headers.get("Location")

    async def put(self, href: str, body: bytes) -> None:
        await self._request("PUT", self.url(href), body=body)

    async def _request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[int, bytes, CIMultiDict[str]]:
        send = dict(headers or {})
        if body is not None:
            send["Content-Type"] = CONTENT_TYPE
        try:
            async with self._sess().request(method, url, headers=send, data=body, allow_redirects=False) as resp:
                data = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise TransportError(
                        "http.too_large", f"{method} {url}: body exceeds {MAX_DOCUMENT_BYTES} bytes", status=resp.status
                    )
                if resp.status >= 400:
                    kind = "http.4xx" if resp.status < 500 else "http.5xx"
                    reason = data[:200].decode("utf-8", "replace").strip()
                    raise TransportError(
                        kind, f"{method} {url}: HTTP {resp.status} {resp.reason}: {reason}", status=resp.status
                    )
                return resp.status, data, CIMultiDict(resp.headers)
        except TimeoutError:
            raise TransportError("http.timeout", f"{method} {url}: no answer within {self._timeout.total} s") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TransportError("tls.certificate", f"{method} {url}: server certificate refused: {exc}") from None
        except aiohttp.ClientSSLError as exc:
            raise TransportError("tls.handshake", f"{method} {url}: TLS failed: {exc}") from None
        except aiohttp.ClientConnectionError as exc:
            raise TransportError("http.connect", f"{method} {url}: {exc.__class__.__name__}: {exc}") from None
