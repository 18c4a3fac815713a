"""Signed checkpoints (tree heads) and the Ed25519 key that signs them.

A checkpoint's signed body is plain text whose first three lines follow the C2SP tlog-checkpoint layout
(origin, tree size, base64 root) followed by one line with the signing time::

    dergw
    1234
    3q2+7w...=
    2025-06-01T12:00:00.000Z

The private key is PKCS#8 PEM in ``<key_dir>/audit-ed25519.key`` (0600, created when missing); the
public key is SubjectPublicKeyInfo PEM in ``audit-ed25519.pub``, so ``openssl`` can check signatures.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.merkle import HASH_SIZE

__all__ = [
    "KEY_FILE",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "checkpoint_body",
    "key_fingerprint",
    "load_public_key",
    "public_key_from_pem",
    "public_key_pem",
]

KEY_FILE = "audit-ed25519.key"
PUBLIC_KEY_FILE = "audit-ed25519.pub"


class CheckpointError(ValueError):
    """A key or checkpoint that cannot be used."""


def checkpoint_body(origin: str, tree_size: int, root: bytes, time: str) -> bytes:
    """The exact bytes an Ed25519 checkpoint signature covers."""
    if not origin or "\n" in origin or "\n" in time:
        raise CheckpointError("origin and time must be non-empty single lines")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n{time}\n".encode()


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: what an auditor compares or pins."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:  # a flipped bit in the algorithm OID gives the latter
        raise CheckpointError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("public key is not Ed25519")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a trusted public key: a ``.pub`` PEM file, or the key directory that holds one."""
    if path.is_dir():
        path = path / PUBLIC_KEY_FILE
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read public key {path}: {exc.strerror}") from exc
    return public_key_from_pem(pem)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: the log ``origin`` held ``tree_size`` entries with Merkle ``root`` at ``time``."""

    origin: str
    tree_size: int
    root: bytes
    time: str
    signature: bytes

    def body(self) -> bytes:
        return checkpoint_body(self.origin, self.tree_size, self.root, self.time)

    def verify(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, self.body())
        except (InvalidSignature, CheckpointError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "time": self.time,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Checkpoint:
        if set(raw) != {"origin", "tree_size", "root", "time", "signature"}:
            raise CheckpointError("checkpoint has wrong or missing fields")
        origin, size, root, time, sig = (
            raw["origin"],
            raw["tree_size"],
            raw["root"],
            raw["time"],
            raw["signature"],
        )
        if not (isinstance(origin, str) and isinstance(time, str) and isinstance(root, str)):
            raise CheckpointError("checkpoint origin, time and root must be strings")
        if type(size) is not int or size < 0 or not isinstance(sig, str):
            raise CheckpointError("checkpoint tree_size or signature malformed")
        try:
            root_bytes = bytes.fromhex(root)
            sig_bytes = base64.b64decode(sig, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise CheckpointError(f"checkpoint encoding: {exc}") from exc
        if len(root_bytes) != HASH_SIZE or root != root_bytes.hex():
            raise CheckpointError("checkpoint root must be 32 bytes of lowercase hex")
        return cls(origin, size, root_bytes, time, sig_bytes)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (no window with looser permissions)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class Signer:
    """Holds the private key; loads it from the key directory or creates it there when missing."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()

    @classmethod
    def load(cls, key_dir: Path) -> Signer:
        path = key_dir / KEY_FILE
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise CheckpointError(f"cannot read audit signing key {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CheckpointError(f"{path} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path} is not an Ed25519 key")
        signer = cls(key)
        pub_path = key_dir / PUBLIC_KEY_FILE
        if pub_path.exists():
            if load_public_key(pub_path) != signer.public_key:
                raise CheckpointError(f"{pub_path} does not belong to {path}")
        else:
            with contextlib.suppress(FileExistsError):  # another process wrote it first
                _write_new(pub_path, public_key_pem(signer.public_key), 0o644)
        return signer

    @classmethod
    def load_or_create(cls, key_dir: Path) -> Signer:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = key_dir / KEY_FILE
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            with contextlib.suppress(FileExistsError):  # lost a creation race: use the winner's key
                _write_new(path, pem, 0o600)
        return cls.load(key_dir)

    def sign_bytes(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def sign(self, origin: str, tree_size: int, root: bytes, time: str) -> Checkpoint:
        signature = self._key.sign(checkpoint_body(origin, tree_size, root, time))
        return Checkpoint(origin, tree_size, root, time, signature)
