"""`dergw certs ...`: make development certificates and show IEEE 2030.5 identifiers.

This is the one place in the certificate code that reads the clock; the library takes `now` as an argument.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm

from gateway.certs import DEFAULT_SERVER_NAMES, PkiError, init_dev_pki, lfdi, sfdi_from_lfdi


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `certs` command; `gateway.cli` calls this once while building its parser."""
    certs = subparsers.add_parser("certs", help="development certificates and IEEE 2030.5 identifiers")
    actions = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")

    init = actions.add_parser(
        "init",
        help="create a development CA, server, gateway-client and station certificates",
        description="Existing files are kept (new stations are signed by the existing CA) unless --force.",
    )
    init.add_argument("dir", type=Path, help="output directory")
    init.add_argument("--station", action="append", default=[], metavar="ID", help="station identity (repeatable)")
    init.add_argument(
        "--stations-file",
        type=Path,
        metavar="FILE",
        help="file with one station identity per line; blank lines and # comments are ignored",
    )
    init.add_argument(
        "--server-name",
        action="append",
        metavar="NAME",
        help="DNS name or IP address of the OCPP endpoint (repeatable; default: localhost and 127.0.0.1)",
    )
    init.add_argument("--days", type=int, default=825, help="validity in days (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="replace the CA and reissue every certificate")
    init.set_defaults(handler=_init)

    show = actions.add_parser("lfdi", help="print the LFDI and SFDI of a certificate (PEM or DER)")
    show.add_argument("cert", type=Path)
    show.set_defaults(handler=_lfdi)


def _init(args: argparse.Namespace) -> int:
    stations: list[str] = list(args.station)
    try:
        if args.stations_file is not None:
            lines = args.stations_file.read_text(encoding="utf-8").splitlines()
            stations += [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]
        pki = init_dev_pki(
            args.dir,
            stations=stations,
            server_names=args.server_name or DEFAULT_SERVER_NAMES,
            now=datetime.now(UTC),
            days=args.days,
            force=args.force,
        )
    except (OSError, ValueError, PkiError) as exc:
        print(f"dergw certs init: {exc}", file=sys.stderr)
        return 1
    for path in pki.written:
        print(f"wrote {path}")
    kept = [pair.cert for pair in pki.pairs if pair.cert not in pki.written]
    for path in kept:
        print(f"kept {path}")
    if kept:
        print("(existing certificates are kept; --force replaces the CA and reissues them all)")
    return 0


def _lfdi(args: argparse.Namespace) -> int:
    try:
        value = lfdi(args.cert.read_bytes())
    except (OSError, ValueError, UnsupportedAlgorithm) as exc:
        print(f"dergw certs lfdi: {exc}", file=sys.stderr)
        return 1
    print(f"LFDI {value}")
    print(f"SFDI {sfdi_from_lfdi(value)}")
    return 0
