"""IEEE 2030.5 link failures reach the audit seam, over real TLS on 127.0.0.1: a server that stays down gives one
`upstream.failed` per attempt of each resource on its jittered backoff and the link recovers; a report the server
refuses for good is dropped (`upstream.dropped`) instead of blocking the ones behind it."""

from __future__ import annotations

from datetime import timedelta

from gateway.certs import DevPki
from gateway.model import SourceProtocol
from tests.ieee2030_5.conftest import Link, make_link, scenario
from tests.ieee2030_5.test_der_reports import FakeFleet


async def test_a_server_that_stays_down_is_audited_once_per_jittered_attempt_and_recovers(link: Link) -> None:
    await link.adapter.run_due()
    assert link.adapter.health().ok
    assert link.sink.failures == []
    link.adapter.plan.rand = lambda: 0.5  # equal jitter: three quarters of each backoff
    await link.server.stop()
    key = "programs:site1"
    for _ in range(6):
        link.clock.advance(max(0.0, (link.adapter.plan.due_at(key) - link.clock.now()).total_seconds()))
        await link.adapter.run_due()
    polls = [f for f in link.sink.failures if f.operation == "poll"]
    assert [f.attempt for f in polls] == [1, 2, 3, 4, 5, 6]  # one entry per attempt, none in between
    assert [f.retry_in_s for f in polls] == [1.5, 3, 6, 12, 24, 48]  # 0.75 x 2, 4, 8 ...
    assert link.adapter.plan.due_at(key) == link.clock.now() + timedelta(seconds=48)
    first = polls[0]
    assert (first.protocol, first.server, first.error, first.status) == (
        SourceProtocol.IEEE2030_5, f"https://127.0.0.1:{link.port}", "http.connect", None
    )  # fmt: skip
    assert first.detail.startswith(f"{key}: GET ")
    assert link.sink.cancelled == []

    await link.restart()
    link.clock.advance(48)
    audited = len(link.sink.failures)
    await link.adapter.run_due()
    assert link.adapter.health().ok
    assert len(link.sink.failures) == audited


async def test_a_report_refused_for_good_is_dropped_and_the_next_goes(pki: DevPki) -> None:
    made = await make_link(pki, scenario())
    try:
        made.adapter.fleet = FakeFleet()
        made.server.fail("/edev/1/der/1/ders", 400)  # the DERStatus PUT is refused
        await made.adapter.run_due()
        [drop] = made.sink.drops
        assert (drop.what, drop.reason, drop.status) == ("DERStatus", "refused", 400)
        assert drop.detail.startswith("PUT /edev/1/der/1/ders: ")
        assert made.adapter.pending_reports() == 0  # the documents behind it were delivered
        assert [p for p, _ in made.server.meter_readings()] == ["/mup/1"]
        assert made.sink.failures == []  # refused is not retried, so not a failed attempt
    finally:
        await made.adapter.stop()
        await made.server.stop()


async def test_a_report_that_cannot_be_delivered_is_a_failed_attempt_and_kept(pki: DevPki) -> None:
    made = await make_link(pki, scenario())
    try:
        made.adapter.fleet = FakeFleet()
        made.server.fail("/edev/1/der/1/ders", 503)
        await made.adapter.run_due()
        [failure] = made.sink.failures
        assert (failure.operation, failure.status, failure.error, failure.attempt) == ("report", 503, "http.5xx", 1)
        assert failure.retry_in_s is None  # the next run sends it
        assert made.adapter.pending_reports() > 0
        made.clock.advance(60)
        await made.adapter.run_due()
        assert made.adapter.pending_reports() == 0
        assert made.adapter.report_failures == 0
        assert made.sink.drops == []
    finally:
        await made.adapter.stop()
        await made.server.stop()
