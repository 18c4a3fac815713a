"""What simulated OCPP 2.1, 2.0.1 and 1.6 stations hold and apply follows the gateway's arbitration, for consecutive
and overlapping directives (docs/dispatch.md, "Stack levels"), end to end over real WebSockets on a shared
ManualClock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.interfaces import DirectiveEventKind
from gateway.model import Directive, DirectiveState, OcppVersion, OutcomeStatus, Source, SourceProtocol
from gateway.runtime import Gateway
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.support import make_config, station_configs
from tests.test_lifecycle import T0, RecordingAdapter, gateway_at, stations
from tests.test_reconcile import _back, _gone

V21, V201, V16 = OcppVersion.V21, OcppVersion.V201, OcppVersion.V16
IDS = {"A21": V21, "B201": V201, "C16": V16}


def _limit(did: str, watts: float, start_min: int, minutes: int, priority: int = 5) -> Directive:
    raw: dict[str, Any] = {
        "id": did,
        "priority": priority,
        "start": (T0 + timedelta(minutes=start_min)).isoformat(),
        "duration_s": minutes * 60,
        "controls": {"import_limit_w": watts},
    }
    return Directive.model_validate(raw)


def _applied(sim: SimStation) -> float | None:
    """The import limit (W) the station applies now on EVSE 1, from the profiles it holds."""
    return sim.rates(1).limit_w


def _near(applied: float | None, asked: float) -> bool:
    """Applied as asked: never above it, and within the rounding of amps (1.6/2.0.1 stations may take A)."""
    return applied is not None and asked * 0.97 <= applied <= asked


async def _expect(clock: ManualClock, sims: dict[str, SimStation], steps: list[tuple[int, float]]) -> None:
    """Advance the clock by each step's minutes; every station then applies that step's limit."""
    for minutes, watts in steps:
        clock.advance(minutes * 60)
        for sid, sim in sims.items():
            assert _near(_applied(sim), watts), (sid, clock.now(), watts)


def _profile_ids(gw: Gateway, *dids: str) -> set[int]:
    numbers = [gw.store.directive(d).number for d in dids]  # type: ignore[union-attr]
    return {n * 16 for n in numbers}


def _held(sim: SimStation) -> set[int]:
    return {p.profile_id for p in sim.profiles.profiles}


async def test_consecutive_intervals_of_one_priority_both_hold_and_apply_in_turn(tmp_path: Path) -> None:
    """An event's two intervals, sent ahead: every version holds both and applies the first, then the second. On 1.6
    they sit on different stack levels (one level and purpose would replace); on 2.x their validity does not
    overlap (K01.FR.06) and the composite follows the one whose schedule covers the instant (K08)."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, station_configs(list(IDS)))
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["A21"]) as a,
        stations(gw, ["B201"], V201) as b,
        stations(gw, ["C16"], V16) as c,
    ):
        sims = {**a, **b, **c}
        first, second = _limit("i1", 3000, 10, 10), _limit("i2", 2000, 20, 10)
        for d in (first, second):
            await gw.submit(d)
            await gw.outcomes(d.id)
        ids = _profile_ids(gw, "i1", "i2")
        for sid, sim in sims.items():
            assert _held(sim) >= ids, sid
        levels16 = {p.profile_id: p.stack_level for p in sims["C16"].profiles.profiles}
        assert len({levels16[i] for i in ids}) == 2
        clock.advance(15 * 60)
        for sid, sim in sims.items():
            assert _near(_applied(sim), 3000), sid
        clock.advance(10 * 60)
        for sid, sim in sims.items():
            assert _near(_applied(sim), 2000), sid
        clock.advance(10 * 60)
        for sid, sim in sims.items():
            assert _applied(sim) is None, sid


async def test_overlapping_equal_priorities_the_more_recent_applies_and_the_older_resumes(tmp_path: Path) -> None:
    """Two overlapping directives of one priority: the station holds both, the more recent one above (arbitration:
    most recent wins), so the older applies before and again after it. Until now they shared one level and the
    later replaced the earlier (K01.FR.06 on 2.x, stackLevel+purpose on 1.6)."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, station_configs(list(IDS)))
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["A21"]) as a,
        stations(gw, ["B201"], V201) as b,
        stations(gw, ["C16"], V16) as c,
    ):
        sims = {**a, **b, **c}
        long, short = _limit("long", 4000, 10, 60), _limit("short", 2500, 20, 20)
        worse = _limit("worse", 1000, 0, 90, priority=8)  # received last, but a worse priority: never applies
        for d in (long, short, worse):
            await gw.submit(d)
            await gw.outcomes(d.id)
        for sid, sim in sims.items():
            assert _held(sim) >= _profile_ids(gw, "long", "short", "worse"), sid
        await _expect(clock, sims, [(5, 1000), (10, 4000), (10, 2500)])

        # Reconnect: 2.x stations report what they hold; it is what should be there, so nothing is re-sent
        # (K01.FR.05: same id replaces; before, the pair on one level was re-sent on every reconnect).
        marks = {sid: len(s.received) for sid, s in sims.items()}
        levels_before = {sid: {p.profile_id: p.stack_level for p in s.profiles.profiles} for sid, s in sims.items()}
        for s in sims.values():
            await s.stop()
        for sid in IDS:
            await _gone(gw, sid)
        await _back(gw, list(sims.values()))
        for sid in ("A21", "B201"):
            sent = [
                x for x, _ in sims[sid].received[marks[sid] :] if x in ("SetChargingProfile", "ClearChargingProfile")
            ]
            assert sent == [], sid
        # 1.6 cannot report: what is in force is sent again, at the same levels (a replacement in place).
        resent = [p for x, p in sims["C16"].received[marks["C16"] :] if x == "SetChargingProfile"]
        assert resent
        for p in resent:
            profile = p["csChargingProfiles"]
            assert levels_before["C16"][profile["chargingProfileId"]] == profile["stackLevel"]
        await _expect(clock, sims, [(0, 2500), (20, 4000), (30, 1000)])


async def test_the_gateway_reports_a_directive_it_fully_replaces_as_superseded(tmp_path: Path) -> None:
    """A newer directive of the same priority covering an older one's whole window, controls and stations: the
    gateway ends the older as superseded (audited with the newer one's id, reported to its utility, its profile
    cleared from every station). One that covers only part of a window supersedes nothing."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, station_configs(list(IDS)))
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["A21"]) as a,
        stations(gw, ["B201"], V201) as b,
        stations(gw, ["C16"], V16) as c,
    ):
        sims = {**a, **b, **c}
        utility = {"source": Source(protocol=SourceProtocol.IEEE2030_5)}
        old = _limit("old", 4000, 10, 20).model_copy(update=utility)
        await gw.submit(old)
        await gw.outcomes("old")
        old_profile = _profile_ids(gw, "old")
        new = _limit("new", 2500, 5, 60).model_copy(update=utility)
        await gw.submit(new)
        await gw.outcomes("new")
        await gw.outcomes("old")
        assert gw.store.directive("old").state is DirectiveState.SUPERSEDED  # type: ignore[union-attr]
        [entry] = gw.audit.query(kind="directive.superseded")
        assert (entry.directive_id, entry.data["by"]) == ("old", "new")
        [event] = [e for e in adapter.events if e.directive_id == "old" and e.kind is DirectiveEventKind.SUPERSEDED]
        assert event.detail == "superseded by new"
        for sid, sim in sims.items():
            assert not (_held(sim) & old_profile), sid
            assert _held(sim) >= _profile_ids(gw, "new"), sid
        partial = _limit("partial", 1000, 20, 10)
        await gw.submit(partial)
        await gw.outcomes("partial")
        assert gw.store.directive("new").state is DirectiveState.SCHEDULED  # type: ignore[union-attr]
        await _expect(clock, sims, [(7, 2500), (15, 1000), (10, 2500)])


def _status(gw: Gateway, directive_id: str, station_id: str) -> OutcomeStatus:
    [outcome] = [o for o in gw.store.outcomes(directive_id) if o.station_id == station_id]
    return outcome.status


async def _settle(gw: Gateway) -> None:
    """Run the dispatcher's timer once and wait for what it started (reconciliations)."""
    await gw.dispatcher.tick()
    while gw.dispatcher.resends():
        await asyncio.gather(*gw.dispatcher.resends())


async def test_an_event_with_more_intervals_than_16_stack_levels_applies_every_interval(tmp_path: Path) -> None:
    """Ten consecutive five-minute intervals sent ahead; the 1.6 station has 8 stack levels
    (ChargeProfileMaxStackLevel). Eight are held at once on distinct levels; the last two wait until the first two
    have ended and go out then, before their start. Every station applies each interval in turn."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, station_configs(list(IDS)))
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["A21"]) as a,
        stations(gw, ["B201"], V201) as b,
        stations(gw, ["C16"], V16) as c,
    ):
        sims = {**a, **b, **c}
        assert gw.fleet.stations["C16"].capabilities.max_stack_level == 8  # type: ignore[union-attr]
        intervals = [_limit(f"i{k}", 1000 + 100 * k, 5 + 5 * k, 5) for k in range(10)]
        for d in intervals:
            await gw.submit(d)
            await gw.outcomes(d.id)
        c16 = sims["C16"]
        assert len(c16.profiles.profiles) == 8
        assert len({p.stack_level for p in c16.profiles.profiles}) == 8
        waiting = [d.id for d in intervals if _status(gw, d.id, "C16") is OutcomeStatus.PENDING]
        assert waiting == ["i8", "i9"]
        for sid in ("A21", "B201"):
            assert _held(sims[sid]) >= _profile_ids(gw, *(d.id for d in intervals)), sid
        clock.advance(7 * 60 + 30)  # 12:07:30, inside interval 0
        for k in range(10):
            await _settle(gw)
            for sid, sim in sims.items():
                assert _near(_applied(sim), 1000 + 100 * k), (sid, k, clock.now())
            clock.advance(5 * 60)
        assert _status(gw, "i9", "C16") is OutcomeStatus.ACCEPTED
