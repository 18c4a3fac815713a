"""A station that comes back still holding a curtailment cancelled while it was away ramps back from then, instead
of being cleared and stepping up at once (docs/dispatch.md, "Restore": re-entering service)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.model import Directive, OcppVersion
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
