"""An OCPP 1.6 station behind the sidecar, against an `ocpp`-library 1.6 CSMS over real sockets.

The station's Authorize / StartTransaction / MeterValues / StopTransaction and the CSMS's answers pass byte for byte
while the gateway applies a grid limit with its own SetChargingProfile, which the station answers and the gateway
(not the CSMS) receives. While the CSMS is away, StartTransaction is refused so the station keeps it (docs/sidecar.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import UpstreamConfig
from gateway.model import OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from protocols.ocpp.frames import CallError, CallResult, Frame
from protocols.ocpp.simulator import SimStation
from tests.sidecar.conftest import proxy_of
from tests.sidecar.test_proxy import assert_csms_never_saw_gateway_frames, assert_gateway_frames_valid, limit
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import PASSWORD, make_config, running, station_configs

START = (
    '[2,"a-2","StartTransaction",{"connectorId":1,"idTag":"TAG1","meterStart":0,"timestamp":"2026-01-01T00:00:00Z"}]'
)


class WireStation(SimStation):
    """The simulator, also keeping every frame it received as the exact text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.texts: list[str] = []

    def _on_message(self, text: str | bytes) -> None:
        self.texts.append(text if isinstance(text, str) else text.decode())
        super()._on_message(text)


@pytest.fixture
async def csms16() -> AsyncIterator[UpstreamCsms]:
    async with UpstreamCsms(versions=("ocpp1.6",)) as server:
        yield server


@pytest.fixture
async def sidecar16(tmp_path: Path, csms16: UpstreamCsms) -> AsyncIterator[Gateway]:
    upstream = UpstreamConfig(url=csms16.url, retry_wait_minimum_s=3600, retry_random_range_s=0)
    config = make_config(tmp_path, station_configs(["S1"]), mode="sidecar", upstream=upstream)
    async with running(config) as gw:
        yield gw


async def station16(gw: Gateway) -> WireStation:
    sim = WireStation(proxy_of(gw).url, "S1", OcppVersion.V16, password=PASSWORD, meter_interval=3600)
    await sim.start()
    await gw.fleet.stations["S1"].capabilities_ready.wait()
    return sim


async def exchange(sim: WireStation, text: str) -> Frame:
    """Send a CALL in the station's own spelling; its answer, which the simulator leaves unclaimed."""
    await sim.send_raw(text)
    return await sim.next_frame()


async def test_16_transactions_pass_byte_for_byte_while_the_gateway_limits_the_station(
    sidecar16: Gateway, csms16: UpstreamCsms
) -> None:
    gw, csms = sidecar16, csms16
    sim = await station16(gw)
    record = await gw.dispatcher.submit(limit())
    sent = [
        '[2, "a-1", "Authorize", {"idTag": "TAG\\u0031"}]',
        START,
    ]
    answers = [await exchange(sim, text) for text in sent]
    assert sim.texts[-2:] == csms.sent_text("S1")[-2:]  # the CSMS's answers, exactly as it sent them
    assert isinstance(answers[1], CallResult)
    tx = answers[1].payload["transactionId"]
    assert tx == csms.transaction_ids  # the CSMS's own transaction id reached the station
    later = [
        f'[2,"a-3","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":[{{"timestamp":'
        f'"2026-01-01T00:05:00Z","sampledValue":[{{"value":"1500","measurand":"Energy.Active.Import.Register"}}]}}]}}]',
        f'[2,"a-4","StopTransaction",{{"transactionId":{tx},"meterStop":3000,"timestamp":"2026-01-01T00:10:00Z"}}]',
    ]
    for text in later:
        assert isinstance(await exchange(sim, text), CallResult)
        assert sim.texts[-1] == csms.sent_text("S1")[-1]
    sent += later
    assert csms.received_text("S1")[-len(sent) :] == sent  # the station's frames, unchanged
    # The gateway's 1.6 SetChargingProfile was answered by the station and the answer went to the gateway.
    outcome = (await gw.dispatcher.wait(record.directive.id))[0]
    assert outcome.status is OutcomeStatus.ACCEPTED
    assert "SetChargingProfile" in [a for a, _ in sim.received]
    assert sim.rates().limit_w == pytest.approx(4000, rel=0.01)
    assert "SetChargingProfile" not in [f[2] for f in csms.received("S1") if f[0] == 2]
    await sim.stop()
    assert_gateway_frames_valid(gw, sim)
    assert_csms_never_saw_gateway_frames(csms, "S1")


async def test_16_start_transaction_is_refused_while_the_csms_is_away_and_passes_once_it_is_back(
    sidecar16: Gateway, csms16: UpstreamCsms
) -> None:
    """The transaction id is the CSMS's: a CALLERROR makes the station keep and retry the StartTransaction
    (1.6, 3.7) instead of running on an id the CSMS never gave. A StopTransaction is kept and delivered unchanged."""
    gw, csms, proxy = sidecar16, csms16, proxy_of(sidecar16)
    sim = await station16(gw)
    session = proxy.session("S1")
    assert session is not None
    await session.online.wait()
    await csms.stop()
    await session.offline.wait()
    start = START.replace("a-2", "s-1")
    refused = await exchange(sim, start)
    assert isinstance(refused, CallError)
    assert (refused.code, refused.description) == ("GenericError", "upstream CSMS unreachable")
    stop = '[2,"s-2","StopTransaction",{"transactionId":1000,"meterStop":10,"timestamp":"2026-01-01T00:01:00Z"}]'
    assert await exchange(sim, stop) == CallResult("s-2", {})  # the CSMS-mode answer; kept for the CSMS
    assert len(session.buffer) == 1
    await csms.start()
    proxy.reconnect_now()
    await session.online.wait()
    assert csms.received_text("S1")[-1] == stop  # no offline flag in 1.6: exactly as the station sent it
    retried = await exchange(sim, start.replace('"s-1"', '"s-3"'))  # the station's retry now reaches the CSMS
    assert isinstance(retried, CallResult)
    assert retried.payload["transactionId"] == csms.transaction_ids
    assert json.loads(csms.received_text("S1")[-1])[1] == "s-3"
    await sim.stop()
