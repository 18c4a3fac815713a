"""The collector keeps off the long-lived heap only while fan-outs run (gateway/gcfreeze.py), and nothing that
became cyclic garbage meanwhile is lost: it is collected once the freeze ends."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from gateway import gcfreeze
from gateway.model import Directive, OcppVersion, OutcomeStatus
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_objects_alive_at_the_start_are_frozen_until_the_work_ends() -> None:
    before = _Cycle()
    gone = weakref.ref(before)

    async def work() -> int:
        nonlocal before
        assert gc.get_freeze_count() > 0
        del before  # now cyclic garbage, but frozen: a full collection does not look at it
        gc.collect()
        assert gone() is not None
        return 7

    assert gc.get_freeze_count() == 0
    assert await gcfreeze.frozen_during(work()) == 7
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


async def test_overlapping_work_keeps_the_freeze_until_the_last_ends() -> None:
    first_may_end, second_may_end = asyncio.Event(), asyncio.Event()
    first = asyncio.ensure_future(gcfreeze.frozen_during(first_may_end.wait()))
    second = asyncio.ensure_future(gcfreeze.frozen_during(second_may_end.wait()))
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0
    first_may_end.set()
    await first
    assert gc.get_freeze_count() > 0
    second_may_end.set()
    await second
    assert gc.get_freeze_count() == 0


async def test_a_failing_work_still_ends_the_freeze() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await gcfreeze.frozen_during(fail())
    assert gc.get_freeze_count() == 0


async def test_overlapping_work_stops_renewing_the_freeze_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "MAX_FROZEN_S", 0.0)
    long_may_end = asyncio.Event()
    long = asyncio.ensure_future(gcfreeze.frozen_during(long_may_end.wait()))
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0
    await gcfreeze.frozen_during(asyncio.sleep(0))  # ends past the limit while `long` still runs
    assert gc.get_freeze_count() == 0
    await gcfreeze.frozen_during(asyncio.sleep(0))  # a new one does not renew it while `long` runs
    assert gc.get_freeze_count() == 0
    long_may_end.set()
    await long
    assert gc.get_freeze_count() == 0


class _Observer(SimStation):
    """Notes whether the collector's heap was frozen when each SetDERControl arrived (same process)."""

    frozen: list[bool]

    def _on_message(self, text: str | bytes) -> None:
        if isinstance(text, str) and '"SetDERControl"' in text:
            self.frozen.append(gc.get_freeze_count() > 0)
        super()._on_message(text)


async def test_a_fan_out_runs_with_the_heap_frozen_and_ends_unfrozen(tmp_path: Path) -> None:
    ids = ["F1", "F2", "F3"]
    async with running(make_config(tmp_path, station_configs(ids))) as gw:
        stations = [_Observer(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids]
        for station in stations:
            station.frozen = []
        try:
            await asyncio.gather(*(s.start() for s in stations))
            await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
            droop = {
                "over_freq_hz": 50.2,
                "under_freq_hz": 49.8,
                "over_droop": 0.05,
                "under_droop": 0.05,
                "response_time_s": 5,
            }
            directive = Directive.model_validate({"id": "gc", "duration_s": 600, "controls": {"freq_droop": droop}})
            record = await gw.dispatcher.submit(directive)
            outcomes = await gw.dispatcher.wait(record.directive.id)
        finally:
            await asyncio.gather(*(s.stop() for s in stations))
        assert [o.status for o in outcomes] == [OutcomeStatus.ACCEPTED] * 3
        assert [s.frozen for s in stations] == [[True]] * 3
        assert gc.get_freeze_count() == 0
