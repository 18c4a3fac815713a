"""`dergw audit export|verify|show|report` and `dergw bench audit`.

``register`` and ``register_bench`` hang these under the main ``dergw`` parser; each sub-command sets
``handler`` (args -> exit code). Exit codes: 0 success, 1 verification failed or nothing found,
2 unusable input (missing file, bad key, bad option).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit.bench import run_bench
from gateway.audit.bundle import ExportError, ExportFilter, export_bundle, verify_bundle
from gateway.audit.checkpoint import CheckpointError, load_public_key
from gateway.audit.entry import Kind, parse_time
from gateway.audit.log import connect, directive_trail, select_entries
from gateway.audit.report import build_report
from gateway.audit.verify import verify_db
from gateway.progress import Progress, wanted

__all__ = ["main", "register", "register_bench"]

DEFAULT_DB = Path("data/dergw.sqlite")
DEFAULT_KEYS = Path("certs")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite database (default {DEFAULT_DB})")


def _add_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=Path,
        default=DEFAULT_KEYS,
        help=f"directory of audit-ed25519.key/.pub (default {DEFAULT_KEYS}/)",
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_time, help="from this time on (ISO 8601; naive means UTC)")
    parser.add_argument("--until", type=_time, help="before this time (ISO 8601; naive means UTC)")
    parser.add_argument("--station", help="only entries about this station id")
    parser.add_argument("--directive", help="only this directive's trail: its entries, signals and answers")


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show entries done / total and the rate on stderr (the default when stderr is a terminal)",
    )


def _progress(args: argparse.Namespace, label: str) -> Progress | None:
    return Progress(label) if wanted(args.progress) else None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` with its sub-commands to the ``dergw`` parser."""
    audit = subparsers.add_parser(
        "audit",
        help="export, verify and query the tamper-evident audit log",
        description="Export, verify and query the audit log. Exit codes: 0 success, 1 verification"
        " failed or nothing found, 2 unusable input. The format is described in docs/audit.md.",
    )
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    export = actions.add_parser("export", help="write a self-contained, offline-verifiable bundle")
    _add_db(export)
    _add_keys(export)
    _add_filters(export)
    _add_progress(export)
    export.add_argument("out", type=Path, metavar="OUT", help="bundle file to write (a ZIP archive)")
    export.set_defaults(handler=_export)

    verify = actions.add_parser("verify", help="check every hash, signature and sequence number offline")
    _add_keys(verify)
    verify.add_argument("--pubkey", type=Path, help="trusted public key PEM (pins the key a bundle must use)")
    _add_progress(verify)
    verify.add_argument("path", type=Path, metavar="BUNDLE_OR_DB", help="an export bundle or an audit database")
    verify.set_defaults(handler=_verify)

    show = actions.add_parser("show", help="print entries by directive, station, kind and time")
    _add_db(show)
    _add_filters(show)
    show.add_argument("--kind", choices=[k.value for k in Kind], help="only entries of this kind")
    show.add_argument("--limit", type=int, help="at most this many entries")
    show.add_argument("--json", action="store_true", help="print the canonical entries as JSON Lines")
    show.set_defaults(handler=_show)

    report = actions.add_parser("report", help="compliance summary of one directive")
    _add_db(report)
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument("directive", metavar="DIRECTIVE", help="directive id")
    report.set_defaults(handler=_report)


def register_bench(bench_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` under ``dergw bench``."""
    bench = bench_subparsers.add_parser("audit", help="append and verify rates of the audit log")
    bench.add_argument("--entries", type=int, default=50_000, help="entries appended in batches")
    bench.add_argument("--batch", type=int, default=500, help="entries per transaction")
    bench.add_argument("--single", type=int, default=500, help="entries appended one transaction each")
    bench.add_argument("--stations", type=int, default=500, help="station ids the entries cycle over")
    bench.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    bench.set_defaults(handler=_bench)


def _fail(message: str) -> int:
    print(f"dergw audit: {message}", file=sys.stderr)
    return 2


def _export(args: argparse.Namespace) -> int:
    flt = ExportFilter(directive_id=args.directive, station_id=args.station, since=args.since, until=args.until)
    progress = _progress(args, "export: entries written")
    try:
        result = export_bundle(args.db, args.keys, args.out, created=datetime.now(UTC), flt=flt, tick=progress)
    except (ExportError, CheckpointError, sqlite3.Error, OSError) as exc:
        return _fail(str(exc))
    finally:
        if progress is not None:
            progress.finish()
    scope = "complete log" if result.complete else "filtered"
    print(f"wrote {result.path}: {result.entries} entries ({scope}), anchored at tree size {result.tree_size}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        with path.open("rb") as handle:
            is_db = handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except IsADirectoryError:
        is_db = False
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror}")
    progress = _progress(args, "verify: entries checked")
    try:
        if is_db:
            report = verify_db(path, load_public_key(args.pubkey or args.keys), tick=progress)
        else:
            pinned = None if args.pubkey is None else load_public_key(args.pubkey)
            report = verify_bundle(path, pinned, tick=progress)
    except CheckpointError as exc:
        return _fail(str(exc))
    finally:
        if progress is not None:
            progress.finish()
    print(report.render())
    return 0 if report.ok else 1


def _open_db(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    return connect(path, readonly=True)


def _show(args: argparse.Namespace) -> int:
    try:
        conn = _open_db(args.db)
    except (OSError, sqlite3.Error) as exc:
        return _fail(str(exc))
    try:
        if args.directive is None:
            entries = select_entries(
                conn,
                station_id=args.station,
                kind=args.kind,
                since=args.since,
                until=args.until,
                limit=args.limit,
            )
        else:
            since, until = args.since, args.until
            entries = [
                e
                for e in directive_trail(conn, args.directive)
                if (args.station is None or e.station_id == args.station)
                and (args.kind is None or e.kind == args.kind)
                and (since is None or e.at >= since)
                and (until is None or e.at < until)
            ][: args.limit]
    finally:
        conn.close()
    for e in entries:
        if args.json:
            print(e.body.decode())
        else:
            ids = " ".join(
                f"{name}={value}"
                for name, value in (
                    ("directive", e.directive_id),
                    ("station", e.station_id),
                    ("message", e.message_id),
                    ("signal", e.signal_id),
                )
                if value is not None
            )
            print(f"{e.seq:>8}  {e.at_text}  {e.kind:<21} {ids}")
    return 0 if entries else 1


def _report(args: argparse.Namespace) -> int:
    try:
        conn = _open_db(args.db)
    except (OSError, sqlite3.Error) as exc:
        return _fail(str(exc))
    try:
        report = build_report(args.directive, directive_trail(conn, args.directive))
    finally:
        conn.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(report.render())
    return 0 if report.found else 1


def _bench(args: argparse.Namespace) -> int:
    if args.entries < 1 or args.batch < 1 or args.single < 0 or args.stations < 1:
        return _fail("--entries, --batch and --stations must be positive, --single non-negative")
    where: contextlib.AbstractContextManager[str]
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        where = contextlib.nullcontext(str(args.dir))
    else:
        where = tempfile.TemporaryDirectory(prefix="dergw-bench-audit-")
    with where as directory:
        result = run_bench(
            Path(directory), entries=args.entries, batch=args.batch, single=args.single, stations=args.stations
        )
    print(result.render())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m gateway.audit.cli audit ...``) until the main CLI registers us."""
    parser = argparse.ArgumentParser(prog="dergw")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(commands)
    bench = commands.add_parser("bench", help="benchmarks")
    register_bench(bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH"))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
