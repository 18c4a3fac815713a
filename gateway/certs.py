"""Development PKI and IEEE 2030.5 device identifiers.

The gateway talks TLS on both sides: stations dial in with client certificates (OCPP security
profile 3) and the gateway presents its own client certificate to IEEE 2030.5 servers, which know a
device only by the LFDI/SFDI derived from that certificate. This module makes a throw-away CA and the
certificates a developer or a test needs, and computes those identifiers. It never reads the clock:
the caller passes `now`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANIZATION = "DER Gateway Dev"
CA_COMMON_NAME = "DER Gateway Dev CA"
DEFAULT_SERVER_NAMES = ("localhost", "127.0.0.1")
GATEWAY_CLIENT_COMMON_NAME = "der-gateway"

# Backdate notBefore so a peer whose clock runs a little behind still accepts a freshly made certificate.
_CLOCK_SKEW = timedelta(minutes=5)
# OCPP 2.x identifierString character set and the 48-character limit on a charging station identity.
_STATION_ID = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{1,48}")

_DNS_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")

CertSource = x509.Certificate | bytes | str


class PkiError(Exception):
    """The PKI directory is in a state that `init_dev_pki` will not silently repair without `force`."""


@dataclass(frozen=True)
class CertPair:
    """Where one certificate and its private key live."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class DevPki:
    """The files of a development PKI, and which of them this run wrote (the rest were kept)."""

    root: Path
    ca: CertPair
    server: CertPair
    gateway_client: CertPair
    stations: Mapping[str, CertPair]
    written: tuple[Path, ...]

    @property
    def pairs(self) -> tuple[CertPair, ...]:
        """Every certificate/key pair in the directory, CA first."""
        return (self.ca, self.server, self.gateway_client, *self.stations.values())


def dev_pki_layout(out_dir: Path, stations: Iterable[str] = ()) -> DevPki:
    """The paths `init_dev_pki` uses, so readers (config, tests, docs) never spell them out again."""
    return DevPki(
        root=out_dir,
        ca=CertPair(out_dir / "ca.pem", out_dir / "ca.key"),
        server=CertPair(out_dir / "server.pem", out_dir / "server.key"),
        gateway_client=CertPair(out_dir / "gateway-client.pem", out_dir / "gateway-client.key"),
        stations={s: _station_pair(out_dir, s) for s in stations},
        written=(),
    )


def init_dev_pki(
    out_dir: Path,
    *,
    stations: Sequence[str],
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    now: datetime,
    days: int = 825,
    curve: ec.EllipticCurve | None = None,
    force: bool = False,
) -> DevPki:
    """Create (or complete) a development CA with server, gateway-client and per-station certificates.

    Re-running is safe: existing files are kept and new stations are signed by the existing CA.
    `force` replaces the CA and reissues every certificate in the directory, including stations issued
    earlier, so no file is left signed by a CA that no longer exists. Without `force`, a half-present
    key pair, a certificate the CA did not issue, or an expired CA raises `PkiError` and nothing is
    written.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if days <= 0:
        raise ValueError("days must be positive")
    if not server_names:
        raise ValueError("at least one server name is needed")
    for station in stations:
        check_station_id(station)
    curve = curve or ec.SECP256R1()

    existing = sorted(p.stem for p in (out_dir / "stations").glob("*.pem"))
    layout = dev_pki_layout(out_dir, dict.fromkeys([*existing, *stations]))
    client_auth = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    leaves: list[tuple[CertPair, x509.Name, x509.ExtendedKeyUsage, list[x509.GeneralName]]] = [
        (
            layout.server,
            _name(server_names[0]),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            [_general_name(n) for n in server_names],
        ),
        (layout.gateway_client, _name(GATEWAY_CLIENT_COMMON_NAME), client_auth, []),
    ]
    leaves += [(pair, _name(station), client_auth, []) for station, pair in layout.stations.items()]

    # Check everything already on disk before writing anything, so a refusal leaves the directory as it was.
    ca = None if force else _load_pair(layout.ca)
    kept = {pair: None if force else _load_pair(pair) for pair, *_ in leaves}
    for pair, existing_leaf in kept.items():
        if existing_leaf is not None:
            _check_issued_by(pair.cert, existing_leaf[0], ca[0] if ca else None)
    if ca is not None and ca[0].not_valid_after_utc <= now:
        raise PkiError(f"{layout.ca.cert} expired at {ca[0].not_valid_after_utc}; rerun with force")

    (out_dir / "stations").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if ca is None:
        ca = _issue_ca(curve, now, days)
        written += _write_pair(layout.ca, ca)
    ca_cert, ca_key = ca
    for pair, subject, eku, sans in leaves:
        if kept[pair] is None:
            key = ec.generate_private_key(curve)
            cert = _issue_leaf(subject, key.public_key(), eku, sans, ca_cert, ca_key, now, days)
            written += _write_pair(pair, (cert, key))

    return DevPki(
        root=layout.root,
        ca=layout.ca,
        server=layout.server,
        gateway_client=layout.gateway_client,
        stations=layout.stations,
        written=tuple(written),
    )


def _station_pair(out_dir: Path, station: str) -> CertPair:
    return CertPair(out_dir / "stations" / f"{station}.pem", out_dir / "stations" / f"{station}.key")


def check_station_id(station: str) -> str:
    """Reject identities OCPP would not accept, which also keeps them safe as file names."""
    if not _STATION_ID.fullmatch(station):
        raise ValueError(f"invalid station id {station!r}: 1-48 characters of A-Z a-z 0-9 * - _ = : + | @ .")
    return station


def load_certificate(source: CertSource) -> x509.Certificate:
    """Accept a parsed certificate, DER bytes, or PEM text/bytes (the first certificate of a chain)."""
    if isinstance(source, x509.Certificate):
        return source
    data = source.encode("ascii") if isinstance(source, str) else source
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def lfdi(cert: CertSource) -> str:
    """IEEE 2030.5 long-form device identifier: the left 160 bits of SHA-256 over the DER, in hex."""
    der = load_certificate(cert).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()[:40].upper()


def sfdi(cert: CertSource) -> int:
    """IEEE 2030.5 short-form device identifier of a certificate (see `sfdi_from_lfdi`)."""
    return sfdi_from_lfdi(lfdi(cert))


def sfdi_from_lfdi(lfdi_hex: str) -> int:
    """The left 36 bits of the LFDI in decimal, then a check digit making the digit sum a multiple of
    10, so a single mistyped digit is caught when a person enters the SFDI into a utility portal."""
    if not re.fullmatch(r"[0-9A-Fa-f]{40}", lfdi_hex):
        raise ValueError(f"LFDI must be 40 hexadecimal characters, got {lfdi_hex!r}")
    value = int(lfdi_hex[:9], 16)
    check = -sum(int(d) for d in str(value)) % 10
    return value * 10 + check


def cert_common_name(cert: CertSource) -> str:
    """The subject CN, which OCPP security profile 3 ties to the station identity; ambiguity is an error."""
    names = load_certificate(cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise ValueError(f"certificate subject has {len(names)} common names, expected exactly one")
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        if not _DNS_NAME.fullmatch(name):
            raise ValueError(f"server name {name!r} is neither an IP address nor an ASCII DNS name") from None
        return x509.DNSName(name)


def _issue_ca(curve: ec.EllipticCurve, now: datetime, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(curve)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # A key-derived suffix keeps two dev CAs apart in trust stores and errors, which match issuers by name.
    name = _name(f"{CA_COMMON_NAME} {ski.digest[:4].hex()}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    builder = builder.not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + timedelta(days=days))
    return builder.sign(key, hashes.SHA256()), key


def _issue_leaf(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    eku: x509.ExtendedKeyUsage,
    sans: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime,
    days: int,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(eku, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    # A leaf never outlives its CA: stations added to an old CA would otherwise fail later, confusingly.
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = builder.not_valid_before(now - _CLOCK_SKEW).not_valid_after(not_after)
    return builder.sign(ca_key, hashes.SHA256())


def _load_pair(pair: CertPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """Load an existing pair; None when neither file exists, PkiError when one is missing or they
    do not match."""
    present = [p.exists() for p in (pair.cert, pair.key)]
    if not any(present):
        return None
    if not all(present):
        missing = pair.key if present[0] else pair.cert
        raise PkiError(f"{missing} is missing while its partner exists; rerun with force to reissue")
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{pair.key} is not the EC private key of {pair.cert}; rerun with force to reissue")
    return cert, key


def _check_issued_by(path: Path, cert: x509.Certificate, ca_cert: x509.Certificate | None) -> None:
    if ca_cert is None:
        raise PkiError(f"{path} exists but its CA does not; rerun with force to reissue")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PkiError(f"{path} was not issued by the CA in this directory; rerun with force") from exc


def _write_pair(pair: CertPair, issued: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> list[Path]:
    cert, key = issued
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_file(pair.key, key_pem, 0o600)
    _write_file(pair.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return [pair.cert, pair.key]


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write via a new file renamed into place: a key is never readable by others, not even for an
    instant, and a crash never leaves half a PEM behind. fchmod because os.open's mode is cut by umask."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)
    os.replace(tmp, path)
