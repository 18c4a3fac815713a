"""A gateway started from a configuration file (so station reloads have something to re-read)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config import load_config
from gateway.runtime import Gateway
from tests.support import TOKEN, password_hash

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config_text(stations: Sequence[str], extra: str = "", ocpp: str = "") -> str:
    """A TOML configuration on free ports with these stations; `ocpp`: more lines of the [ocpp] table."""
    entries = "".join(f'[[stations]]\nid = "{s}"\npassword_hash = "{password_hash()}"\n' for s in stations)
    return (
        f'data_dir = "data"\ncerts_dir = "certs"\n[ocpp]\nport = 0\ncall_timeout_s = 5\n{ocpp}\n'
        f'[api]\nport = 0\ntoken = "env:TEST_TOKEN"\n{extra}\n{entries}'
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(config_text(["S1", "S2"]))
    return path


@pytest.fixture
async def gw(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("TEST_TOKEN", TOKEN)  # a reload re-reads the file with the process environment
    gateway = Gateway.build(load_config(config_file), source=config_file)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def request(gw: Gateway, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(method, gw.api_url + path, **kwargs) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()
