"""`dergw sim stations`: run a simulated fleet against a CSMS until interrupted or for --seconds."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path

from gateway.model import OcppVersion
from protocols.ocpp.simulator.fleet import Fleet

_VERSIONS = {"2.1": OcppVersion.V21, "2.0.1": OcppVersion.V201, "1.6": OcppVersion.V16}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `sim stations` to the `dergw` command line."""
    sim = subparsers.add_parser("sim", help="simulated charging stations")
    commands = sim.add_subparsers(dest="sim_command", required=True, metavar="SIM_COMMAND")
    p = commands.add_parser("stations", help="connect N simulated stations to a CSMS")
    p.add_argument("--url", required=True, help="CSMS endpoint, e.g. ws://127.0.0.1:9000/ocpp (station id appended)")
    p.add_argument("--count", type=int, default=10, help="number of stations (default 10)")
    p.add_argument(
        "--version",
        choices=sorted(_VERSIONS),
        action="append",
        help="OCPP version; repeat for a mix assigned round-robin (default 2.1)",
    )
    p.add_argument("--prefix", default="SIM", help="station id prefix: ids are PREFIX00001... (default SIM)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-file", type=Path, help="file holding the HTTP Basic password (profile 1/2)")
    secret.add_argument("--password", help="HTTP Basic password (prefer --password-file)")
    p.add_argument("--ca", type=Path, help="CA certificate to trust for wss://")
    p.add_argument("--cert", type=Path, help="client certificate (security profile 3)")
    p.add_argument("--key", type=Path, help="client private key (security profile 3)")
    p.add_argument("--der", action=argparse.BooleanOptionalAction, default=True, help="2.1 stations support DER")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: run until interrupted)")
    p.add_argument("--status-interval", type=float, default=10.0, help="seconds between status lines (default 10)")
    p.add_argument("--meter-interval", type=float, default=60.0, help="seconds between MeterValues (default 60)")
    p.add_argument("--power", type=float, default=7000.0, help="demand per EV in W (default 7000)")
    p.add_argument("--concurrency", type=int, default=100, help="simultaneous connects while starting")
    p.set_defaults(handler=run_stations)


def run_stations(args: argparse.Namespace) -> int:
    """Entry point of `dergw sim stations`; 0 when every station booted, 1 otherwise."""
    if args.cert and not args.key:
        print("--cert needs --key", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.ca or args.cert or args.url.startswith("wss:")):
        return None
    context = ssl.create_default_context(cafile=str(args.ca) if args.ca else None)
    if args.cert:
        context.load_cert_chain(str(args.cert), str(args.key))
    return context


def _status(fleet: Fleet) -> str:
    return (
        f"stations={len(fleet.stations)} connected={fleet.connected} booted={fleet.booted} "
        f"failed={len(fleet.failures)} power_kw={fleet.power_w() / 1000:.1f}"
    )


async def _run(args: argparse.Namespace) -> int:
    password = args.password_file.read_text(encoding="utf-8").strip() if args.password_file else args.password
    fleet = Fleet(
        args.url,
        args.count,
        [_VERSIONS[v] for v in args.version or ["2.1"]],
        prefix=args.prefix,
        password=password,
        ssl=_ssl_context(args),
        concurrency=args.concurrency,
        der=args.der,
        meter_interval=args.meter_interval,
        power=args.power,
    )
    loop = asyncio.get_running_loop()
    deadline = None if args.seconds is None else loop.time() + args.seconds
    starting = asyncio.create_task(fleet.start())
    starting.add_done_callback(lambda t: t.cancelled() or print(f"started: {_status(fleet)}", flush=True))
    try:
        while deadline is None or loop.time() < deadline:
            remaining = args.status_interval if deadline is None else deadline - loop.time()
            await asyncio.sleep(min(args.status_interval, remaining))
            print(_status(fleet), flush=True)
    finally:
        starting.cancel()
        await fleet.stop()
    for station_id, error in sorted(fleet.failures.items())[:10]:
        print(f"{station_id}: {error!r}", file=sys.stderr)
    return 1 if fleet.failures else 0
