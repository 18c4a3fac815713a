"""TLS contexts over real sockets on 127.0.0.1: OCPP security profiles 2 and 3, and the client side."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.certs import DevPki, init_dev_pki
from gateway.tls import client_context, peer_common_name, server_context

STATION = "CS-001"
REFUSED = (ssl.SSLError, ConnectionError)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    # OpenSSL checks validity against the real clock, so these certificates are issued now.
    return init_dev_pki(tmp_path_factory.mktemp("pki"), stations=[STATION], now=datetime.now(UTC))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """An unrelated CA that happens to issue the same names."""
    return init_dev_pki(tmp_path_factory.mktemp("other"), stations=[STATION], now=datetime.now(UTC))


@dataclass
class Server:
    port: int
    accepted: list[tuple[str | None, str | None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve(context: ssl.SSLContext) -> AsyncIterator[Server]:
    """A TLS server that answers each connection with the client's CN and the TLS version, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        from_object = peer_common_name(ssl_object)
        from_dict = peer_common_name(writer.get_extra_info("peercert"))
        state.accepted.append((from_object, from_dict))
        writer.write(f"{from_object} {ssl_object.version()} {ssl_object.cipher()[0]}\n".encode())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state = Server(port=server.sockets[0].getsockname()[1])
    async with server:
        yield state


async def exchange(server: Server, context: ssl.SSLContext, hostname: str = "localhost") -> list[str]:
    """Connect, read the server's one-line answer; TLS refusals surface as ssl.SSLError/ConnectionError."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context, server_hostname=hostname)
    try:
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(*REFUSED):
            await writer.wait_closed()
    if not line:
        raise ConnectionError("closed without an answer")
    return line.decode().split()


def profile3(pki: DevPki) -> ssl.SSLContext:
    return server_context(pki.server.cert, pki.server.key, client_ca=pki.ca.cert, require_client_cert=True)


def station_client(pki: DevPki, trust: Path, *, tls12_only: bool = False) -> ssl.SSLContext:
    pair = pki.stations[STATION]
    return client_context(trust, cert=pair.cert, key=pair.key, tls12_only=tls12_only)


@pytest.mark.parametrize("tls12_only", [False, True], ids=["tls1.3", "tls1.2"])
async def test_mutual_tls_accepts_a_station_and_reads_its_cn(pki: DevPki, tls12_only: bool) -> None:
    async with serve(profile3(pki)) as server:
        cn, version, _ = await exchange(server, station_client(pki, pki.ca.cert, tls12_only=tls12_only))
    assert cn == STATION
    assert version == ("TLSv1.2" if tls12_only else "TLSv1.3")
    assert server.accepted == [(STATION, STATION)]


@pytest.mark.parametrize("tls12_only", [False, True], ids=["tls1.3", "tls1.2"])
async def test_mutual_tls_refuses_a_client_without_certificate(pki: DevPki, tls12_only: bool) -> None:
    async with serve(profile3(pki)) as server:
        with pytest.raises(REFUSED):
            await exchange(server, client_context(pki.ca.cert, cert=None, key=None, tls12_only=tls12_only))
    assert server.accepted == []


@pytest.mark.parametrize("tls12_only", [False, True], ids=["tls1.3", "tls1.2"])
async def test_mutual_tls_refuses_a_certificate_from_another_ca(
    pki: DevPki, other_pki: DevPki, tls12_only: bool
) -> None:
    async with serve(profile3(pki)) as server:
        with pytest.raises(REFUSED):
            await exchange(server, station_client(other_pki, pki.ca.cert, tls12_only=tls12_only))
    assert server.accepted == []


async def test_server_certificate_cannot_serve_as_a_station_certificate(pki: DevPki) -> None:
    # Same CA, but the EKU says serverAuth only: a leaked server key does not let anyone pose as a station.
    context = client_context(pki.ca.cert, cert=pki.server.cert, key=pki.server.key)
    async with serve(profile3(pki)) as server:
        with pytest.raises(REFUSED):
            await exchange(server, context)
    assert server.accepted == []


async def test_profile_2_accepts_a_client_without_certificate(pki: DevPki) -> None:
    context = server_context(pki.server.cert, pki.server.key, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        cn, _, _ = await exchange(server, client_context(pki.ca.cert, cert=None, key=None))
    assert cn == "None"
    assert server.accepted == [(None, None)]


async def test_optional_client_certificate_is_still_verified(pki: DevPki, other_pki: DevPki) -> None:
    context = server_context(pki.server.cert, pki.server.key, client_ca=pki.ca.cert, require_client_cert=False)
    async with serve(context) as server:
        cn, _, _ = await exchange(server, station_client(pki, pki.ca.cert))
        with pytest.raises(REFUSED):
            await exchange(server, station_client(other_pki, pki.ca.cert, tls12_only=True))
    assert cn == STATION


async def test_client_refuses_a_server_signed_by_another_ca(pki: DevPki, other_pki: DevPki) -> None:
    async with serve(profile3(pki)) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await exchange(server, station_client(pki, other_pki.ca.cert))
    assert server.accepted == []


async def test_client_refuses_a_station_certificate_posing_as_server(pki: DevPki) -> None:
    # Every station holds a certificate from this CA; its clientAuth-only EKU keeps it from posing as CSMS.
    pair = pki.stations[STATION]
    context = server_context(pair.cert, pair.key, client_ca=None, require_client_cert=False)
    async with serve(context) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="unsuitable certificate purpose"):
            await exchange(server, client_context(pki.ca.cert, cert=None, key=None), hostname=STATION)


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
async def test_hostname_matches_dns_and_ip_names(pki: DevPki, hostname: str) -> None:
    async with serve(profile3(pki)) as server:
        cn, _, _ = await exchange(server, station_client(pki, pki.ca.cert), hostname=hostname)
    assert cn == STATION


@pytest.mark.parametrize("hostname", ["gateway.example", "127.0.0.2"])
async def test_hostname_mismatch_is_refused(pki: DevPki, hostname: str) -> None:
    async with serve(profile3(pki)) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await exchange(server, station_client(pki, pki.ca.cert), hostname=hostname)


async def test_gateway_client_speaks_the_ieee_2030_5_suite(pki: DevPki) -> None:
    # IEEE 2030.5 servers expect TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 over P-256 certificates.
    suite = "ECDHE-ECDSA-AES128-CCM8"
    utility_server = profile3(pki)
    utility_server.set_ciphers(suite)
    pair = pki.gateway_client
    context = client_context(pki.ca.cert, cert=pair.cert, key=pair.key, tls12_only=True, ciphers=suite)
    async with serve(utility_server) as server:
        assert await exchange(server, context) == ["der-gateway", "TLSv1.2", suite]


def test_both_contexts_require_tls_1_2_or_newer(pki: DevPki) -> None:
    assert profile3(pki).minimum_version == ssl.TLSVersion.TLSv1_2
    assert station_client(pki, pki.ca.cert).minimum_version == ssl.TLSVersion.TLSv1_2


def test_inconsistent_arguments_are_rejected(pki: DevPki) -> None:
    with pytest.raises(ValueError, match="needs client_ca"):
        server_context(pki.server.cert, pki.server.key, client_ca=None, require_client_cert=True)
    with pytest.raises(ValueError, match="without a client certificate"):
        client_context(pki.ca.cert, cert=None, key=pki.server.key)


@pytest.mark.parametrize(
    ("peercert", "expected"),
    [
        (None, None),
        ({}, None),
        ({"subject": ((("organizationName", "DER Gateway Dev"),), (("commonName", "CS-7"),))}, "CS-7"),
        ({"subject": ((("commonName", "CS-7"),), (("commonName", "CS-8"),))}, None),
        ({"subject": ((("organizationName", "DER Gateway Dev"),),)}, None),
        ({"subject": "garbage"}, None),
    ],
)
def test_peer_common_name_from_getpeercert_dict(peercert: dict[str, object] | None, expected: str | None) -> None:
    assert peer_common_name(peercert) == expected
