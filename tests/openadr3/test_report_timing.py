"""Report timing per reportDescriptors (startInterval, numIntervals, frequency, repeat, historical): the pure
schedule, and the adapter sending on its injected clock and sleep to the VTN over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from gateway.clock import ManualClock
from protocols.openadr3.reports import event_periods, report_plans
from protocols.openadr3.vtn import Vtn
from protocols.openadr3.wire import Event, parse
from tests.openadr3.conftest import T0, StartAdapter, event_body, make_program
from tests.support import Stepper

LIMIT = [{"type": "IMPORT_CAPACITY_LIMIT", "values": [7.5]}]
QUARTERS = {"intervalPeriod": {"start": "2025-06-01T12:00:00Z", "duration": "PT15M"}}


def four_quarters(*descriptors: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "ev1", "programID": "p1", **QUARTERS,
        "intervals": [{"id": 10 + i, "payloads": LIMIT} for i in range(4)],
        "reportDescriptors": list(descriptors),
    }  # fmt: skip


def plans(*descriptors: dict[str, Any]) -> tuple[list[tuple[int, list[int], tuple[int, ...]]], list[str]]:
    """(minutes after T0 the report is due, interval ids covered, descriptor positions) per report, and skips."""
    event = parse(Event, four_quarters(*descriptors))
    found, skipped = report_plans(event, event_periods(event, T0))
    rows = [(int(((p.due or T0) - T0).total_seconds() // 60), [q.id for q in p.periods], p.descriptors) for p in found]
    return rows, skipped


def test_defaults_one_report_at_the_end_over_every_interval() -> None:
    assert plans({"payloadType": "USAGE"}) == ([(60, [10, 11, 12, 13], (0,))], [])


def test_every_interval_one_interval_per_report() -> None:
    each = {"payloadType": "USAGE", "startInterval": 0, "numIntervals": 1, "frequency": 1, "repeat": -1}
    assert plans(each)[0] == [(15, [10], (0,)), (30, [11], (0,)), (45, [12], (0,)), (60, [13], (0,))]
    # frequency -1 = numIntervals; repeat bounds the count
    assert plans({**each, "frequency": -1, "repeat": 2})[0] == [(15, [10], (0,)), (30, [11], (0,))]


def test_several_intervals_per_report_and_descriptors_that_share_a_schedule() -> None:
    pairs = {"payloadType": "USAGE", "startInterval": 1, "numIntervals": 2, "frequency": 2, "repeat": 5}
    assert plans(pairs, {**pairs, "payloadType": "DEMAND"}, {"payloadType": "READING"})[0] == [
        (30, [10, 11], (0, 1)), (60, [10, 11, 12, 13], (2,)), (60, [12, 13], (0, 1)),
    ]  # fmt: skip
    # numIntervals larger than what precedes: as many as there are
    assert plans({**pairs, "startInterval": 0, "numIntervals": 3, "repeat": 1})[0] == [(15, [10], (0,))]


def test_forecasts_and_intervals_past_the_event_are_skipped_with_a_reason() -> None:
    rows, skipped = plans({"payloadType": "USAGE", "historical": False}, {"payloadType": "DEMAND", "startInterval": 4})
    assert rows == []
    assert "forecast" in skipped[0]
    assert "startInterval 4" in skipped[1]


def test_an_interval_until_cancelled_has_no_due_time() -> None:
    event = parse(
        Event, {**four_quarters({"payloadType": "USAGE"}), "intervalPeriod": {"start": "2025-06-01T12:00:00Z"}}
    )
    periods = event_periods(event, T0)
    assert [(p.id, p.end) for p in periods] == [(10, None)]
    (plan,), _ = report_plans(event, periods)
    assert plan.due is None


async def settle(vtn: Vtn, count: int) -> None:
    for _ in range(200):
        if len(vtn.reports) >= count:
            return
        await asyncio.sleep(0.01)


async def test_reports_during_the_event_at_the_requested_frequency(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    each = {"payloadType": "USAGE", "startInterval": 0, "numIntervals": 1, "frequency": 1, "repeat": -1}
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[each], **QUARTERS)
    body["intervals"] = [{"id": i, "payloads": LIMIT} for i in range(4)]
    await vtn.create("events", body)
    stepper = Stepper()
    adapter, sink = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)
    for n in range(1, 5):
        await stepper.step(clock)  # asked for 900 s: the end of the next quarter
        await settle(vtn, n)
        assert clock.now() == T0 + timedelta(minutes=15 * n)
    assert adapter.report_errors == []
    starts = []
    for n, report in enumerate(vtn.reports):
        (resource,) = report["resources"]
        (interval,) = resource["intervals"]
        assert interval["id"] == n
        assert interval["payloads"] == [{"type": "USAGE", "values": [5.5]}]
        assert resource["intervalPeriod"]["duration"] == "PT900S"
        starts.append(resource["intervalPeriod"]["start"])
    assert starts == ["2025-06-01T12:00:00Z", "2025-06-01T12:15:00Z", "2025-06-01T12:30:00Z", "2025-06-01T12:45:00Z"]
    # the schedule is done: the loop goes back to polling (7200 s after start)
    assert await stepper.next() == 3600
    assert len(vtn.reports) == 4
    assert [what for what, _, _ in sink.upstream] == ["report"] * 4


async def test_several_intervals_per_report_over_http(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    pairs = {"payloadType": "USAGE", "startInterval": 1, "numIntervals": 2, "frequency": 2, "repeat": -1}
    descriptors = [pairs, {**pairs, "payloadType": "DEMAND"}, {"payloadType": "USAGE", "historical": False}]
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=descriptors, **QUARTERS)
    body["intervals"] = [{"id": i, "payloads": LIMIT} for i in range(4)]
    await vtn.create("events", body)
    stepper = Stepper()
    adapter, _ = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)
    assert any("forecast" in e for e in adapter.report_errors)
    await stepper.step(clock)
    await settle(vtn, 1)
    assert clock.now() == T0 + timedelta(minutes=30)
    await stepper.step(clock)
    await settle(vtn, 2)
    first, second = vtn.reports
    assert [d["payloadType"] for d in first["payloadDescriptors"]] == ["USAGE", "DEMAND"]
    (resource,) = second["resources"]
    assert resource["intervalPeriod"] == {"start": "2025-06-01T12:30:00Z", "duration": "PT900S"}
    rows = [(i["id"], i["intervalPeriod"]["start"], [p["type"] for p in i["payloads"]]) for i in resource["intervals"]]
    assert rows == [
        (2, "2025-06-01T12:30:00Z", ["USAGE", "DEMAND"]), (3, "2025-06-01T12:45:00Z", ["USAGE", "DEMAND"]),
    ]  # fmt: skip


async def test_reports_due_before_the_event_was_seen_are_not_sent(
    vtn: Vtn, start_adapter: StartAdapter, clock: ManualClock
) -> None:
    program = await make_program(vtn)
    each = {"payloadType": "USAGE", "startInterval": 0, "numIntervals": 1, "frequency": 1, "repeat": -1}
    body = event_body(vtn, program["id"], LIMIT, reportDescriptors=[each], **QUARTERS)
    body["intervals"] = [{"id": i, "payloads": LIMIT} for i in range(4)]
    await vtn.create("events", body)
    clock.advance(35 * 60)  # the VEN starts during the third quarter
    stepper = Stepper()
    adapter, _ = await start_adapter(sleep=stepper.sleep, poll_interval_s=7200)
    assert adapter.next_report_due() == T0 + timedelta(minutes=45)
    assert await adapter.send_due_reports() == 0
    await stepper.step(clock)
    await settle(vtn, 1)
    assert [r["resources"][0]["intervals"][0]["id"] for r in vtn.reports] == [2]
