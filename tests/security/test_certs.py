"""The development PKI on disk and the IEEE 2030.5 identifiers, without sockets."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from gateway.certs import (
    CA_COMMON_NAME,
    ORGANIZATION,
    DevPki,
    PkiError,
    cert_common_name,
    check_station_id,
    init_dev_pki,
    lfdi,
    load_certificate,
    sfdi,
    sfdi_from_lfdi,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _snapshot(pki: DevPki) -> dict[Path, bytes]:
    return {p: p.read_bytes() for pair in pki.pairs for p in (pair.cert, pair.key)}


@pytest.fixture
def pki(tmp_path: Path) -> DevPki:
    return init_dev_pki(tmp_path / "pki", stations=["CS-001", "CS-002"], now=NOW)


def test_writes_the_documented_layout(pki: DevPki) -> None:
    root = pki.root
    expected = {"ca", "server", "gateway-client", "stations/CS-001", "stations/CS-002"}
    assert {str(p.relative_to(root).with_suffix("")) for p in pki.written} == expected
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "ca.key",
        "ca.pem",
        "gateway-client.key",
        "gateway-client.pem",
        "server.key",
        "server.pem",
        "stations",
        "stations/CS-001.key",
        "stations/CS-001.pem",
        "stations/CS-002.key",
        "stations/CS-002.pem",
    ]


def test_ca_is_a_ca_and_signs_every_leaf(pki: DevPki) -> None:
    ca = _cert(pki.ca.cert)
    assert cert_common_name(ca).startswith(CA_COMMON_NAME + " ")
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    for pair in pki.pairs[1:]:
        leaf = _cert(pair.cert)
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert leaf.not_valid_before_utc == NOW - timedelta(minutes=5)
        assert leaf.not_valid_after_utc == NOW + timedelta(days=825)


def test_station_certificate_names_the_station_for_profile_3(pki: DevPki) -> None:
    cert = _cert(pki.stations["CS-001"].cert)
    assert cert_common_name(cert) == "CS-001"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORGANIZATION
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_server_certificate_carries_dns_and_ip_names(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path, stations=[], server_names=["gw.example", "::1", "10.0.0.7"], now=NOW)
    cert = _cert(pki.server.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["::1", "10.0.0.7"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_gateway_client_certificate_is_for_client_auth(pki: DevPki) -> None:
    cert = _cert(pki.gateway_client.cert)
    assert cert_common_name(cert) == "der-gateway"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_keys_are_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        pki = init_dev_pki(tmp_path, stations=["CS-001"], now=NOW)
    finally:
        os.umask(old)
    for pair in pki.pairs:
        assert stat.S_IMODE(pair.key.stat().st_mode) == 0o600
        assert stat.S_IMODE(pair.cert.stat().st_mode) == 0o644
    assert not list(tmp_path.rglob(".*.tmp"))


def test_curve_is_configurable(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path, stations=["CS-001"], now=NOW, curve=ec.SECP384R1())
    key = serialization.load_pem_private_key(pki.stations["CS-001"].key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp384r1"


def test_second_init_keeps_files_and_signs_new_stations_with_the_same_ca(pki: DevPki) -> None:
    before = _snapshot(pki)
    again = init_dev_pki(pki.root, stations=["CS-002", "CS-003"], now=NOW + timedelta(days=1))
    assert again.written == (again.stations["CS-003"].cert, again.stations["CS-003"].key)
    assert set(again.stations) == {"CS-001", "CS-002", "CS-003"}
    assert {p: p.read_bytes() for p in before} == before
    _cert(again.stations["CS-003"].cert).verify_directly_issued_by(_cert(pki.ca.cert))


def test_force_replaces_the_ca_and_reissues_stations_already_there(pki: DevPki) -> None:
    before = _snapshot(pki)
    again = init_dev_pki(pki.root, stations=[], now=NOW, force=True)
    assert set(again.written) == set(before)
    assert all(p.read_bytes() != data for p, data in before.items())
    ca = _cert(again.ca.cert)
    for pair in again.pairs[1:]:
        _cert(pair.cert).verify_directly_issued_by(ca)


def test_stations_without_their_ca_are_not_silently_orphaned(pki: DevPki) -> None:
    pki.ca.cert.unlink()
    pki.ca.key.unlink()
    with pytest.raises(PkiError, match="exists but its CA does not"):
        init_dev_pki(pki.root, stations=[], now=NOW)
    assert not pki.ca.cert.exists()


def test_half_a_key_pair_is_not_silently_replaced(pki: DevPki) -> None:
    pki.ca.key.unlink()
    with pytest.raises(PkiError, match=r"ca\.key is missing"):
        init_dev_pki(pki.root, stations=[], now=NOW)
    init_dev_pki(pki.root, stations=[], now=NOW, force=True)
    assert pki.ca.key.exists()


def test_mismatched_key_is_refused(pki: DevPki) -> None:
    shutil.copy(pki.stations["CS-002"].key, pki.stations["CS-001"].key)
    with pytest.raises(PkiError, match="is not the EC private key"):
        init_dev_pki(pki.root, stations=[], now=NOW)


def test_certificate_from_another_ca_is_refused(pki: DevPki, tmp_path: Path) -> None:
    other = init_dev_pki(tmp_path / "other", stations=["CS-009"], now=NOW)
    for path in (other.stations["CS-009"].cert, other.stations["CS-009"].key):
        shutil.copy(path, pki.root / "stations")
    with pytest.raises(PkiError, match="not issued by the CA"):
        init_dev_pki(pki.root, stations=[], now=NOW)


def test_expired_ca_is_refused_rather_than_issuing_dead_certificates(tmp_path: Path) -> None:
    init_dev_pki(tmp_path, stations=[], now=NOW, days=1)
    with pytest.raises(PkiError, match="expired"):
        init_dev_pki(tmp_path, stations=["CS-001"], now=NOW + timedelta(days=2))


def test_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path, stations=[], now=NOW, days=10)
    later = init_dev_pki(tmp_path, stations=["CS-001"], now=NOW + timedelta(days=5))
    ca_end = _cert(pki.ca.cert).not_valid_after_utc
    assert _cert(later.stations["CS-001"].cert).not_valid_after_utc == ca_end


@pytest.mark.parametrize("station", ["", "a/b", "../x", "CS 1", "x" * 49, "é"])
def test_invalid_station_ids_are_rejected(tmp_path: Path, station: str) -> None:
    with pytest.raises(ValueError, match="invalid station id"):
        init_dev_pki(tmp_path, stations=[station], now=NOW)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("station", ["CS-001", "a*b@c.d", "x" * 48, "site:7|evse=2+"])
def test_ocpp_identifier_strings_are_accepted(station: str) -> None:
    assert check_station_id(station) == station


@pytest.mark.parametrize("name", ["", "gw example", "é.example", "-gw"])
def test_invalid_server_names_are_rejected_before_anything_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="server name"):
        init_dev_pki(tmp_path, stations=["CS-001"], server_names=["localhost", name], now=NOW)
    assert not list(tmp_path.iterdir())


def test_naive_time_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        init_dev_pki(tmp_path, stations=[], now=NOW.replace(tzinfo=None))


def test_sfdi_matches_the_ieee_2030_5_worked_example() -> None:
    # IEEE 2030.5-2018 §6.3.3 worked example, as reproduced in bsgip/envoy
    # tests/unit/server/crud/test_common.py ("From 2030.5 standard example"). 16726121139 is the left 36 bits
    # of the LFDI in decimal; the standard's SFDI appends the check digit 1 (digit sum 39 + 1 = 40).
    assert sfdi_from_lfdi("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5") == 167261211391
    assert sfdi_from_lfdi("3e4f45ab31edfe5b67e343e5e4562e31984e23e5") == 167261211391


def test_lfdi_is_the_truncated_sha256_fingerprint_whatever_the_encoding(pki: DevPki) -> None:
    cert = _cert(pki.stations["CS-001"].cert)
    expected = cert.fingerprint(hashes.SHA256()).hex().upper()[:40]
    pem = pki.stations["CS-001"].cert.read_bytes()
    der = cert.public_bytes(serialization.Encoding.DER)
    assert {lfdi(cert), lfdi(pem), lfdi(pem.decode()), lfdi(der)} == {expected}
    assert sfdi(der) == sfdi_from_lfdi(expected)
    assert load_certificate(der) == cert


@pytest.mark.parametrize("bad", ["", "3E4F45AB31", "G" * 40, "3E4F45AB31EDFE5B67E343E5E4562E31984E23E5FF"])
def test_sfdi_rejects_malformed_lfdi(bad: str) -> None:
    with pytest.raises(ValueError, match="40 hexadecimal"):
        sfdi_from_lfdi(bad)


@given(st.binary(min_size=20, max_size=20), st.data())
def test_sfdi_check_digit_property(raw: bytes, data: st.DataObject) -> None:
    lfdi_hex = raw.hex()
    value = sfdi_from_lfdi(lfdi_hex)
    digits = str(value)
    assert len(digits) <= 12
    assert sum(map(int, digits)) % 10 == 0
    assert value // 10 == int(lfdi_hex[:9], 16)
    # Any single mistyped digit is caught.
    position = data.draw(st.integers(0, len(digits) - 1))
    typo = data.draw(st.sampled_from([d for d in "0123456789" if d != digits[position]]))
    mistyped = digits[:position] + typo + digits[position + 1 :]
    assert sum(map(int, mistyped)) % 10 != 0


def test_common_name_must_be_unambiguous() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "CS-001"), x509.NameAttribute(NameOID.COMMON_NAME, "CS-002")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(ValueError, match="2 common names"):
        cert_common_name(cert)
