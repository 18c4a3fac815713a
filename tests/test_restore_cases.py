"""Restore cases beyond the fleet spread: a station that comes back holding a cancelled curtailment, a directive
that arrives after ramps were planned, and a station away when its ramp was due (docs/dispatch.md, "Restore")."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.model import Directive, OcppVersion
from gateway.runtime import Gateway
from protocols.ocpp.simulator import ManualClock
from protocols.ocpp.simulator.der_store import parse_time
from tests.support import make_config, station_configs
from tests.test_lifecycle import T0, RecordingAdapter, gateway_at, stations
from tests.test_reconcile import _back, _gone


async def test_a_station_back_after_a_cancel_ramps_up_from_its_return(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    ids = ["B201", "C16"]
    async with (
        gateway_at(make_config(tmp_path, station_configs(ids)), clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as b,
        stations(gw, ["C16"], OcppVersion.V16) as c,
    ):
        sims = {**b, **c}
        await gw.submit(Directive.model_validate({"id": "cut", "controls": {"import_limit_w": 3000}}))
        await gw.outcomes("cut")
        profile_id = gw.store.directive("cut").number * 16  # type: ignore[union-attr]
        for s in sims.values():
            await s.stop()
        for sid in ids:
            await _gone(gw, sid)
        await gw.dispatcher.cancel("cut")  # until cancelled: the stations still hold it, in force
        clock.advance(600)
        back = clock.now()
        marks = {sid: len(s.received) for sid, s in sims.items()}
        await _back(gw, list(sims.values()))
        for sid, sim in sims.items():
            sent = [p for a, p in sim.received[marks[sid] :] if a in ("SetChargingProfile", "ClearChargingProfile")]
            sent_actions = [a for a, _ in sim.received[marks[sid] :] if a.endswith("ChargingProfile")]
            assert sent_actions == ["SetChargingProfile"], sid  # no clear: the profile is replaced by its ramp
            assert [_profile_id(p) for p in sent] == [profile_id], sid
            (held,) = sim.profiles.profiles
            schedule = held.schedules()[0]
            periods = schedule["chargingSchedulePeriod"]
            assert len(periods) > 2, sid
            ramp_from = parse_time(schedule["startSchedule"]) + timedelta(seconds=periods[1]["startPeriod"])
            assert ramp_from >= back, sid  # still curtailed on its return: no step up at once
            limits = [_limit(sim.profiles.rates(1, back + timedelta(seconds=t)).limit_w) for t in range(0, 1200, 5)]
            assert limits[0] == 3000, sid
            assert limits == sorted(limits), sid
            assert limits[-1] > 3000, sid
        triggers = {e.data["trigger"] for e in gw.audit.trail("cut") if e.kind == "restore.planned"}
        assert "reconnect" in triggers  # 2.0.1 reported the profile; 1.6 had its owed clear turned into a ramp
        assert "removal" in triggers


def _limit(value: float | None) -> float:
    """A lapsed ramp leaves the station unlimited: above every limit."""
    return float("inf") if value is None else value


def _profile_id(payload: dict[str, Any]) -> int | None:
    """The profile a Set/ClearChargingProfile is about, on 2.x or 1.6."""
    if "chargingProfile" in payload:
        return int(payload["chargingProfile"]["id"])
    if "csChargingProfiles" in payload:
        return int(payload["csChargingProfiles"]["chargingProfileId"])
    found = payload.get("chargingProfileId", payload.get("id"))
    return None if found is None else int(found)


async def test_a_directive_arriving_after_the_ramps_were_sent_is_never_overruled_by_them(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, station_configs(["B201"]))
    config.dispatch.restore_max_delay_s = 60
    config.dispatch.restore_ramp_pct_per_s = 1
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as sims,
    ):
        sim = sims["B201"]
        cut = {"id": "cut", "priority": 3, "duration_s": 600, "controls": {"import_limit_w": 2000}}
        await gw.submit(Directive.model_validate(cut))
        await gw.outcomes("cut")
        end = T0 + timedelta(seconds=600)
        clock.set(end - timedelta(seconds=60))
        await gw.dispatcher.tick()
        await _settle(gw)

        def limits() -> list[float]:
            """The station's limit each second from just before the end (a lapsed ramp: unlimited, inf)."""
            return [_limit(sim.profiles.rates(1, end + timedelta(seconds=t)).limit_w) for t in range(-1, 600)]

        assert limits()[0] == 2000
        assert max(v for v in limits() if v < float("inf")) == 22_000  # ramps to the assumed rating
        assert limits()[-1] == float("inf")  # then lapses: nothing else is in force
        # A lower-priority cap arrives before the end: the ramp (stack level 7) would overrule its profile (3).
        cap = {"id": "cap", "priority": 7, "duration_s": 7200, "controls": {"import_limit_w": 6000}}
        await gw.submit(Directive.model_validate(cap))
        await gw.outcomes("cap")
        assert limits()[0] == 2000
        assert max(limits()) == 6000  # the ramp now ends at what governs afterwards
        assert limits() == sorted(limits())
        # A better-priority limit below the curtailed one leaves nothing to ramp: the plain curtailment again.
        low = {"id": "low", "priority": 6, "duration_s": 7200, "controls": {"import_limit_w": 1500}}
        await gw.submit(Directive.model_validate(low))
        await gw.outcomes("low")
        held = {p.profile_id: p for p in sim.profiles.profiles}
        cut_profile = held[gw.store.directive("cut").number * 16]  # type: ignore[union-attr]
        assert len(cut_profile.schedules()[0]["chargingSchedulePeriod"]) == 1
        assert max(limits()) <= 2000  # never above the curtailment after its end: it steps down to 1500
        triggers = [e.data["trigger"] for e in gw.audit.trail("cut") if e.kind == "restore.planned"]
        assert triggers[0] == "end"
        assert "replan" in triggers


async def _settle(gw: Gateway) -> None:
    while gw.dispatcher.resends():
        await asyncio.gather(*gw.dispatcher.resends())


async def test_a_station_offline_when_its_ramp_was_due_gets_it_when_back_before_the_end(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(make_config(tmp_path, station_configs(["B201"])), clock, adapter) as gw,
        stations(gw, ["B201"], OcppVersion.V201) as sims,
    ):
        sim = sims["B201"]
        await gw.submit(
            Directive.model_validate({"id": "cut", "duration_s": 600, "controls": {"import_limit_w": 2000}})
        )
        await gw.outcomes("cut")
        await sim.stop()
        await _gone(gw, "B201")
        clock.set(T0 + timedelta(seconds=600 - 30))  # inside the lead: the ramp is due, the station is away
        await gw.dispatcher.tick()
        await _settle(gw)
        assert len(sim.profiles.profiles[0].schedules()[0]["chargingSchedulePeriod"]) == 1
        await _back(gw, [sim])
        await gw.dispatcher.tick()
        await _settle(gw)
        (held,) = sim.profiles.profiles
        assert len(held.schedules()[0]["chargingSchedulePeriod"]) > 2  # its ramp, before its end
