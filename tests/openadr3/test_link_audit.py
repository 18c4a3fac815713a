"""OpenADR 3 link failures in the audit log, over real HTTP on 127.0.0.1 (3.0.1 and 3.1.0): a VTN that stays down
writes one `upstream.failed` per jittered backoff attempt and the link recovers; a failed token fetch, a report the
VTN refuses and reports lost at stop are audited too. Backoff runs on the injected clock, sleep and random source."""

from __future__ import annotations

from pathlib import Path

from gateway.audit.report import build_report
from gateway.clock import ManualClock
from gateway.interfaces import UpstreamDrop
from gateway.model import SourceProtocol
from gateway.runtime import Gateway
from gateway.utility import FleetView, RuntimeSink
from protocols.ocpp.simulator import ManualClock as SimClock
from protocols.openadr3.adapter import OpenAdr3Adapter, OpenAdr3Config
from protocols.openadr3.vtn import Vtn
from tests.openadr3.conftest import T0, StartAdapter, event_body, make_program
from tests.support import Stepper, make_config, station_configs

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
KW = [{"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}]


async def test_a_vtn_that_stays_down_is_audited_once_per_jittered_backoff_and_the_link_recovers(
    vtn: Vtn, tmp_path: Path
) -> None:
    clock = SimClock(T0)
    program = await make_program(vtn)
    await vtn.create("events", event_body(vtn, program["id"], LIMIT, payloadDescriptors=KW))
    stepper = Stepper()
    config = OpenAdr3Config.model_validate(
        {"vtn_url": vtn.url, "version": vtn.version, "client_id": "ven-1", "client_secret": "ven-secret-1",
         "ven_name": "gateway-ven"}
    )  # fmt: skip

    def make(view: FleetView) -> OpenAdr3Adapter:
        # rand 0.5: equal jitter waits three quarters of each backoff (half fixed, half of the spread).
        return OpenAdr3Adapter(config, clock=clock, fleet=view, sleep=stepper.sleep, rand=lambda: 0.5)

    gw = Gateway.build(make_config(tmp_path, station_configs(("EV-1",))), clock=clock, adapters=[make])
    await gw.start()
    try:
        assert await stepper.next() == 30
        await vtn.stop()  # connections refused
        waits = []
        clock.advance(30)
        stepper.release()
        for _ in range(6):
            waits.append(await stepper.next())
            clock.advance(waits[-1])
            stepper.release()
        assert waits == [45, 90, 180, 360, 450, 450]  # 0.75 x (60, 120, 240, 480, 600, 600)
        await stepper.next()
        failed = gw.audit.query(kind="upstream.failed")
        assert len(failed) == 7  # one per attempt, none in between
        assert [e.data["attempt"] for e in failed] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.data["retry_in_s"] for e in failed] == [*waits, 450]
        first = failed[0].data
        assert (first["link"], first["server"], first["operation"], first["status"]) == (
            "openadr3", vtn.url, "poll", None
        )  # fmt: skip
        assert first["error"] == "ClientConnectorError"
        assert vtn.url.split("//")[1] in first["detail"]
        assert [e.at for e in failed] == sorted({e.at for e in failed})
        assert not gw.adapters[0].health().ok

        await vtn.start()  # same port
        clock.advance(450)
        stepper.release()
        assert await stepper.next() == 30  # back to the poll interval, no jitter on a healthy link
        assert gw.adapters[0].health().ok
        clock.advance(30)
        stepper.release()
        await stepper.next()
        assert len(gw.audit.query(kind="upstream.failed")) == 7
        [record] = gw.store.directives()
        assert record.directive.source.protocol is SourceProtocol.OPENADR3  # kept through the outage

        # The same sink writes a dropped report with its directive, as an auditor reads it.
        drop = UpstreamDrop(SourceProtocol.OPENADR3, vtn.url, "report", "refused", "HTTP 422", 422,
                            directive_id=record.directive.id)  # fmt: skip
        RuntimeSink(gw.dispatcher, gw.audit, clock).upstream_dropped(drop)
        [entry] = gw.audit.query(kind="upstream.dropped")
        assert entry.directive_id == record.directive.id
        assert dict(entry.data) == {"link": "openadr3", "server": vtn.url, "what": "report", "reason": "refused",
                                    "status": 422, "detail": "HTTP 422", "count": 1}  # fmt: skip
        report = build_report(record.directive.id, gw.audit.trail(record.directive.id))
        assert [e.kind for e in report.upstream] == ["upstream.dropped"]  # in the directive's compliance summary
    finally:
        await gw.stop()


async def test_a_failed_token_fetch_is_audited_as_token_with_its_status(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep)
    assert await stepper.next() == 30

    async def token_endpoint_fails(method: str, path: str) -> None:
        vtn.outage = 503 if path == "/auth/token" else None

    vtn.revoke_tokens()  # the next API call gets 401 (3.0.1: 403), then the token fetch fails
    vtn.before_request = token_endpoint_fails
    clock.advance(30)
    stepper.release()
    assert await stepper.next() == 60
    [failure] = sink.failures
    assert (failure.operation, failure.status, failure.error, failure.attempt) == (
        "token", 503, "OpenAdrHttpError", 1
    )  # fmt: skip
    assert failure.retry_in_s == 60
    vtn.before_request = None
    vtn.outage = None
    clock.advance(60)
    stepper.release()
    assert await stepper.next() == 30
    assert adapter.health().ok
    assert len(sink.failures) == 1


async def test_registration_failures_are_audited_as_register(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    async def refuse_vens(method: str, path: str) -> None:
        vtn.outage = 500 if path.startswith("/vens") else None

    vtn.before_request = refuse_vens
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep)
    assert await stepper.next() == 60
    [failure] = sink.failures
    assert (failure.operation, failure.status, failure.attempt, failure.retry_in_s) == ("register", 500, 1, 60)
    vtn.before_request = None
    vtn.outage = None
    clock.advance(60)
    stepper.release()
    assert await stepper.next() == 30
    assert adapter.connected


async def test_refused_and_undelivered_reports_are_audited_as_dropped(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    for start in ("12:00", "12:05"):  # reports due at 12:05 and 12:10
        body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[{"payloadType": "USAGE"}])
        body["intervalPeriod"] = {"start": f"2025-06-01T{start}:00Z", "duration": "PT5M"}
        await vtn.create("events", body)
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)

    async def refuse_reports(method: str, path: str) -> None:
        vtn.outage = 422 if path == "/reports" else None

    vtn.before_request = refuse_reports
    assert await stepper.step(clock) == 300  # 12:05: the first report is refused for good
    assert await stepper.next() == 300  # asleep until the second is due
    [drop] = sink.drops
    assert (drop.what, drop.reason, drop.status, drop.protocol) == ("report", "refused", 422, SourceProtocol.OPENADR3)
    assert drop.directive_id in sink.directives()
    assert sink.failures == []  # a refusal is not retried, so not a failed attempt

    vtn.before_request = None
    await vtn.stop()
    clock.advance(300)
    stepper.release()  # 12:10: the second report fails and waits for a retry
    assert await stepper.next() == 6600  # the next poll (14:00) comes before the retry (14:10)
    assert len(adapter.outbox) == 1
    [failure] = sink.failures
    assert (failure.operation, failure.attempt, failure.retry_in_s) == ("report", 1, 7200)
    await adapter.stop()  # the waiting report is lost with the process: said so in the audit
    assert [(d.reason, d.directive_id is not None) for d in sink.drops[1:]] == [("stopped", True)]
