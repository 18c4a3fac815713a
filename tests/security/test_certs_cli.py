"""`dergw certs init|lfdi`, run through a parser built with `register` as gateway.cli will build it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from cryptography import x509

from gateway.certs import cert_common_name, lfdi, sfdi
from gateway.certs_cli import register


def run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="dergw")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    code: int = args.handler(args)
    return code


def test_init_with_stations_file_and_server_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stations_file = tmp_path / "stations.txt"
    stations_file.write_text("# depot A\nCS-A1\n\n  CS-A2  # bay 2\n", encoding="utf-8")
    out = tmp_path / "pki"
    argv: list[str | Path] = [
        "--station",
        "CS-X",
        "--stations-file",
        stations_file,
        "--server-name",
        "gw.example",
    ]
    assert run("certs", "init", out, *argv, "--server-name", "192.0.2.10") == 0
    assert sorted(p.name for p in (out / "stations").glob("*.pem")) == ["CS-A1.pem", "CS-A2.pem", "CS-X.pem"]
    assert cert_common_name((out / "stations" / "CS-A2.pem").read_bytes()) == "CS-A2"
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gw.example"]
    assert f"wrote {out / 'ca.key'}" in capsys.readouterr().out


def test_rerun_keeps_the_ca_and_force_replaces_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "init", tmp_path, "--station", "CS-1") == 0
    ca = (tmp_path / "ca.pem").read_bytes()
    capsys.readouterr()

    assert run("certs", "init", tmp_path, "--station", "CS-2") == 0
    assert (tmp_path / "ca.pem").read_bytes() == ca
    out = capsys.readouterr().out
    assert f"kept {tmp_path / 'ca.pem'}" in out
    assert f"wrote {tmp_path / 'stations' / 'CS-2.pem'}" in out

    assert run("certs", "init", tmp_path, "--force") == 0
    assert (tmp_path / "ca.pem").read_bytes() != ca
    assert "kept" not in capsys.readouterr().out


def test_init_reports_bad_input_with_exit_code_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "init", tmp_path, "--station", "bad/id") == 1
    assert "invalid station id 'bad/id'" in capsys.readouterr().err
    assert run("certs", "init", tmp_path, "--stations-file", tmp_path / "missing.txt") == 1
    assert "missing.txt" in capsys.readouterr().err


def test_lfdi_prints_both_identifiers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "init", tmp_path) == 0
    capsys.readouterr()
    cert = (tmp_path / "gateway-client.pem").read_bytes()
    assert run("certs", "lfdi", tmp_path / "gateway-client.pem") == 0
    assert capsys.readouterr().out == f"LFDI {lfdi(cert)}\nSFDI {sfdi(cert)}\n"


def test_lfdi_of_a_non_certificate_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    assert run("certs", "lfdi", tmp_path / "junk.pem") == 1
    assert capsys.readouterr().err.startswith("dergw certs lfdi: ")
