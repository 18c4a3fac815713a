"""OpenADR 2.0b faults against openleadr's own VTN over real HTTP on 127.0.0.1: a fleet with no reading yet, an
event modified or cancelled on the VTN, and a VTN that is down or refuses the VEN at start (retried on an injected
sleep). openleadr polls on real time, so these wait on the VTN's callbacks and the sink's records, never sleep."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.backoff import no_jitter
from gateway.clock import ManualClock, SystemClock
from gateway.model import Controls, Target
from protocols.openadr2b.adapter import MAX_START_RETRY_S, START_RETRY_S, OpenAdr2bAdapter
from tests.openadr2b.conftest import VEN_ID, WAIT_S, FixedFleet, Started, Vtn, adapter_config
from tests.support import RecordingSink, Stepper

pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")


class UnmeteredFleet(FixedFleet):
    """A fleet whose stations have not metered any power yet (demand unknown)."""

    def __init__(self) -> None:
        super().__init__()
        self.demand: float | None = None

    def demand_w(self, target: Target) -> float | None:
        return self.demand


def hours(*fractions: float) -> list[dict[str, Any]]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    return [
        {"dtstart": start + timedelta(hours=i), "duration": timedelta(hours=1), "signal_payload": f}
        for i, f in enumerate(fractions)
    ]


async def test_no_reading_sends_no_usage_report_and_the_vtn_answers_every_message(vtn: Vtn) -> None:
    fleet = UnmeteredFleet()
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=SystemClock(), fleet=fleet)
    await adapter.start(RecordingSink())
    try:
        measured: list[str] = []
        async with asyncio.timeout(WAIT_S):
            # Both reports tick every second: three status reports span at least two usage ticks.
            while measured.count("Status") < 3:
                _, measurement, _ = await vtn.report()
                measured.append(measurement)
        assert vtn.failed_answers() == []  # an oadrUpdateReport without intervals gets HTTP 500 from this VTN
        assert "RealPower" not in measured  # no reading: no TELEMETRY_USAGE data point, not a made-up 0 W
        assert adapter.ven.reports_skipped >= 1
        fleet.demand = 3_300.0
        async with asyncio.timeout(WAIT_S):
            while True:
                _, measurement, values = await vtn.report()
                if measurement == "RealPower":
                    break
        assert [v for _, v in values] == [3_300.0]
        assert vtn.failed_answers() == []
    finally:
        await adapter.stop()


async def test_modified_event_changes_the_directives(vtn: Vtn, started: Started) -> None:
    _, sink = started
    event_id = vtn.add_event("LOAD_CONTROL", "x-loadControlCapacity", hours(0.25, 0.5))
    assert await vtn.opt(event_id) == "optIn"
    await sink.wait(lambda: len(sink.submitted) == 2, timeout_s=WAIT_S)
    first, second = (f"oa2.{event_id}.0.{i}" for i in range(2))
    assert {d.id: d.controls for d, _ in sink.submitted} == {
        first: Controls(import_limit_w=5_500),
        second: Controls(import_limit_w=11_000),
    }
    assert vtn.modify_event(event_id, hours(0.125)) == 1  # one interval left, at 2.75 kW
    await sink.wait(lambda: len(sink.submitted) == 3 and len(sink.cancelled) == 1, timeout_s=WAIT_S)
    changed, signal = sink.submitted[2]
    assert (changed.id, changed.controls) == (first, Controls(import_limit_w=2_750))  # same id: replaces
    assert signal.signal_id == event_id
    assert [c for c, _, _ in sink.cancelled] == [second]  # the interval the new version no longer has
    assert vtn.failed_answers() == []


async def test_cancelled_event_cancels_its_directives(vtn: Vtn, started: Started) -> None:
    adapter, sink = started
    event_id = vtn.add_event("SIMPLE", "level", hours(2, 1))
    assert await vtn.opt(event_id) == "optIn"
    await sink.wait(lambda: len(sink.submitted) == 2, timeout_s=WAIT_S)
    vtn.server.cancel_event(VEN_ID, event_id)  # eventStatus cancelled, modificationNumber + 1
    await sink.wait(lambda: len(sink.cancelled) == 2, timeout_s=WAIT_S)
    assert sorted(c for c, _, _ in sink.cancelled) == sorted(d.id for d, _ in sink.submitted)
    assert {s.signal_id for _, s, _ in sink.cancelled} == {event_id}
    assert adapter.opts[event_id].reason == "cancelled"
    assert len(sink.submitted) == 2  # nothing new submitted for the cancelled version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_vtn_down_at_start_is_retried_with_backoff_until_it_answers() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    stepper = Stepper()
    config = adapter_config(Vtn(), vtn_url=url)
    adapter = OpenAdr2bAdapter(config, clock=SystemClock(), fleet=FixedFleet(), sleep=stepper.sleep, rand=no_jitter)
    sink = RecordingSink()
    await adapter.start(sink)  # nothing listens on the port: start returns, the link is down and retrying
    vtn: Vtn | None = None
    try:
        assert not adapter.health().ok
        assert "did not answer" in adapter.health().detail
        waits = [await stepper.next()]
        for _ in range(6):  # each attempt refused by the closed port; the wait doubles up to the cap
            stepper.release()
            waits.append(await stepper.next())
        assert waits == [START_RETRY_S * 2**i for i in range(5)] + [MAX_START_RETRY_S] * 2
        assert adapter.start_failures == 7
        vtn = Vtn(port=port)
        await vtn.server.run()
        vtn.url = url
        event_id = vtn.add_event("SIMPLE", "level", hours(2), target={"resource_id": "site-a"})
        stepper.release()
        async with asyncio.timeout(WAIT_S):
            await adapter.registered.wait()
        assert await vtn.opt(event_id) == "optIn"  # the event waiting at the VTN was taken at registration
        assert len(sink.submitted) == 1
        assert adapter.health().ok
        assert adapter.start_failures == 0
        assert [r["ven_name"] for r in vtn.registrations] == ["gateway"]
        assert stepper.asked.empty()  # registered: no further attempt is scheduled
    finally:
        await adapter.stop()
        if vtn is not None:
            await vtn.server.stop()


async def test_refused_registration_is_retried(vtn: Vtn) -> None:
    vtn.accept = False
    stepper = Stepper()
    adapter = OpenAdr2bAdapter(
        adapter_config(vtn), clock=SystemClock(), fleet=FixedFleet(), sleep=stepper.sleep, rand=no_jitter
    )
    await adapter.start(RecordingSink())
    try:
        assert not adapter.health().ok
        assert "did not register" in adapter.health().detail
        assert await stepper.next() == START_RETRY_S
        vtn.accept = True  # the VTN operator enrols the VEN
        stepper.release()
        async with asyncio.timeout(WAIT_S):
            await adapter.registered.wait()
        assert adapter.health().ok
        assert adapter.start_failure is None
        assert len(vtn.registrations) == 2
    finally:
        await adapter.stop()


async def test_vtn_down_while_running_keeps_the_directives_and_polling_resumes(vtn: Vtn) -> None:
    """openleadr polls on real time at the VTN's frequency (1 s here) and keeps doing so while the VTN is down; the
    link's health goes by the gateway's clock (manual here, so three poll intervals pass at once)."""
    clock = ManualClock(datetime.now(UTC))
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=clock, fleet=FixedFleet())
    sink = RecordingSink()
    await adapter.start(sink)
    port = vtn.server.app_runner.addresses[0][1]
    again: Vtn | None = None
    try:
        event_id = vtn.add_event("LOAD_CONTROL", "x-loadControlCapacity", hours(0.25))
        assert await vtn.opt(event_id) == "optIn"
        await sink.wait(lambda: len(sink.submitted) == 1, timeout_s=WAIT_S)
        await vtn.server.stop()
        heard = asyncio.Event()  # set by openleadr after the VEN's own hook has noted the answer
        adapter.ven.client.add_hook("after_receive_xml", lambda xml: heard.set())
        clock.advance(4)
        assert not adapter.health().ok
        assert "no answer" in adapter.health().detail
        assert sink.cancelled == []  # nothing received is withdrawn while the VTN is away
        again = Vtn(port=port)  # back on the same port (with no memory of the event)
        await again.server.run()
        heard.clear()
        async with asyncio.timeout(WAIT_S):
            await heard.wait()  # the next real-time poll reaches it
        assert adapter.health().ok
        assert sink.cancelled == []
        assert len(sink.submitted) == 1
    finally:
        await adapter.stop()
        if again is not None:
            await again.server.stop()
