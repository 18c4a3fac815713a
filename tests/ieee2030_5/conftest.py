"""Fixtures for the 2030.5 tests: a dev PKI, the counterpart over real TLS, and a recording DirectiveSink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.backoff import no_jitter
from gateway.certs import DevPki, init_dev_pki, lfdi, sfdi
from gateway.clock import ManualClock
from gateway.model import Target, TargetScope
from gateway.tls import server_context
from protocols.ieee2030_5.adapter import Ieee20305Adapter
from protocols.ieee2030_5.config import EndDeviceBinding, Ieee20305Config, Ratings
from protocols.ieee2030_5.server import Counterpart
from tests.support import RecordingSink

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SITE_LFDI = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    # TLS checks validity against the real clock, so the PKI is made "now", not at the tests' manual T0.
    return init_dev_pki(tmp_path_factory.mktemp("pki"), stations=[], now=datetime.now(UTC))


def binding(**kw: Any) -> EndDeviceBinding:
    values: dict[str, Any] = {
        "name": "site1",
        "lfdi": SITE_LFDI,
        "sfdi": 1111,
        "target": Target(scope=TargetScope.GROUP, ids=["site1"]),
        "stations": ("CS-001", "CS-002"),
        "ratings": Ratings(max_w=22_000, max_charge_w=11_000),
    }
    values.update(kw)
    return EndDeviceBinding(**values)


def scenario(**kw: Any) -> dict[str, Any]:
    """One site EndDevice with one program (primacy 1) and a DefaultDERControl."""
    device: dict[str, Any] = {
        "lfdi": SITE_LFDI,
        "sfdi": 1111,
        "pin": 111115,
        "programs": [
            {
                "description": "DOE",
                "primacy": 1,
                "default": {
                    "base": {"opModExpLimW": {"value": 1500}, "opModImpLimW": {"value": 15, "multiplier": 3}},
                    "setGradW": 27,
                },
            }
        ],
    }
    device.update(kw)
    return {"poll_rate_s": 60, "end_devices": [device]}


@dataclass
class Link:
    """A running counterpart, an adapter pointed at it, and the sink it reports to."""

    server: Counterpart
    adapter: Ieee20305Adapter
    sink: RecordingSink
    clock: ManualClock
    port: int
    pki: DevPki

    async def restart(self) -> None:
        await self.server.start("127.0.0.1", self.port, _server_ctx(self.pki))


def _server_ctx(pki: DevPki) -> Any:
    return server_context(pki.server.cert, pki.server.key, client_ca=pki.ca.cert, require_client_cert=True)


async def make_link(
    pki: DevPki, scen: dict[str, Any], *, offset_s: float = 0.0, timeout_s: float = 5.0, **config: Any
) -> Link:
    clock = ManualClock(T0)
    server = Counterpart(scen, clock=clock, time_offset_s=offset_s)
    port = await server.start("127.0.0.1", 0, _server_ctx(pki))
    values: dict[str, Any] = {
        "server": f"https://127.0.0.1:{port}",
        "ca": pki.ca.cert,
        "cert": pki.gateway_client.cert,
        "key": pki.gateway_client.key,
        "devices": (binding(pin=111115),),
        "request_timeout_s": timeout_s,
    }
    values.update(config)
    adapter = Ieee20305Adapter(Ieee20305Config(**values), clock=clock, autorun=False, rand=no_jitter)
    sink = RecordingSink()
    await adapter.start(sink)
    return Link(server, adapter, sink, clock, port, pki)


@pytest.fixture
async def link(pki: DevPki) -> AsyncIterator[Link]:
    made = await make_link(pki, scenario())
    yield made
    await made.adapter.stop()
    await made.server.stop()


def gateway_ids(pki: DevPki) -> tuple[str, int]:
    cert = pki.gateway_client.cert.read_bytes()
    return lfdi(cert), sfdi(cert)
