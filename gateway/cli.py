"""The `dergw` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.audit import cli as audit_cli
from gateway.bench.fanout import register_bench as register_fanout_bench
from gateway.bench.outcomes import register_bench as register_outcomes_bench
from gateway.bench.stacks import register_bench as register_stacks_bench
from gateway.certs_cli import register as register_certs
from gateway.config import ConfigError, load_config
from gateway.logs import log_json
from protocols.iec61850 import cli as iec61850_cli
from protocols.ocpp.auth import hash_password
from protocols.ocpp.simulator.cli import register as register_sim

DEFAULT_API = "http://127.0.0.1:8080"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dergw", description="Utility DER translation gateway")
    parser.add_argument("--version", action="version", version=f"dergw {__version__}")
    parser.add_argument("--log-level", help="Python log level (default INFO for run, WARNING otherwise)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the gateway from a configuration file (JSON log lines on stdout)")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument(
        "--grace", type=float, help="seconds SIGTERM waits for fan-outs under way (default: ocpp.call_timeout_s)"
    )
    run.set_defaults(handler=_run)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check_config)

    demo = sub.add_parser("demo", help="gateway + simulated mixed fleet + a sample directive, on embedded defaults")
    demo.add_argument("--stations", type=int, default=30, help="simulated stations (a third each 2.1, 2.0.1, 1.6)")
    demo.add_argument("--seconds", type=float, default=60.0, help="time allowed for every station to reach its outcome")
    demo.add_argument("--forever", action="store_true", help="keep running after the outcome table until Ctrl-C")
    demo.add_argument("--data-dir", type=Path, help="keep the SQLite file and audit keys here (default: temporary)")
    demo.set_defaults(handler=_demo)

    pw = sub.add_parser("hash-password", help="hash a station's Basic-auth password for the configuration file")
    pw.add_argument("--password", help="the password (default: read from standard input)")
    pw.set_defaults(handler=_hash_password)

    directive = sub.add_parser("directive", help="submit, show, list or cancel directives via the operator API")
    directive.add_argument("--api", default=DEFAULT_API, help=f"operator API base URL (default {DEFAULT_API})")
    directive.add_argument("--token", help="bearer token (default: $DERGW_API_TOKEN)")
    dsub = directive.add_subparsers(dest="directive_command", required=True, metavar="ACTION")
    submit = dsub.add_parser("submit", help="submit a directive from a JSON file (- for stdin)")
    submit.add_argument("file")
    submit.add_argument("--wait", type=float, default=0.0, help="seconds to wait for every station's outcome")
    submit.set_defaults(handler=_directive_submit)
    show = dsub.add_parser("show", help="a directive and its per-station outcomes")
    show.add_argument("id")
    show.set_defaults(handler=_directive_show)
    cancel = dsub.add_parser("cancel", help="cancel a directive (clears it from the stations)")
    cancel.add_argument("id")
    cancel.set_defaults(handler=_directive_cancel)
    lst = dsub.add_parser("list", help="recent directives")
    lst.set_defaults(handler=_directive_list)

    register_certs(sub)
    register_sim(sub)
    audit_cli.register(sub)
    iec61850_cli.register(sub)
    bench = sub.add_parser("bench", help="performance measurements that print their figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    audit_cli.register_bench(bench_sub)
    register_fanout_bench(bench_sub)
    register_stacks_bench(bench_sub)
    register_outcomes_bench(bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        log_json(args.log_level or "INFO")
    else:
        level = (args.log_level or "WARNING").upper()
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    result: int = args.handler(args)
    return result


# -- run -------------------------------------------------------------------------------------------------------


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    links = ", ".join(config.links()) or "none"
    print(f"{args.file}: ok ({len(config.stations)} stations; utility links: {links})")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT (graceful stop, exit 0); SIGHUP re-reads the station list."""
    from gateway.runtime import Gateway

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    log = logging.getLogger("gateway.run")

    async def reload(gateway: Gateway) -> None:
        try:
            await gateway.reload_stations()
        except ValueError as exc:
            log.error("stations not reloaded: %s", exc)

    async def serve() -> None:
        gateway = Gateway.build(config, source=args.config)
        await gateway.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[None]] = set()

        def hangup() -> None:
            task = loop.create_task(reload(gateway))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, hangup)
        await stop.wait()
        log.info("stopping")
        await asyncio.gather(*reloads)
        await gateway.stop(grace_s=args.grace)

    asyncio.run(serve())
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    try:
        return asyncio.run(run_demo(args.stations, args.seconds, forever=args.forever, data_dir=args.data_dir))
    except KeyboardInterrupt:  # Ctrl-C before the demo installed its own handler: everything was shut down
        return 130


def _hash_password(args: argparse.Namespace) -> int:
    password = args.password
    if password is None:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 16:  # A00.FR.205: at least 16 characters
        print("a station password needs at least 16 characters (OCPP A00.FR.205)", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


# -- directive client ------------------------------------------------------------------------------------------


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    import os

    token = args.token or os.environ.get("DERGW_API_TOKEN")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(args.api.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _print_result(status: int, body: Any) -> int:
    print(json.dumps(body, indent=2))
    return 0 if status < 400 else 1


def _directive_submit(args: argparse.Namespace) -> int:
    import time

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        body = json.loads(text)
    except ValueError as exc:
        print(f"{args.file}: not valid JSON: {exc}", file=sys.stderr)
        return 1
    try:
        status, answer = _request(args, "POST", "/api/directives", body)
        if status >= 400 or args.wait <= 0:
            return _print_result(status, answer)
        deadline = time.monotonic() + args.wait
        while True:
            status, answer = _request(args, "GET", f"/api/directives/{answer['id']}")
            outcomes = answer.get("outcomes", [])
            done = outcomes and all(o["status"] not in ("pending", "sent") for o in outcomes)
            if done or time.monotonic() >= deadline:
                return _print_result(status, answer)
            time.sleep(0.5)  # polling a remote API, not synchronising a test
    except urllib.error.URLError as exc:
        print(f"cannot reach the operator API at {args.api}: {exc.reason}", file=sys.stderr)
        return 1


def _simple(method: str, path: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            return _print_result(*_request(args, method, path.format(id=getattr(args, "id", ""))))
        except urllib.error.URLError as exc:
            print(f"cannot reach the operator API at {args.api}: {exc.reason}", file=sys.stderr)
            return 1

    return handler


_directive_show = _simple("GET", "/api/directives/{id}")
_directive_cancel = _simple("DELETE", "/api/directives/{id}")
_directive_list = _simple("GET", "/api/directives")


if __name__ == "__main__":
    sys.exit(main())
