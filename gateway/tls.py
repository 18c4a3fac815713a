"""TLS contexts for the OCPP endpoint and for the gateway's own outbound connections.

OCPP security profile 2 is server-side TLS (the station authenticates with HTTP Basic); profile 3
adds a client certificate whose CN is the station identity. Both require TLS 1.2 or newer. Everything
here is stdlib `ssl`, so the same contexts work with asyncio, websockets and aiohttp.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

from gateway.certs import cert_common_name


def server_context(cert: Path, key: Path, *, client_ca: Path | None, require_client_cert: bool) -> ssl.SSLContext:
    """Server context: profile 3 (mutual TLS) with `client_ca` and `require_client_cert`, else profile 2.

    With `client_ca` but `require_client_cert=False`, a certificate a client offers is still verified, so a
    station migrating to profile 3 is checked before the requirement is switched on.
    """
    if require_client_cert and client_ca is None:
        raise ValueError("require_client_cert needs client_ca to verify client certificates against")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def client_context(
    ca: Path,
    *,
    cert: Path | None,
    key: Path | None,
    tls12_only: bool = False,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """Client context trusting only `ca` (never the system store) and checking the server's host name.

    `tls12_only` and `ciphers` exist for peers that insist on them, such as IEEE 2030.5 servers that
    accept only TLS 1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (OpenSSL: ECDHE-ECDSA-AES128-CCM8).
    `ciphers` only affects TLS 1.2: OpenSSL configures TLS 1.3 suites separately. `key` may be
    omitted when `cert` holds both.
    """
    if key is not None and cert is None:
        raise ValueError("a client key without a client certificate")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Python 3.13 turns strict X.509 checks on by default; ask for them on every version so behaviour
    # does not depend on the interpreter and our own certificates are proven to pass them.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if tls12_only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def peer_common_name(peer: ssl.SSLObject | ssl.SSLSocket | Mapping[str, object] | None) -> str | None:
    """The CN of the verified peer certificate, from an SSL object or the dict `getpeercert()`
    returns (asyncio's `get_extra_info("peercert")`).

    None when there is no verified certificate or its subject does not hold exactly one CN, so a
    caller comparing the result with a station identity fails closed.
    """
    if isinstance(peer, ssl.SSLObject | ssl.SSLSocket):
        # getpeercert() is non-empty only for a verified certificate; then parse its DER with cryptography.
        der = peer.getpeercert(binary_form=True) if peer.getpeercert() else None
        if der is None:
            return None
        try:
            return cert_common_name(der)
        except ValueError:
            return None
    subject = peer.get("subject") if peer else None
    names = [
        pair[1]
        for rdn in (subject if isinstance(subject, tuple) else ())
        for pair in (rdn if isinstance(rdn, tuple) else ())
        if isinstance(pair, tuple) and len(pair) == 2 and pair[0] == "commonName"
    ]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None
