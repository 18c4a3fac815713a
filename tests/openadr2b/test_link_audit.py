"""OpenADR 2.0b link failures reach the audit seam, against openleadr's VTN over real HTTP on 127.0.0.1: each
registration attempt at start (jittered backoff, injected sleep and random source), and, once registered, failed
polls and lost reports at the attempts a doubling backoff would make; the link recovers on the same port."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway.backoff import worth_auditing
from gateway.clock import ManualClock, SystemClock
from gateway.model import SourceProtocol
from protocols.openadr2b.adapter import OpenAdr2bAdapter
from tests.openadr2b.conftest import WAIT_S, FixedFleet, Vtn, adapter_config
from tests.openadr2b.test_faults import free_port
from tests.support import RecordingSink, Stepper

pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")


async def test_each_registration_attempt_is_audited_with_its_jittered_wait() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    stepper = Stepper()
    config = adapter_config(Vtn(), vtn_url=url)
    adapter = OpenAdr2bAdapter(config, clock=SystemClock(), fleet=FixedFleet(), sleep=stepper.sleep, rand=lambda: 0)
    sink = RecordingSink()
    await adapter.start(sink)  # nothing listens on the port
    vtn: Vtn | None = None
    try:
        waits = [await stepper.next()]
        for _ in range(2):
            stepper.release()
            waits.append(await stepper.next())
        assert waits == [15, 30, 60]  # rand 0: half of 30, 60, 120
        assert [(f.operation, f.attempt, f.retry_in_s) for f in sink.failures] == [
            ("register", 1, 15), ("register", 2, 30), ("register", 3, 60)
        ]  # fmt: skip
        first = sink.failures[0]
        assert (first.protocol, first.server, first.error, first.status) == (
            SourceProtocol.OPENADR2B, url, "ClientConnectorError", None
        )  # fmt: skip
        assert "did not answer" in first.detail
        vtn = Vtn(port=port)
        await vtn.server.run()
        stepper.release()
        async with asyncio.timeout(WAIT_S):
            await adapter.registered.wait()
        assert adapter.health().ok
        assert len(sink.failures) == 3
    finally:
        await adapter.stop()
        if vtn is not None:
            await vtn.server.stop()


async def test_refused_registration_is_audited_with_the_reason(vtn: Vtn) -> None:
    vtn.accept = False
    stepper = Stepper()
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=SystemClock(), fleet=FixedFleet(), sleep=stepper.sleep)
    sink = RecordingSink()
    await adapter.start(sink)
    try:
        wait = await stepper.next()
        assert 15 <= wait <= 30  # equal jitter on the first 30 s
        [failure] = sink.failures
        assert (failure.operation, failure.attempt, failure.retry_in_s) == ("register", 1, wait)
        assert "did not register" in failure.detail
    finally:
        await adapter.stop()


async def test_vtn_down_while_running_is_audited_on_a_doubling_spacing_and_the_link_recovers(vtn: Vtn) -> None:
    """openleadr polls every second (the VTN's frequency) and sends a report every second; both fail while the
    VTN is down. The audit gets failed polls 1, 2, 4 ... and lost reports on the same spacing, with counts."""
    clock = ManualClock(datetime.now(UTC))
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=clock, fleet=FixedFleet())
    sink = RecordingSink()
    await adapter.start(sink)
    port = vtn.server.app_runner.addresses[0][1]
    again: Vtn | None = None
    try:
        assert sink.failures == []
        heard = asyncio.Event()  # set by openleadr after the VEN's own hooks have seen an answer
        adapter.ven.client.add_hook("after_receive_xml", lambda xml: heard.set())
        await vtn.server.stop()

        def polls() -> list[int]:
            return [f.attempt for f in sink.failures if f.operation == "poll"]

        await sink.wait(lambda: 4 in polls() and len(sink.drops) >= 2, timeout_s=WAIT_S)
        assert polls()[:3] == [1, 2, 4]
        assert all(worth_auditing(n, 1.0) for n in polls())
        poll = next(f for f in sink.failures if f.operation == "poll")
        assert (poll.error, poll.status, poll.retry_in_s, poll.server) == ("ClientConnectorError", None, 1.0, vtn.url)
        assert [(d.what, d.reason) for d in sink.drops[:2]] == [("report", "failed")] * 2
        assert sink.drops[0].count == 1  # the first lost report is written at once
        assert adapter.failures["OadrPoll"] >= 4

        again = Vtn(port=port)
        await again.server.run()
        async with asyncio.timeout(WAIT_S):
            while adapter.failures.get("OadrPoll"):
                heard.clear()
                await heard.wait()  # re-checked after each answer from the VTN
        audited = len([f for f in sink.failures if f.operation == "poll"])
        for _ in range(3):  # three more polls, answered
            heard.clear()
            async with asyncio.timeout(WAIT_S):
                await heard.wait()
        assert len([f for f in sink.failures if f.operation == "poll"]) == audited  # nothing more while healthy
        assert adapter.health().ok
        assert sink.cancelled == []
    finally:
        await adapter.stop()
        if again is not None:
            await again.server.stop()
