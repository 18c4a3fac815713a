"""Security profile 3: wss with a client certificate, against a CSMS that requires one."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.exceptions import InvalidMessage

from protocols.ocpp.simulator import SimStation
from tests.simulator.csms import MiniCsms


def _issue(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False, ip: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    cert_file, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, tuple[str, str]]:
    ca_cert, ca_key = _issue("Test CA", None, ca=True)
    issuer = (ca_cert.subject, ca_key)
    return {
        "ca": _write(tmp_path / "ca", ca_cert, ca_key),
        "server": _write(tmp_path / "server", *_issue("csms", issuer, ip=True)),
        "client": _write(tmp_path / "client", *_issue("CS-TLS", issuer)),
    }


async def test_profile_3_client_certificate(pki: dict[str, tuple[str, str]]) -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca"][0])
    server.load_cert_chain(*pki["server"])
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=pki["ca"][0])
    client.load_cert_chain(*pki["client"])
    async with MiniCsms(ssl=server) as csms:
        assert csms.url.startswith("wss://")
        station = SimStation(csms.url, "CS-TLS", ssl=client)
        await station.start()
        assert csms.booted["CS-TLS"] == 1
        await station.stop()
        without_cert = SimStation(csms.url, "CS-NOCERT", ssl=ssl.create_default_context(cafile=pki["ca"][0]))
        with pytest.raises((OSError, InvalidMessage)):  # TLS 1.3 refuses after the handshake
            await without_cert.start()
        await without_cert.stop()
