"""Station credentials: identity rules (part 4, 3.1.1) and HTTP Basic passwords stored as scrypt hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

#: identifierString without ':' (the Basic auth separator), at most 48 characters (OCPP-J part 4, 3.1.1).
_IDENTITY = re.compile(r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")

_N, _R, _P = 2**14, 8, 1


def valid_identity(station_id: str) -> bool:
    return bool(_IDENTITY.fullmatch(station_id))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64): what the configuration stores instead of the password."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string; False for malformed hashes."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        candidate = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(digest))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(candidate, digest)


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an `Authorization: Basic ...` header, None if absent or malformed."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
