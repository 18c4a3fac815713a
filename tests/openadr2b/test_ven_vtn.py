"""The gateway's VEN against openleadr's own VTN over real HTTP on 127.0.0.1: registration, events delivered by
oadrRequestEvent and oadrPoll, opt answers, TELEMETRY_USAGE / TELEMETRY_STATUS reports, modification and cancel."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from openleadr import enums, objects

from gateway.clock import SystemClock
from gateway.model import Controls, SourceProtocol
from protocols.openadr2b.adapter import OpenAdr2bAdapter
from protocols.openadr2b.opt import Opt
from tests.openadr2b.conftest import SITE_A, VEN_ID, WAIT_S, FixedFleet, Started, Vtn, adapter_config
from tests.support import RecordingSink

# openleadr's VTN stores itself under a plain string key in its aiohttp app.
pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")


def hour(value: float, start: datetime | None = None) -> dict[str, object]:
    return {"dtstart": start or datetime.now(UTC) + timedelta(minutes=5), "duration": timedelta(hours=1),
            "signal_payload": value}  # fmt: skip


async def test_registration_and_event_present_at_start(vtn: Vtn) -> None:
    event_id = vtn.add_event("SIMPLE", "level", [hour(2)], target={"resource_id": "site-a"})
    adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=SystemClock(), fleet=FixedFleet())
    sink = RecordingSink()
    await adapter.start(sink)
    try:
        assert [r["ven_name"] for r in vtn.registrations] == ["gateway"]
        assert adapter.ven.ven_id == VEN_ID
        assert adapter.health().ok
        # start() returns after the initial oadrRequestEvent: the event is already translated and answered.
        [(directive, signal)] = sink.submitted
        assert directive.id == f"oa2.{event_id}.0.0"
        assert directive.controls == Controls(import_limit_w=11_000)  # level 2 = half of 22 kW
        assert directive.target == SITE_A
        assert signal.protocol is SourceProtocol.OPENADR2B
        assert signal.signal_id == event_id
        assert signal.size > 0
        assert len(signal.digest) == 64
        assert await vtn.opt(event_id) == "optIn"
    finally:
        await adapter.stop()


async def test_polled_events_opt_in_and_out_and_cancel(vtn: Vtn, started: Started) -> None:
    adapter, sink = started
    capacity = vtn.add_event("LOAD_CONTROL", "x-loadControlCapacity", [hour(0.25)])
    assert await vtn.opt(capacity) == "optIn"
    await sink.wait(lambda: len(sink.submitted) == 1, timeout_s=WAIT_S)
    assert sink.submitted[0][0].controls == Controls(import_limit_w=5_500)

    # 50 kW setpoint (itemBase powerReal, scale k): beyond the 22 kW online, so the VEN opts out and submits nothing.
    measurement = dataclasses.replace(enums.MEASUREMENTS.REAL_POWER, scale="k")
    start = datetime.now(UTC) + timedelta(minutes=5)
    signal = objects.EventSignal(intervals=[objects.Interval(start, timedelta(hours=1), 50.0, 0)],
                                 signal_name="LOAD_DISPATCH", signal_type="setpoint", signal_id="sig-1",
                                 measurement=measurement)  # fmt: skip
    dispatch = objects.Event(
        event_descriptor=objects.EventDescriptor("ev-dispatch", 0, "oadr://flex", "far"),
        event_signals=[signal], targets=[{"ven_id": VEN_ID}],
        active_period=objects.ActivePeriod(start, timedelta(hours=1)),
    )  # fmt: skip
    assert vtn.add_raw_event(dispatch) == "ev-dispatch"
    assert await vtn.opt("ev-dispatch") == "optOut"
    assert adapter.opts["ev-dispatch"].code == "beyond_capacity"
    assert [code for _, _, code in sink.rejected] == ["beyond_capacity"]
    assert len(sink.submitted) == 1

    vtn.server.cancel_event(VEN_ID, capacity)
    await sink.wait(lambda: len(sink.cancelled) == 1, timeout_s=WAIT_S)
    assert sink.cancelled[0][0] == f"oa2.{capacity}.0.0"
    assert adapter.opts[capacity].opt is Opt.IN


async def test_unsupported_signal_is_declined_and_audited(vtn: Vtn, started: Started) -> None:
    _, sink = started
    event_id = vtn.add_event("CHARGE_STATE", "setpoint", [hour(80)])
    assert await vtn.opt(event_id) == "optOut"
    await sink.wait(lambda: bool(sink.rejected), timeout_s=WAIT_S)
    [(signal, reason, code)] = sink.rejected
    assert code == "unsupported_control"
    assert "CHARGE_STATE" in reason
    assert signal.signal_id == event_id
    assert sink.submitted == []


async def test_price_event(vtn: Vtn, started: Started) -> None:
    _, sink = started
    event_id = vtn.add_event("ELECTRICITY_PRICE", "price", [hour(0.31)])
    assert await vtn.opt(event_id) == "optIn"
    await sink.wait(lambda: bool(sink.submitted), timeout_s=WAIT_S)
    price = sink.submitted[0][0].controls.price
    assert price is not None
    assert price.per_kwh == pytest.approx(0.31)
    assert price.currency == "USD"


async def test_reports_reach_the_vtn(vtn: Vtn, started: Started) -> None:
    seen: dict[str, list[float]] = {}
    while len(seen) < 2:
        resource, measurement, values = await vtn.report()
        assert resource == "site-a"
        seen[measurement] = [value for _, value in values]
    assert seen["RealPower"] == [7_400.0]  # TELEMETRY_USAGE: the fleet's current import, W
    assert seen["Status"] == [1.0]  # TELEMETRY_STATUS: share of the stations online
