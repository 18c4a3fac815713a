"""The adapter against the counterpart over real TLS 1.2 with client certificates on 127.0.0.1.

Time is a ManualClock shared by both ends; the tests step the adapter with run_due(), never by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.certs import DevPki
from gateway.interfaces import AlarmReport, DirectiveEvent, DirectiveEventKind
from gateway.model import Alarm
from protocols.ieee2030_5.polling import PollPlan
from protocols.ieee2030_5.wire import ResponseStatus
from tests.ieee2030_5.conftest import SITE_LFDI, T0, Link, binding, make_link, scenario
from tests.ieee2030_5.test_hostile import LAUGHS
from tests.ieee2030_5.xsd import problems

EXPORT_1500 = {"opModExpLimW": {"value": 1500}}


def statuses(link: Link) -> list[tuple[str, int]]:
    return [(r.subject, r.status) for r in link.server.responses()]


async def test_discovery_default_and_control_with_responses(link: Link) -> None:
    mrid = link.server.create_control(1, 1, {"start_in_s": 120, "duration_s": 600, "base": EXPORT_1500})
    await link.adapter.run_due()
    assert link.adapter.health().ok
    ids = [d.id for d, _ in link.sink.submitted]
    default = next(d for d, _ in link.sink.submitted if d.is_default)
    assert default.controls.export_limit_w == 1500
    assert default.controls.import_limit_w == 15000
    control = next(d for d, _ in link.sink.submitted if not d.is_default)
    assert control.id == f"sep2:site1:{mrid}"
    assert control.start == T0 + timedelta(seconds=120)
    assert control.priority == 1
    assert len(ids) == 2
    assert statuses(link) == [(mrid, ResponseStatus.RECEIVED)]
    # The runtime reports progress; the adapter answers the control's replyTo.
    await link.adapter.directive_event(DirectiveEvent(control.id, DirectiveEventKind.STARTED, T0))
    await link.adapter.directive_event(DirectiveEvent(control.id, DirectiveEventKind.COMPLETED, T0))
    assert statuses(link)[1:] == [(mrid, ResponseStatus.STARTED), (mrid, ResponseStatus.COMPLETED)]
    for received in link.server.received:
        assert problems(received.body) == [], received.root
        assert received.client_lfdi is not None


async def test_unchanged_resources_are_read_conditionally_and_not_resubmitted(link: Link) -> None:
    link.server.create_control(1, 1, {"start_in_s": 60, "base": EXPORT_1500})
    await link.adapter.run_due()
    submitted = len(link.sink.submitted)
    link.clock.advance(60)
    await link.adapter.run_due()
    assert link.adapter.client.not_modified > 0
    assert len(link.sink.submitted) == submitted
    assert any(status == 304 for _, _, status in link.server.requests)


async def test_paging_reads_every_control(pki: DevPki) -> None:
    link = await make_link(pki, scenario(), page_limit=1)
    try:
        for i in range(3):
            link.server.create_control(1, 1, {"start_in_s": 60 * (i + 1), "base": EXPORT_1500})
        await link.adapter.run_due()
        assert len([d for d, _ in link.sink.submitted if not d.is_default]) == 3
        pages = [p for _, p, _ in link.server.requests if p.startswith("/edev/1/derp/1/derc?")]
        assert pages == ["/edev/1/derp/1/derc?s=0&l=1", "/edev/1/derp/1/derc?s=1&l=1", "/edev/1/derp/1/derc?s=2&l=1"]
    finally:
        await link.adapter.stop()
        await link.server.stop()


async def test_change_cancel_and_supersede(link: Link) -> None:
    a = link.server.create_control(1, 1, {"start_in_s": 60, "base": EXPORT_1500})
    b = link.server.create_control(1, 1, {"start_in_s": 60, "base": EXPORT_1500, "randomize_duration": 30})
    c = link.server.create_control(1, 1, {"start_in_s": 60, "base": EXPORT_1500})
    await link.adapter.run_due()
    link.server.change_control(a, base={"opModExpLimW": {"value": 500}})
    link.server.cancel_control(b, randomized=True)
    link.server.supersede_control(c)
    link.clock.advance(60)
    await link.adapter.run_due()
    changed = [d for d, _ in link.sink.submitted if d.id.endswith(a)]
    assert [d.controls.export_limit_w for d in changed] == [1500, 500]
    assert [(i.rsplit(":", 1)[1], r) for i, _, r in link.sink.cancelled] == [(b, 30), (c, 0)]
    assert [i.rsplit(":", 1)[1] for i in link.sink.superseded] == [c]
    assert (b, ResponseStatus.CANCELLED) in statuses(link)
    assert (c, ResponseStatus.SUPERSEDED) in statuses(link)


async def test_invalid_control_is_rejected_and_answered(link: Link) -> None:
    mrid = link.server.create_control(
        1, 1, {"start_in_s": 60, "base": {"opModImpLimW": {"value": 30000, "multiplier": 3}}}
    )
    await link.adapter.run_due()
    assert not [d for d, _ in link.sink.submitted if d.id.endswith(mrid)]
    signal, reason, code = link.sink.rejected[0]
    assert (signal.signal_id, code) == (mrid, "value.range")
    assert "import_limit_w" in reason
    assert (mrid, ResponseStatus.REJECTED_INVALID) in statuses(link)


async def test_registration_when_the_server_does_not_list_us(pki: DevPki) -> None:
    link = await make_link(
        pki,
        scenario(registered=False, pin=None),
        devices=(binding(),),
    )
    try:
        await link.adapter.run_due()
        assert [r.root for r in link.server.received][:1] == ["EndDevice"]
        assert link.adapter.devices["site1"].end_device.lfdi == SITE_LFDI
        assert any(d.is_default for d, _ in link.sink.submitted)
    finally:
        await link.adapter.stop()
        await link.server.stop()


async def test_wrong_registration_pin_stops_that_device(pki: DevPki) -> None:
    link = await make_link(pki, scenario(pin=999999))
    try:
        await link.adapter.run_due()
        assert link.sink.submitted == []
        assert link.sink.rejected[0][2] == "registration.pin"
        assert not link.adapter.health().ok
    finally:
        await link.adapter.stop()
        await link.server.stop()


async def test_http_errors_back_off_and_recover(link: Link) -> None:
    link.server.fail("/dcap", 503, times=3)
    for expected in (2, 4, 8):
        await link.adapter.run_due()
        assert link.adapter.plan.due_at("dcap") == link.clock.now() + timedelta(seconds=expected)
        assert "HTTP 503" in link.adapter.health().detail
        link.clock.advance(expected)
    await link.adapter.run_due()
    assert link.adapter.health().ok
    assert link.sink.submitted


async def test_timeout_is_a_failure_with_backoff(pki: DevPki) -> None:
    link = await make_link(pki, scenario(), timeout_s=0.3)
    try:
        link.server.hang("/dcap")
        await link.adapter.run_due()
        assert "http.timeout" in link.adapter.health().detail
        link.server.release()
        link.clock.advance(2)
        await link.adapter.run_due()
        assert link.adapter.health().ok
    finally:
        await link.adapter.stop()
        await link.server.stop()


async def test_server_down_for_an_hour_keeps_what_is_in_force(link: Link) -> None:
    link.server.create_control(1, 1, {"start_in_s": 60, "duration_s": 7200, "base": EXPORT_1500})
    await link.adapter.run_due()
    await link.server.stop()
    waited = 0.0
    while waited < 3600:
        link.clock.advance(60)
        waited += 60
        await link.adapter.run_due()
    assert not link.adapter.health().ok
    assert "http.connect" in link.adapter.health().detail
    assert link.sink.cancelled == []  # nothing withdrawn while the server is unreachable
    key = "programs:site1"
    assert link.adapter.plan.due_at(key) - link.clock.now() <= timedelta(seconds=300)  # capped backoff
    await link.restart()
    link.clock.advance(300)
    await link.adapter.run_due()
    assert link.adapter.health().ok


async def test_clock_skew_is_corrected(pki: DevPki) -> None:
    link = await make_link(pki, scenario(), offset_s=3600)
    try:
        link.server.create_control(1, 1, {"start_in_s": 120, "base": EXPORT_1500})
        await link.adapter.run_due()
        assert round(link.adapter.clock_offset_s) == 3600
        control = next(d for d, _ in link.sink.submitted if not d.is_default)
        assert control.start == T0 + timedelta(seconds=120)
    finally:
        await link.adapter.stop()
        await link.server.stop()


async def test_hostile_document_is_rejected_into_the_audit(link: Link) -> None:
    await link.adapter.run_due()
    link.server.serve_raw("/edev/1/derp/1/derc", LAUGHS)
    link.clock.advance(60)
    await link.adapter.run_due()
    signal, reason, code = link.sink.rejected[-1]
    assert code == "xml.doctype"
    assert "DOCTYPE" in reason
    assert signal.source.endswith("/edev/1/derp/1/derc?s=0&l=25")
    assert not link.adapter.health().ok
    assert link.sink.cancelled == []


async def test_alarm_becomes_log_event(link: Link) -> None:
    await link.adapter.run_due()
    alarm = Alarm(station_id="CS-002", evse_id=1, control="HFMustTrip", grid_event_fault="OverFrequency", at=T0)
    await link.adapter.alarm(AlarmReport((alarm,), grid_event=True, at=T0))
    [event] = link.server.log_events()
    assert (event.log_event_code, event.extended_data, event.details) == (0, 1, "CS-002:OverFrequency")
    assert link.sink.upstream[-1][0] == "LogEvent"
    assert "CS-002:OverFrequency" in link.sink.upstream[-1][1]["document"]
    assert problems(link.server.received[-1].body) == []


async def test_a_link_not_polled_within_its_window_is_not_healthy(link: Link) -> None:
    """/readyz asks that each utility link was seen within its poll window: a stalled poll loop is unhealthy."""
    await link.adapter.run_due()
    assert link.adapter.health().ok
    due = link.adapter.plan.next_due()
    assert due is not None
    link.clock.advance((due - link.clock.now()).total_seconds())  # due now: still within its window
    assert link.adapter.health().ok
    link.clock.advance(link.adapter.config.default_poll_s * 24)  # a loop that stopped running for a day or so
    health = link.adapter.health()
    assert not health.ok
    assert "not polled within its window" in health.detail
    await link.adapter.run_due()
    assert link.adapter.health().ok


def test_poll_plan_overdue_is_one_poll_interval_past_due() -> None:
    plan = PollPlan(backoff_base_s=2, backoff_cap_s=300)
    plan.add("dcap", T0, 60)
    plan.add("der", T0, 600)
    assert plan.overdue(T0 + timedelta(seconds=60)) == []
    assert plan.overdue(T0 + timedelta(seconds=61)) == ["dcap"]
    plan.succeeded("dcap", T0 + timedelta(seconds=61))
    assert plan.overdue(T0 + timedelta(seconds=601)) == ["dcap", "der"]
