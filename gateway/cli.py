"""The `dergw` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dergw", description="Utility DER translation gateway")
    parser.add_argument("--version", action="version", version=f"dergw {__version__}")
    parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # pragma: no cover - argparse enforces a sub-command
        parser.print_help()
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
