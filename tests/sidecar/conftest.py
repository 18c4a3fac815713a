"""Fixtures: an upstream CSMS on the `ocpp` library and a sidecar gateway in front of it, both on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import UpstreamConfig
from gateway.runtime import Gateway
from protocols.ocpp.sidecar import SidecarProxy
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import make_config, running, station_configs

StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def csms() -> AsyncIterator[UpstreamCsms]:
    async with UpstreamCsms() as server:
        yield server


@pytest.fixture
async def sidecar(tmp_path: Path, csms: UpstreamCsms) -> AsyncIterator[Gateway]:
    """A gateway in sidecar mode for stations S1, S2 and RAW; back-off waits only for `reconnect_now()`."""
    upstream = UpstreamConfig(url=csms.url, security_profile=1, retry_wait_minimum_s=3600, retry_random_range_s=0)
    config = make_config(
        tmp_path, station_configs(["S1", "S2", "RAW"], groups=["site"]), mode="sidecar", upstream=upstream
    )
    async with running(config) as gw:
        yield gw


def proxy_of(gw: Gateway) -> SidecarProxy:
    assert isinstance(gw.ocpp, SidecarProxy)
    return gw.ocpp


def frame_ids(frames: list[list[Any]]) -> list[str]:
    return [str(f[1]) for f in frames]
