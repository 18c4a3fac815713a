"""`dergw iec61850 scl OUT.icd`: write the IED's SCL so a SCADA engineering tool can import it."""

from __future__ import annotations

import argparse
from pathlib import Path

from protocols.iec61850.scl import generate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``iec61850`` with its sub-commands to the ``dergw`` parser."""
    cmd = subparsers.add_parser("iec61850", help="IEC 61850: the fleet as a virtual DER IED")
    actions = cmd.add_subparsers(dest="iec61850_command", required=True, metavar="ACTION")
    scl = actions.add_parser("scl", help="write the IED's SCL (ICD) description")
    scl.add_argument("out", type=Path, metavar="OUT", help="file to write, e.g. dergw.icd")
    scl.add_argument("--ied-name", default="DERGW", help="IED name (default DERGW)")
    scl.add_argument("--ip", default="127.0.0.1", help="IP address for the Communication section")
    scl.set_defaults(handler=_scl)


def _scl(args: argparse.Namespace) -> int:
    args.out.write_bytes(generate(args.ied_name, args.ip))
    print(f"wrote {args.out}")
    return 0
