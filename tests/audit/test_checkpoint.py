"""Checkpoint keys: malformed public keys are refused with the module's own error."""

from __future__ import annotations

import pytest

from gateway.audit.checkpoint import CheckpointError, public_key_from_pem


def test_public_key_with_a_corrupted_algorithm_oid_is_a_checkpoint_error() -> None:
    """Found by the bundle tamper property: a flipped bit in the OID made cryptography raise UnsupportedAlgorithm."""
    pem = (
        b"-----BEGIN PUBLIC KEY-----\n"
        b"MCowBQYDJ2VwAyEAHEussWhX6o/GZbcXTMz45VuJdPONKIMP29hFVbp81Bw=\n"
        b"-----END PUBLIC KEY-----\n"
    )
    with pytest.raises(CheckpointError, match="not a PEM public key"):
        public_key_from_pem(pem)
