"""Restore ramps and stack levels together, end to end on simulated OCPP 2.0.1 and 1.6 stations over real
WebSockets on a shared ManualClock (docs/dispatch.md, "Restore" and "Stack levels"):

- a directive received while a curtailment's ramp still runs keeps off the ramp's stack level (K01.FR.06 on 2.x,
  the 1.6 replace rule), and the ramp goes out at the level the station holds the curtailment at;
- a lower-priority directive with a lower limit arriving during a ramp holds the station: the ramp never lifts it
  above what is in force.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.support import make_config, station_configs
from tests.test_lifecycle import T0, RecordingAdapter, gateway_at, stations
from tests.test_restore_cases import _settle

IDS = {"B201": OcppVersion.V201, "C16": OcppVersion.V16}
END = T0 + timedelta(seconds=600)


def _limit(did: str, watts: float, start: datetime, seconds: int, priority: int) -> Directive:
    raw: dict[str, Any] = {
        "id": did,
        "priority": priority,
        "start": start.isoformat(),
        "duration_s": seconds,
        "controls": {"import_limit_w": watts},
    }
    return Directive.model_validate(raw)


def _applied(sim: SimStation, at: datetime) -> float:
    """The import limit the station applies at `at` on EVSE 1 (nothing limiting it: inf)."""
    limit = sim.profiles.rates(1, at).limit_w
    return float("inf") if limit is None else limit


def _levels(sim: SimStation) -> dict[int, int]:
    return {p.profile_id: p.stack_level for p in sim.profiles.profiles}


def _profile(gw: Gateway, did: str) -> int:
    record = gw.store.directive(did)
    assert record is not None
    return record.number * 16


async def _ramped_to_the_end(gw: Gateway, clock: ManualClock) -> None:
    """A 2 kW curtailment (priority 5) 12:00-12:10 on every station, its ramps sent ahead, and the clock at its end."""
    await gw.submit(_limit("cut", 2000, T0, 600, 5))
    await gw.outcomes("cut")
    clock.set(END - timedelta(seconds=60))
    await gw.dispatcher.tick()
    await _settle(gw)
    clock.set(END)
    await gw.dispatcher.tick()
    await _settle(gw)


def _config(tmp_path: Path) -> Any:
    config = make_config(tmp_path, station_configs(list(IDS)))
    config.dispatch.restore_max_delay_s = 60
    config.dispatch.restore_ramp_pct_per_s = 1
    return config


async def test_a_directive_received_during_a_ramp_keeps_off_its_stack_level(tmp_path: Path) -> None:
    """The curtailment ends at 12:10 and its ramp runs until about 12:12:40 at its level. At 12:10:05 a directive of
    the same priority (same band) arrives for 12:11-12:31: before, the curtailment's level counted as free once it
    had ended, so it went out at that level, where a 2.x station may not hold it beside the ramp (K01.FR.06: their
    validity overlaps; the simulator replaces the ramp) and a 1.6 station replaces the ramp with it (same level and
    purpose): both were unlimited until 12:11. Now the ramp holds its level until its
    reach and the newcomer goes above it (the more recent of one priority)."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(_config(tmp_path), clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as b,
        stations(gw, ["C16"], OcppVersion.V16) as c,
    ):
        sims = {**b, **c}
        await gw.submit(_limit("cut", 2000, T0, 600, 5))
        await gw.outcomes("cut")
        cut = _profile(gw, "cut")
        held_at = {sid: _levels(sim)[cut] for sid, sim in sims.items()}
        clock.set(END - timedelta(seconds=60))
        await gw.dispatcher.tick()
        await _settle(gw)
        for sid, sim in sims.items():
            (ramp,) = [p for p in sim.profiles.profiles if p.profile_id == cut]
            assert len(ramp.schedules()[0]["chargingSchedulePeriod"]) > 2, sid  # the ramp is held
            assert ramp.stack_level == held_at[sid], sid  # replaced in place: the same id at the same level
        clock.set(END)
        await gw.dispatcher.tick()
        clock.set(END + timedelta(seconds=5))
        await gw.submit(_limit("next", 8000, END + timedelta(seconds=60), 1200, 5))
        outcomes = await gw.outcomes("next")
        assert {o.station_id: o.status for o in outcomes} == dict.fromkeys(IDS, OutcomeStatus.ACCEPTED)
        await _settle(gw)
        nxt = _profile(gw, "next")
        for sid, sim in sims.items():
            levels = _levels(sim)
            assert {cut, nxt} <= set(levels), sid  # both held: nothing replaced
            assert levels[cut] == held_at[sid], sid  # the ramp still at the curtailment's level
            assert levels[nxt] > levels[cut], sid  # the newcomer above it: the more recent of one priority
            # Until the newcomer starts, the ramp holds the station at the curtailment (delay) or on its way up.
            for t in range(5, 60):
                assert _applied(sim, END + timedelta(seconds=t)) <= 22_000, (sid, t)
            assert _applied(sim, END + timedelta(seconds=5)) < 22_000, sid
            applied = _applied(sim, END + timedelta(seconds=90))  # then the newcomer governs, as arbitration says
            assert 8000 * 0.97 <= applied <= 8000, sid
            assert _applied(sim, END + timedelta(seconds=1300)) == float("inf"), sid  # and lapses


async def test_a_lower_priority_lower_limit_arriving_during_a_ramp_holds_the_station(tmp_path: Path) -> None:
    """The curtailment (priority 5, 2 kW) ends at 12:10 and ramps towards 22 kW. At 12:10:05 a priority-7 directive
    limits the station to 5 kW from then on: its profile sits below the ramp (a worse priority), so before, the
    ramp overruled it up to 22 kW until the ramp ended. Now every step of the ramp is capped by the limit in force:
    the station never goes above 5 kW, and holds 5 kW once the ramp has lapsed."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(_config(tmp_path), clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as b,
        stations(gw, ["C16"], OcppVersion.V16) as c,
    ):
        sims = {**b, **c}
        await _ramped_to_the_end(gw, clock)
        for sid, sim in sims.items():
            assert max(_applied(sim, END + timedelta(seconds=t)) for t in range(0, 300)) > 5000, sid  # as planned
        clock.set(END + timedelta(seconds=5))
        await gw.submit(_limit("low", 5000, END + timedelta(seconds=5), 3600, 7))
        outcomes = await gw.outcomes("low")
        assert {o.station_id: o.status for o in outcomes} == dict.fromkeys(IDS, OutcomeStatus.ACCEPTED)
        await _settle(gw)
        cut, low = _profile(gw, "cut"), _profile(gw, "low")
        for sid, sim in sims.items():
            levels = _levels(sim)
            assert levels[low] < levels[cut], sid  # the ramp above it, as the better priority
            applied = [_applied(sim, END + timedelta(seconds=t)) for t in range(5, 600)]
            assert max(applied) <= 5000, sid  # never above what is in force
            assert applied[0] <= 2000, sid  # still curtailed: the ramp only ever lowers
            assert applied == sorted(applied), sid  # rising, staggered
            assert applied[-1] >= 5000 * 0.97, sid  # the ramp lapsed: the 5 kW limit governs


async def test_a_cancelled_curtailment_ramps_at_the_level_the_station_holds_it_at(tmp_path: Path) -> None:
    """Two overlapping directives of one priority: the more recent sits one level above the older. Both are
    cancelled, the older first (the newer, of its priority, still limits: no ramp) and then the newer, with nothing
    live left. Its ramp replaces its profile by id and must go out at the level the station holds it at: before,
    with nothing live, placement was skipped and the ramp went out at the band level, moving the profile."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(_config(tmp_path), clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as b,
        stations(gw, ["C16"], OcppVersion.V16) as c,
    ):
        sims = {**b, **c}
        await gw.submit(_limit("old", 4000, T0, 3600, 5))
        await gw.outcomes("old")
        await gw.submit(_limit("cut", 2000, T0, 1800, 5))
        await gw.outcomes("cut")
        cut, old = _profile(gw, "cut"), _profile(gw, "old")
        held_at = {sid: _levels(sim)[cut] for sid, sim in sims.items()}
        assert all(held_at[sid] > _levels(sim)[old] for sid, sim in sims.items())  # the more recent above
        clock.set(T0 + timedelta(seconds=300))
        await gw.dispatcher.cancel("old")
        await _settle(gw)
        clock.set(T0 + timedelta(seconds=310))
        await gw.dispatcher.cancel("cut")
        await _settle(gw)
        for sid, sim in sims.items():
            (ramp,) = [p for p in sim.profiles.profiles if p.profile_id == cut]
            assert len(ramp.schedules()[0]["chargingSchedulePeriod"]) > 2, sid  # its ramp
            assert ramp.stack_level == held_at[sid], sid  # at the level it was held at: replaced in place
            assert _applied(sim, clock.now()) == 2000, sid  # still curtailed when the ramp begins
