"""OpenADR 3 faults over real HTTP on 127.0.0.1, for 3.0.1 and 3.1.0: malformed events and bodies, a VTN that is
down (stopped, then started again on the same port), failed report POSTs, a registration conflict (409), stale and
duplicate events. Backoff runs on the injected clock and sleep (`Stepper`); nothing waits on wall time. Every
exchange not broken on purpose is checked against the OpenAPI definition by the `vtn` fixture; those broken on
purpose are shown not to conform."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from typing import Any

import aiohttp

from gateway.clock import ManualClock
from protocols.openadr3.spec import OpenAdrVersion, validate
from protocols.openadr3.vtn import Vtn
from tests.openadr3.conftest import T0, StartAdapter, conformance_errors, event_body, make_program
from tests.support import Stepper

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
KW = [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}]


def codes(rejected: list[Any]) -> list[str]:
    return [str(code) for _, _, code in rejected]


async def test_malformed_events_are_refused_once_and_the_rest_is_kept(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    good = await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep)
    [(kept, _)] = sink.submitted
    assert await stepper.next() == 30

    # A schema-invalid event (the VTN stored it unchecked), and a valid one with an unknown payload type and a
    # payload in units that are not power, next to one it can follow.
    invalid = {**event_body(vtn, program["id"], LIMIT), "id": "broken", "intervalPeriod": {"start": "yesterday"}}
    vtn.store_raw("events", invalid)
    mixed_payloads = [
        {"type": "GHG", "values": [400]},
        {"type": "IMPORT_CAPACITY_LIMIT", "values": [3]},
        {"type": "EXPORT_CAPACITY_LIMIT", "values": [2]},
    ]
    descriptors = [
        {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KWH"},
        {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "EXPORT_CAPACITY_LIMIT", "units": "KW"},
    ]
    mixed = await vtn.create("events", event_body(vtn, program["id"], mixed_payloads, payloadDescriptors=descriptors))
    clock.advance(30)
    stepper.release()
    assert await stepper.next() == 30  # the poll succeeded: no backoff, polling continues
    assert sorted(codes(sink.rejected)) == ["invalid_event", "unknown_payload_type", "unsupported_units"]
    [invalid_signal] = [s for s, _, code in sink.rejected if code == "invalid_event"]
    assert invalid_signal.signal_id == "broken"
    assert invalid_signal.digest == hashlib.sha256(json.dumps(invalid, sort_keys=True, separators=(",", ":"))
                                                   .encode()).hexdigest()  # fmt: skip
    assert all(s.signal_id == mixed["id"] for s, _, code in sink.rejected if code != "invalid_event")
    [(export, _)] = sink.submitted[1:]
    assert export.controls.export_limit_w == 2000
    assert sink.cancelled == []
    assert adapter.health().ok

    # The event that was followed turns invalid: refused, and what it asked for stays in force.
    vtn.store_raw("events", {**good, "intervals": "none"})
    for _ in range(2):
        clock.advance(30)
        stepper.release()
        assert await stepper.next() == 30
    assert codes(sink.rejected).count("invalid_event") == 2  # each version once, not on every poll
    assert sink.cancelled == []
    assert kept.id in sink.directives()

    # A body that is not JSON: audited with its digest, the poll counts as failed (backoff), nothing withdrawn.
    garbage = b'[{"id": "ev'
    vtn.garble["/events"] = garbage
    clock.advance(30)
    stepper.release()
    assert await stepper.next() == 60
    [(signal, reason, _)] = [r for r in sink.rejected if r[2] == "invalid_response"]
    assert signal.digest == hashlib.sha256(garbage).hexdigest()
    assert "not JSON" in reason
    assert not adapter.health().ok
    assert sink.cancelled == []
    del vtn.garble["/events"]
    clock.advance(60)
    stepper.release()
    assert await stepper.next() == 30
    assert adapter.health().ok
    assert sink.cancelled == []
    # The answers broken on purpose are what the definition forbids (so the check would have caught them).
    tampered = [ex for ex in vtn.exchanges if ex.tampered]
    assert tampered
    assert len(conformance_errors(vtn, tampered)) == len(tampered)


async def test_vtn_down_keeps_the_schedule_backs_off_and_recovers_on_the_same_port(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep)
    url = vtn.url
    assert await stepper.next() == 30
    await vtn.stop()  # connections are refused
    waits: list[float] = []
    for _ in range(6):
        clock.advance(waits[-1] if waits else 30)
        stepper.release()
        waits.append(await stepper.next())
    assert waits == [60, 120, 240, 480, 600, 600]  # doubled each time, at most 10 minutes
    assert not adapter.health().ok
    assert "connect" in adapter.health().detail.lower()
    assert sink.cancelled == []  # the schedule is kept
    assert len(sink.submitted) == 1
    await vtn.start()
    assert vtn.url == url
    later = await vtn.create("events", event_body(vtn, program["id"], [{"type": "EXPORT_CAPACITY_LIMIT",
                                                                         "values": [1]}]))  # fmt: skip
    clock.advance(600)
    stepper.release()
    assert await stepper.next() == 30
    assert adapter.health().ok
    assert adapter.poll_failures == 0
    assert [s.signal_id for _, s in sink.submitted][1:] == [later["id"]]
    assert sink.cancelled == []


async def test_vtn_down_at_start_registers_when_it_comes_back(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    event = await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    await vtn.stop()
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep)  # returns: the gateway runs without the link
    assert not adapter.connected
    assert not adapter.health().ok
    assert await stepper.next() == 60
    clock.advance(60)
    stepper.release()
    assert await stepper.next() == 120
    await vtn.start()
    clock.advance(120)
    stepper.release()
    assert await stepper.next() == 30
    assert adapter.health().ok
    [ven] = vtn.objects("vens")
    assert (ven["venName"], ven["id"]) == ("gateway-ven", adapter.ven_id)
    assert [s.signal_id for _, s in sink.submitted] == [event["id"]]


async def test_failed_report_posts_wait_and_are_delivered_when_the_vtn_is_back(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[{"payloadType": "USAGE"}])
    body["intervalPeriod"] = {"start": "2025-06-01T12:00:00Z", "duration": "PT5M"}  # report due at 12:05
    event = await vtn.create("events", body)
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep, poll_interval_s=60)
    for _ in range(4):
        await stepper.step(clock)  # polls at 12:01 ... 12:04
    assert clock.now() == T0 + timedelta(minutes=4)
    assert await stepper.next() == 60  # asleep after the 12:04 poll
    await vtn.stop()
    clock.advance(60)
    stepper.release()  # 12:05: the poll fails, then the report's POST: it waits in the outbox, retry at 12:06
    waits = [await stepper.step(clock) for _ in range(3)]  # 12:06 retry, 12:07 poll, 12:08 retry: all refused
    assert waits == [60, 60, 60]
    assert await stepper.next() == 180  # the next poll (12:11) comes before the next retry (12:12)
    assert (adapter.poll_failures, adapter.report_failures) == (2, 3)
    assert adapter.report_retry_wait_s() == 240  # retries back off like polls: 60, 120, 240 ...
    assert [p.event_id for p in adapter.outbox] == [event["id"]]
    assert adapter.reports_sent == []
    await vtn.start()
    clock.advance(180)
    stepper.release()
    assert await stepper.next() == 60  # 12:11: the poll succeeds and the outbox is delivered at once
    assert not adapter.outbox
    [report] = vtn.reports
    assert report["eventID"] == event["id"]
    assert report["resources"][0]["intervalPeriod"] == {"start": "2025-06-01T12:00:00Z", "duration": "PT300S"}
    assert [what for what, _, _ in sink.upstream] == ["report"]
    assert adapter.report_failures == 0


async def test_a_waiting_report_is_posted_once_when_two_flushes_meet(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    """The loop's retry and a completed directive may flush at the same time: each report is POSTed once."""
    program = await make_program(vtn)
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[{"payloadType": "USAGE"}])
    body["intervalPeriod"] = {"start": "2025-06-01T12:00:00Z", "duration": "PT5M"}
    await vtn.create("events", body)
    stepper = Stepper()
    adapter, _ = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)
    vtn.outage = 503
    assert await stepper.step(clock) == 300
    assert await stepper.next() == 6900  # the retry (7200 s after the failure) comes after the next poll
    assert len(adapter.outbox) == 1
    vtn.outage = None
    assert sorted(await asyncio.gather(adapter.flush_reports(), adapter.flush_reports())) == [0, 1]
    assert len(vtn.reports) == 1
    assert [ex.method for ex in vtn.exchanges if ex.path == "/reports"] == ["POST", "POST"]  # 503, then 201


async def test_report_refused_for_good_is_dropped_not_retried(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[{"payloadType": "USAGE"}])
    body["intervalPeriod"] = {"start": "2025-06-01T12:00:00Z", "duration": "PT5M"}
    await vtn.create("events", body)
    stepper = Stepper()
    adapter, _ = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)

    async def refuse_reports(method: str, path: str) -> None:
        vtn.outage = 400 if path == "/reports" else None

    vtn.before_request = refuse_reports
    assert await stepper.step(clock) == 300
    assert await stepper.next() == 6900  # the next poll: nothing is waiting to be retried
    assert len(adapter.outbox) == 0
    assert any("HTTP 400" in e for e in adapter.report_errors)
    assert vtn.reports == []


async def test_registration_conflict_looks_the_ven_up(vtn: Vtn, start_adapter: StartAdapter) -> None:
    """Another instance (or the VTN operator) creates the VEN between the VEN's lookup and its POST."""

    async def create_first(method: str, path: str) -> None:
        if (method, path) == ("POST", "/vens") and not vtn.objects("vens"):
            body: dict[str, Any] = {"venName": "gateway-ven"}
            if vtn.version is OpenAdrVersion.V3_1_0:
                body["objectType"] = "VEN_VEN_REQUEST"
            await vtn.create("vens", body)

    vtn.before_request = create_first
    adapter, _ = await start_adapter()
    [ven] = vtn.objects("vens")
    assert adapter.ven_id == ven["id"]
    conflict = 409 if vtn.version is OpenAdrVersion.V3_0_1 else 400  # 3.1.0 createVen defines no 409
    assert [ex.status for ex in vtn.exchanges if (ex.method, ex.path) == ("POST", "/vens")] == [conflict]
    assert adapter.health().ok


async def test_stale_and_duplicate_event_versions_change_nothing(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    token = "callback-token-0123456789"
    adapter, sink = await start_adapter(webhook={"bearer_token": token})
    event = await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    clock.advance(60)
    changed = event_body(vtn, program["id"], [{"type": "IMPORT_CAPACITY_LIMIT", "values": [3]}], payloadDescriptors=KW)
    await vtn.update("events", event["id"], changed)
    assert [d.controls.import_limit_w for d, _ in sink.submitted] == [7500, 3000]
    first, second = (d.body for d in vtn.deliveries)
    assert [validate(vtn.version, "notification", json.loads(b)) for b in (first, second)] == [[], []]
    callback = vtn.objects("subscriptions")[0]["objectOperations"][0]["callbackUrl"]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for late in (first, second):  # the first version arrives again late, then the current one twice
            async with http.post(callback, data=late) as response:
                assert response.status == 200
    await adapter.poll_once()
    assert [d.controls.import_limit_w for d, _ in sink.submitted] == [7500, 3000]
    assert codes(sink.rejected) == ["stale_event"]
    assert "older" in sink.rejected[0][1]
    assert sink.cancelled == []
