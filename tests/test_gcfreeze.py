"""The collector is paused and kept off the long-lived heap only while fan-outs run and shortly after
(gateway/gcfreeze.py), and nothing that became cyclic garbage meanwhile is lost: it is collected once the freeze
ends."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import gcfreeze
from gateway.model import Directive, OcppVersion, OutcomeStatus
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs


class _Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Other tests' fan-outs in this process may have left the heap held; each test here starts and ends clean."""
    gcfreeze.release()
    yield
    gcfreeze.release()
    assert gc.isenabled()


async def test_objects_alive_at_the_start_are_frozen_until_released_then_collected() -> None:
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
    assert gc.get_freeze_count() > 0  # held a while after the work (its results are read next)
    gcfreeze.release()
    assert gc.get_freeze_count() == 0
    assert gone() is None  # release collects


async def test_cyclic_garbage_made_during_the_work_is_collected_at_release() -> None:
    async def work() -> weakref.ref[_Cycle]:
        return weakref.ref(_Cycle())  # garbage at once, in a cycle: only the collector can free it

    gone = await gcfreeze.frozen_during(work())
    gc.collect()
    assert gone() is not None  # frozen with what the work left behind, during the hold
    gcfreeze.release()
    assert gone() is None


async def test_the_hold_ends_by_itself_when_no_work_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "HOLD_S", 0.0)
    await gcfreeze.frozen_during(asyncio.sleep(0))
    for _ in range(20):  # the hold's timer is due at once: wait for it, turn by turn
        if gc.get_freeze_count() == 0:
            break
        await asyncio.sleep(0)
    assert gc.get_freeze_count() == 0


async def test_work_starting_during_the_hold_keeps_the_heap_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "HOLD_S", 0.0)
    await gcfreeze.frozen_during(asyncio.sleep(0))
    may_end = asyncio.Event()
    second = asyncio.ensure_future(gcfreeze.frozen_during(may_end.wait()))
    for _ in range(20):  # the first hold's timer would have fired by now
        await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0
    may_end.set()
    await second


async def test_the_collector_is_paused_while_work_runs() -> None:
    async def work() -> bool:
        return gc.isenabled()

    assert gc.isenabled()
    assert await gcfreeze.frozen_during(work()) is False
    assert gc.isenabled()


async def test_the_pause_ends_after_its_limit_though_work_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcfreeze, "MAX_PAUSE_S", 0.0)
    may_end = asyncio.Event()
    long = asyncio.ensure_future(gcfreeze.frozen_during(may_end.wait()))
    for _ in range(20):  # the limit's timer is due at once: wait for it, turn by turn
        await asyncio.sleep(0)
        if gc.isenabled():
            break
    assert gc.isenabled()
    assert not long.done()
    may_end.set()
    await long
    assert gc.isenabled()


async def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.disable()
    try:
        await gcfreeze.frozen_during(asyncio.sleep(0))
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_overlapping_work_keeps_the_freeze_until_the_last_ends() -> None:
    first_may_end, second_may_end = asyncio.Event(), asyncio.Event()
    first = asyncio.ensure_future(gcfreeze.frozen_during(first_may_end.wait()))
    second = asyncio.ensure_future(gcfreeze.frozen_during(second_may_end.wait()))
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0
    first_may_end.set()
    await first
    assert gcfreeze._hold is None  # no hold while work runs: released only after the last one
    assert gc.get_freeze_count() > 0
    assert not gc.isenabled()  # paused until the last ends too
    second_may_end.set()
    await second
    assert gc.isenabled()


async def test_a_failing_work_still_ends_its_part() -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await gcfreeze.frozen_during(fail())
    assert gcfreeze._running == 0


async def test_overlapping_work_unfreezes_after_the_limit_until_a_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gcfreeze, "MAX_FROZEN_S", 0.0)
    long_may_end = asyncio.Event()
    long = asyncio.ensure_future(gcfreeze.frozen_during(long_may_end.wait()))
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0
    await gcfreeze.frozen_during(asyncio.sleep(0))  # ends past the limit while `long` still runs
    assert gc.get_freeze_count() == 0
    await gcfreeze.frozen_during(asyncio.sleep(0))  # no full collection since: not frozen again
    assert gc.get_freeze_count() == 0
    gc.collect()
    monkeypatch.setattr(gcfreeze, "MAX_FROZEN_S", 3600.0)
    await gcfreeze.frozen_during(asyncio.sleep(0))  # every object was looked at: frozen again
    assert gc.get_freeze_count() > 0
    long_may_end.set()
    await long


class _Observer(SimStation):
    """Notes whether the heap was frozen and the collector paused when each SetDERControl (`frozen`) and each
    ClearDERControl (`cleared`) arrived (same process)."""

    frozen: list[bool]
    cleared: list[bool]

    def _on_message(self, text: str | bytes) -> None:
        held = gc.get_freeze_count() > 0 and not gc.isenabled()
        if isinstance(text, str) and '"SetDERControl"' in text:
            self.frozen.append(held)
        if isinstance(text, str) and '"ClearDERControl"' in text:
            self.cleared.append(held)
        super()._on_message(text)


async def test_a_fan_out_runs_with_the_heap_frozen_and_ends_unfrozen(tmp_path: Path) -> None:
    ids = ["F1", "F2", "F3"]
    async with running(make_config(tmp_path, station_configs(ids))) as gw:
        stations = [_Observer(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids]
        for station in stations:
            station.frozen, station.cleared = [], []
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
            gcfreeze.release()  # as after the hold: the cancel below must freeze (and pause) on its own
            assert gc.isenabled()
            await gw.dispatcher.cancel(record.directive.id)
            cleared = gw.store.outcomes(record.directive.id)
        finally:
            await asyncio.gather(*(s.stop() for s in stations))
        assert [o.status for o in outcomes] == [OutcomeStatus.ACCEPTED] * 3
        assert [s.frozen for s in stations] == [[True]] * 3
        # A fleet-wide cancel sends as many commands as the fan-out did: its clears keep the collector away too.
        assert [o.status for o in cleared] == [OutcomeStatus.CLEARED] * 3
        assert [s.cleared for s in stations] == [[True]] * 3
