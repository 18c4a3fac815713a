"""The VEN adapter against the VTN counterpart over real HTTP on 127.0.0.1, for 3.0.1 and 3.1.0."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.clock import ManualClock
from gateway.interfaces import DirectiveEvent, DirectiveEventKind
from protocols.openadr3.spec import OpenAdrVersion
from protocols.openadr3.vtn import Vtn
from tests.openadr3.conftest import StartAdapter, Ticker, event_body, make_program

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
KW = [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}]


async def test_registration_and_first_poll(vtn: Vtn, start_adapter: StartAdapter) -> None:
    program = await make_program(vtn)
    await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    adapter, sink = await start_adapter()
    assert [v["venName"] for v in vtn.objects("vens")] == ["gateway-ven"]
    assert [(r["resourceName"], r["venID"]) for r in vtn.objects("resources")] == [("site-a", adapter.ven_id)]
    (directive,) = sink.directives().values()
    assert directive.controls.import_limit_w == 7500
    assert adapter.health().ok
    # A restart finds the VEN and resource already registered.
    await adapter.stop()
    again, _ = await start_adapter()
    assert len(vtn.objects("vens")) == 1
    assert len(vtn.objects("resources")) == 1
    assert again.ven_id == adapter.ven_id


async def test_token_refresh_by_clock_and_after_401(vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock) -> None:
    await make_program(vtn)
    adapter, _ = await start_adapter()
    fetched = adapter.client.tokens_fetched
    assert fetched == 1
    await adapter.poll_once()
    assert adapter.client.tokens_fetched == 1
    clock.advance(600 - 10)  # inside the refresh margin of a 600 s token
    await adapter.poll_once()
    assert adapter.client.tokens_fetched == 2
    vtn.revoke_tokens()
    await adapter.poll_once()
    assert adapter.client.tokens_fetched == 3
    assert any(ex.status in (401, 403) for ex in vtn.exchanges)


async def test_poll_sees_new_changed_and_deleted_events(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    adapter, sink = await start_adapter()
    assert sink.submitted == []
    event = await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    await adapter.poll_once()
    (first,) = sink.submitted
    assert first[1].signal_id == event["id"]
    await adapter.poll_once()
    assert len(sink.submitted) == 1  # unchanged: nothing resubmitted
    two = event_body(vtn, program["id"], [{"type": "IMPORT_CAPACITY_LIMIT", "values": [3]}], payloadDescriptors=KW)
    two["intervals"] = [*two["intervals"], {"id": 1, "payloads": [{"type": "EXPORT_CAPACITY_LIMIT", "values": [1]}]}]
    await vtn.update("events", event["id"], two)
    await adapter.poll_once()
    ids = [d.id for d, _ in sink.submitted[1:]]
    assert ids == [first[0].id, ids[1]]
    assert sink.directives()[first[0].id].controls.import_limit_w == 3000
    await vtn.delete("events", event["id"])
    await adapter.poll_once()
    assert sorted(c for c, _, _ in sink.cancelled) == sorted(ids)


async def test_poll_loop_runs_on_the_injected_sleep(vtn: Vtn, start_adapter: StartAdapter) -> None:
    from tests.openadr3.conftest import Ticker

    program = await make_program(vtn)
    ticker = Ticker()
    _adapter, sink = await start_adapter(sleep=ticker.sleep)
    await vtn.create("events", event_body(vtn, program["id"], LIMIT))
    before = len(vtn.exchanges)
    ticker.tick()
    for _ in range(200):  # yield to the loop until its poll has gone through (no wall-clock waiting)
        if sink.submitted:
            break
        await __import__("asyncio").sleep(0)
    assert len(vtn.exchanges) > before
    assert sink.submitted


async def test_unknown_payload_is_rejected_not_fatal(vtn: Vtn, start_adapter: StartAdapter) -> None:
    program = await make_program(vtn)
    payloads = [{"type": "GHG", "values": [400]}, *LIMIT]
    await vtn.create("events", event_body(vtn, program["id"], payloads))
    adapter, sink = await start_adapter()
    assert [code for _, _, code in sink.rejected] == ["unknown_payload_type"]
    assert "GHG" in sink.rejected[0][1]
    assert len(sink.submitted) == 1
    assert adapter.health().ok


async def test_webhook_subscription_echo_bearer_and_tolerant_bodies(vtn: Vtn, start_adapter: StartAdapter) -> None:
    program = await make_program(vtn)
    vtn.notify_double_encoded = True
    vtn.notify_snake_case = True
    adapter, sink = await start_adapter(webhook={"bearer_token": "callback-token-0123456789"})
    (sub,) = vtn.objects("subscriptions")
    assert sub["objectOperations"][0]["bearerToken"] == "callback-token-0123456789"
    event = await vtn.create("events", event_body(vtn, program["id"], LIMIT))
    # Delivered during create (the VTN awaits the webhook): no poll needed.
    assert [d.status for d in vtn.deliveries] == [200]
    assert vtn.deliveries[0].body.startswith(b'"')  # double-encoded
    assert b"program_id" in vtn.deliveries[0].body
    assert [s.signal_id for _, s in sink.submitted] == [event["id"]]
    await vtn.delete("events", event["id"])
    assert [c for c, _, _ in sink.cancelled] == [sink.submitted[0][0].id]
    # A caller without the bearer token is refused.
    callback = sub["objectOperations"][0]["callbackUrl"]
    async with aiohttp.ClientSession() as http:
        async with http.post(callback, json={"objectType": "EVENT"}) as response:
            assert response.status == 401
        async with http.post(callback, data=b"{", headers={"Authorization": "Bearer callback-token-0123456789"}) as r:
            assert r.status == 400
            assert "not JSON" in (await r.json())["detail"]
    assert adapter.subscriptions


async def test_completed_directive_is_reported(vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock) -> None:
    program = await make_program(vtn)
    wanted = ["USAGE", "DEMAND", "READING", "OPERATING_STATE", "STORAGE_CHARGE_LEVEL", "STORAGE_MAX_CHARGE_POWER",
              "STORAGE_MAX_DISCHARGE_POWER", "SIMPLE_LEVEL", "DATA_QUALITY"]  # fmt: skip
    descriptors = [{"payloadType": p} for p in wanted]
    await vtn.create("events", event_body(vtn, program["id"], LIMIT, reportDescriptors=descriptors))
    adapter, sink = await start_adapter()
    (directive,) = sink.directives().values()
    clock.advance(7200)
    await adapter.directive_event(DirectiveEvent(directive.id, DirectiveEventKind.COMPLETED, clock.now()))
    assert adapter.report_errors == []
    (report,) = vtn.reports
    assert [(what, directive_id) for what, _, directive_id in sink.upstream] == [("report", directive.id)]
    (resource,) = report["resources"]
    values = {p["type"]: p["values"][0] for p in resource["intervals"][0]["payloads"]}
    assert values == {
        "USAGE": 5.5, "DEMAND": 11.0, "READING": 123.456, "OPERATING_STATE": "RUNNING_CURTAILED",
        "STORAGE_CHARGE_LEVEL": 0.6, "STORAGE_MAX_CHARGE_POWER": 22.0, "STORAGE_MAX_DISCHARGE_POWER": 11.0,
        "SIMPLE_LEVEL": 1, "DATA_QUALITY": "OK",
    }  # fmt: skip
    assert resource["intervalPeriod"] == {"start": "2025-06-01T13:00:00Z", "duration": "PT3600S"}
    if vtn.version is OpenAdrVersion.V3_0_1:
        assert report["programID"] == program["id"]
    else:
        assert "programID" not in report


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "body is not JSON"),
        (b'{"programName": 5}', "programName: 5 is not of type 'string'"),
        (b"{}", "'programName' is a required property"),
        (b'{"programName": "p", "intervalPeriod": {"start": "2025-06-01T00:00:00Z", "duration": "1h"}}',
         "intervalPeriod/duration: '1h' does not match"),
    ],
)  # fmt: skip
async def test_vtn_refuses_bad_bodies_precisely(vtn: Vtn, body: bytes, expected: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{vtn.url}/auth/token", data={"grant_type": "client_credentials",
                             "client_id": "bl", "client_secret": "bl-secret"}) as r:  # fmt: skip
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with http.post(f"{vtn.url}/programs", data=body, headers=headers) as response:
            assert response.status == 400
            problem = await response.json()
    assert expected in problem["detail"]
    assert problem["status"] == 400


async def test_vtn_refuses_bad_credentials_tokens_and_oversized_bodies(vtn: Vtn, clock: ManualClock) -> None:
    async with aiohttp.ClientSession() as http:
        form = {"grant_type": "client_credentials", "client_id": "ven-1", "client_secret": "wrong"}
        async with http.post(f"{vtn.url}/auth/token", data=form) as r:
            assert r.status == (401 if vtn.version is OpenAdrVersion.V3_1_0 else 403)
        async with http.post(f"{vtn.url}/auth/token", data={**form, "grant_type": "password"}) as r:
            assert r.status == 400
            assert (await r.json())["error"] == "unsupported_grant_type"
        refused = 401 if vtn.version is OpenAdrVersion.V3_1_0 else 403
        async with http.get(f"{vtn.url}/programs", headers={"Authorization": "Bearer nope"}) as r:
            assert r.status == refused
        form["client_secret"] = "ven-secret-1"
        async with http.post(f"{vtn.url}/auth/token", data=form) as r:
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{vtn.url}/programs", params={"limit": "51"}, headers=headers) as r:
            assert r.status == 400
            assert "limit" in (await r.json())["detail"]
        big = b'{"programName": "' + b"x" * 1_100_000 + b'"}'
        async with http.post(f"{vtn.url}/programs", data=big, headers=headers) as r:
            assert r.status == 413
        clock.advance(601)
        async with http.get(f"{vtn.url}/programs", headers=headers) as r:
            assert r.status == refused


async def test_vtn_failing_keeps_directives_and_polling_backs_off_then_recovers(
    vtn: Vtn, start_adapter: StartAdapter
) -> None:
    class Recording(Ticker):
        """Each wait the loop asks for, in order, for the test to await."""

        def __init__(self) -> None:
            super().__init__()
            self.waits: asyncio.Queue[float] = asyncio.Queue()

        async def sleep(self, seconds: float) -> None:
            self.waits.put_nowait(seconds)
            await super().sleep(seconds)

    program = await make_program(vtn)
    await vtn.create("events", event_body(vtn, program["id"], LIMIT))
    ticker = Recording()
    adapter, sink = await start_adapter(sleep=ticker.sleep)
    assert len(sink.submitted) == 1
    assert await ticker.waits.get() == 30
    # 401 and 403 too: the one retry with a fresh token meets the same answer (the token endpoint fails as well).
    for status, wait in ((503, 60), (401, 120), (403, 240), (404, 480), (409, 600), (500, 600), (504, 600)):
        vtn.outage = status
        ticker.tick()
        assert await ticker.waits.get() == wait  # doubled each time, at most 10 minutes
        assert not adapter.health().ok
        assert str(status) in (adapter.health().detail or "")
    assert adapter.poll_failures == 7
    assert sink.cancelled == []  # nothing received is withdrawn while the VTN cannot be read
    assert len(sink.submitted) == 1
    vtn.outage = None
    ticker.tick()
    assert await ticker.waits.get() == 30  # back to the normal interval once a poll succeeds
    assert adapter.health().ok
    assert adapter.poll_failures == 0
    assert sink.cancelled == []
    assert len(sink.submitted) == 1  # the same event again: nothing new to submit


async def test_a_poll_loop_that_stalls_is_not_healthy(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    """/readyz asks that each utility link was seen within its poll window: no successful poll for three poll
    waits (here 3 x 30 s) makes the link unhealthy, the next poll healthy again."""
    polled: asyncio.Queue[float] = asyncio.Queue()
    ticker = Ticker()

    async def sleep(seconds: float) -> None:
        polled.put_nowait(seconds)
        await ticker.sleep(seconds)

    adapter, _ = await start_adapter(sleep=sleep)
    assert await polled.get() == 30
    clock.advance(90)
    assert adapter.health().ok
    clock.advance(1)
    health = adapter.health()
    assert not health.ok
    assert "no successful poll for 0:01:30" in health.detail
    ticker.tick()
    await polled.get()  # the loop polled again and waits for the next one
    assert adapter.health().ok
