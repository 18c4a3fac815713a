"""Aggregate targets end to end (docs/dispatch.md, "Aggregate targets"): a site import cap shared across simulated
2.1, 2.0.1 and 1.6 stations over real sockets, re-shared on sessions and drops, decreases answered before any
increase leaves. The cap is checked on the wire, from the frames the audit log recorded and the answers to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.audit.entry import StoredEntry
from gateway.config import StationConfig
from gateway.model import Directive, OcppVersion
from gateway.runtime import Gateway
from mappings.units import timestamp
from protocols.ocpp.simulator import ManualClock, SimBehaviour, SimStation
from tests.support import PASSWORD, make_config, station_configs
from tests.test_fanout import assert_schema_valid
from tests.test_lifecycle import T0, RecordingAdapter, gateway_at

V21, V201, V16 = OcppVersion.V21, OcppVersion.V201, OcppVersion.V16
CAP = 22_000.0
#: Configured import ratings (2.0.1 and 1.6 stations report none).
RATINGS = {"A21": 22_000.0, "B201": 11_000.0, "C16": 11_000.0, "D21": 11_000.0}
#: What each simulated EV would draw without a limit.
DEMAND_W = 50_000.0
STATION_MAX = ("ChargingStationMaxProfile", "ChargePointMaxProfile")


def _configs(ids: Sequence[str]) -> list[StationConfig]:
    return [c.model_copy(update={"max_w": RATINGS[c.id]}) for c in station_configs(ids, groups=["site"])]


def _site_cap(did: str = "site-cap", cap: float = CAP) -> Directive:
    target = {"scope": "group", "ids": ["site"], "share": "total"}
    return Directive.model_validate({"id": did, "target": target, "controls": {"import_limit_w": cap}})


@asynccontextmanager
async def site(
    tmp_path: Path, specs: Sequence[tuple[str, OcppVersion]], behaviours: Mapping[str, SimBehaviour] | None = None
) -> AsyncIterator[tuple[Gateway, dict[str, SimStation]]]:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, _configs([sid for sid, _ in specs]))
    async with gateway_at(config, clock, adapter) as gw:
        sims = {
            sid: SimStation(
                gw.ocpp.url,
                sid,
                version,
                password=PASSWORD,
                meter_interval=3600,
                clock=clock,
                power=DEMAND_W,
                reconnect_delay=None,
                behaviour=(behaviours or {}).get(sid),
            )
            for sid, version in specs
        }
        try:
            await asyncio.gather(*(s.start() for s in sims.values()))
            await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in sims))
            yield gw, sims
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))


async def _until(condition: Callable[[], bool]) -> None:
    """Until `condition()` holds (bounded): the registry offers no event for these."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def _plug_in(gw: Gateway, sim: SimStation) -> None:
    """A vehicle arrives: TransactionEvent Started (2.x) or StartTransaction (1.6)."""
    if sim.version is V16:
        start = {"connectorId": 1, "idTag": "EV-1", "meterStart": 0, "timestamp": timestamp(sim.clock.now())}
        await sim.call("StartTransaction", start)
    else:
        await sim.start_transaction()
    await _until(lambda: gw.fleet.stations[sim.station_id].charging)


async def _settled(gw: Gateway) -> None:
    await gw.sharing.settled()
    while gw.dispatcher.resends():
        await asyncio.gather(*gw.dispatcher.resends())
    gw.dispatcher.flush()


def _limit_w(gw: Gateway, station_id: str, payload: Mapping[str, Any]) -> float | None:
    """The station-wide import limit a SetChargingProfile carries, in W; None for other commands."""
    profile = payload.get("chargingProfile") or payload.get("csChargingProfiles")
    if not profile or profile.get("chargingProfilePurpose") not in STATION_MAX:
        return None
    schedule = profile["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    limit = float(schedule["chargingSchedulePeriod"][0]["limit"])
    caps = gw.fleet.stations[station_id].capabilities
    assert caps is not None
    return limit if schedule["chargingRateUnit"] == "W" else limit * caps.nominal_voltage_v * caps.phases


def _wire(gw: Gateway, did: str) -> list[StoredEntry]:
    return sorted(gw.audit.query(directive_id=did, limit=100_000), key=lambda e: e.seq)


def _exposure_never_exceeds(gw: Gateway, did: str, cap: float) -> list[tuple[str, float]]:
    """Replay the audit: a station may draw the larger of its last accepted limit and one sent but not answered;
    their sum must stay within `cap` at every step. Returns the limits sent, in order."""
    held: dict[str, float] = {}
    in_flight: dict[str, tuple[str, float]] = {}
    sent: list[tuple[str, float]] = []
    for entry in _wire(gw, did):
        sid = entry.station_id
        if entry.kind == "command.sent" and sid is not None:
            limit = _limit_w(gw, sid, entry.data["frame"][3])
            if limit is None:
                continue
            assert entry.message_id is not None
            in_flight[entry.message_id] = (sid, limit)
            sent.append((sid, limit))
            exposure = dict(held)
            for s, w in in_flight.values():
                exposure[s] = max(exposure.get(s, 0.0), w)
            assert sum(exposure.values()) <= cap + 1e-6, (entry.seq, exposure)
        elif entry.kind == "station.answer" and entry.message_id in in_flight:
            s, w = in_flight.pop(entry.message_id)
            if entry.data["status"] == "Accepted":
                held[s] = w
    return sent


def _decisions(gw: Gateway, did: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in _wire(gw, did) if e.kind == "allocation.decided"]


async def test_a_site_cap_is_shared_in_proportion_to_ratings_on_every_version(tmp_path: Path) -> None:
    """22 kW over A (22 kW), B (11 kW, 2.0.1), C (11 kW, 1.6) with vehicles and D idle: 11 / 5.5 / 5.5 / 0 kW,
    sent as charging profiles each station applies (the simulated EVs want 50 kW and draw their share)."""
    specs = [("A21", V21), ("B201", V201), ("C16", V16), ("D21", V21)]
    async with site(tmp_path, specs) as (gw, sims):
        for sid in ("A21", "B201", "C16"):
            await _plug_in(gw, sims[sid])
        await gw.submit(_site_cap())
        outcomes = {o.station_id: o.status.value for o in await gw.outcomes("site-cap")}
        await _settled(gw)
        assert set(outcomes.values()) == {"accepted"}
        expected = {"A21": 11_000, "B201": 5_500, "C16": 5_500, "D21": 0}
        assert gw.sharing.shares("site-cap") == {"import_limit_w": expected}
        sent = dict(_exposure_never_exceeds(gw, "site-cap", CAP))
        assert sent == expected
        for sid, share in expected.items():
            assert abs(sims[sid].power_w() - share) < 1.0, sid  # the station itself holds its share
        (decision,) = _decisions(gw, "site-cap")
        assert decision["reason"] == "received"
        assert decision["caps"] == {"import_limit_w": CAP}
        members = {m["station"]: m for m in decision["members"]}
        assert members["B201"]["max_w"] == 11_000
        assert members["D21"]["charging"] is False
        assert members["A21"]["min_w"] == 6 * 230 * 3  # 6 A x 230 V x 3 phases
        for sim in sims.values():
            assert_schema_valid(sim)


async def test_a_session_start_and_end_reshare_lowering_first(tmp_path: Path) -> None:
    """A and B share 22 kW (14.666 / 7.333 kW). A vehicle at D: A and B are lowered to 11 / 5.5 kW and answer
    before D is raised to 5.5 kW; D's vehicle leaves: D goes to 0 first, then A and B back up."""
    specs = [("A21", V21), ("B201", V201), ("D21", V21)]
    async with site(tmp_path, specs) as (gw, sims):
        for sid in ("A21", "B201"):
            await _plug_in(gw, sims[sid])
        await gw.submit(_site_cap())
        await gw.outcomes("site-cap")
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 14_666, "B201": 7_333, "D21": 0}
        mark = max(e.seq for e in _wire(gw, "site-cap"))

        await _plug_in(gw, sims["D21"])
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 11_000, "B201": 5_500, "D21": 5_500}
        after = [e for e in _wire(gw, "site-cap") if e.seq > mark]
        decision = next(e for e in after if e.kind == "allocation.decided")
        assert decision.data["reason"] == "D21 session started"
        assert [step[0] for step in decision.data["order"]] == ["A21", "B201", "D21"]
        lowered = [e for e in after if e.kind == "command.sent" and e.station_id in ("A21", "B201")]
        raised = [e for e in after if e.kind == "command.sent" and e.station_id == "D21"]
        answers = [e for e in after if e.kind == "station.answer" and e.message_id in {x.message_id for x in lowered}]
        assert lowered
        assert raised
        assert len(answers) == len(lowered)
        assert max(e.seq for e in answers) < min(e.seq for e in raised)  # every decrease answered first
        assert abs(sims["D21"].power_w() - 5_500) < 1.0
        assert abs(sims["A21"].power_w() - 11_000) < 1.0

        mark = max(e.seq for e in _wire(gw, "site-cap"))
        await sims["D21"].end_transaction()
        await _until(lambda: not gw.fleet.stations["D21"].charging)
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 14_666, "B201": 7_333, "D21": 0}
        after = [e for e in _wire(gw, "site-cap") if e.seq > mark]
        sent = [e for e in after if e.kind == "command.sent"]
        d_answer = next(e for e in after if e.kind == "station.answer" and e.station_id == "D21")
        assert sent[0].station_id == "D21"
        assert all(d_answer.seq < e.seq for e in sent if e.station_id != "D21")
        _exposure_never_exceeds(gw, "site-cap", CAP)


async def test_a_dropped_station_keeps_its_share_reserved_until_it_is_back(tmp_path: Path) -> None:
    """A, B and D charge (11 / 5.5 / 5.5 kW). D drops: it may still draw 5.5 kW, so when B's vehicle leaves A gets
    only 22 - 5.5 = 16.5 kW. D reconnects (still charging): re-shared over all again, lowering A first."""
    specs = [("A21", V21), ("B201", V201), ("D21", V21)]
    async with site(tmp_path, specs) as (gw, sims):
        for sim in sims.values():
            await _plug_in(gw, sim)
        await gw.submit(_site_cap())
        await gw.outcomes("site-cap")
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 11_000, "B201": 5_500, "D21": 5_500}

        await sims["D21"].disconnect()
        await _until(lambda: not gw.fleet.stations["D21"].connected)
        await _settled(gw)
        assert _decisions(gw, "site-cap")[-1]["reason"] == "received"  # nothing changed: no decision to record
        await sims["B201"].end_transaction()
        await _until(lambda: not gw.fleet.stations["B201"].charging)
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 16_500, "B201": 0, "D21": 5_500}
        last = _decisions(gw, "site-cap")[-1]
        assert last["reason"] == "B201 session ended"
        assert "D21" not in {m["station"] for m in last["members"]}

        await sims["D21"].stop()  # its runner ended with the drop; start() again reconnects, vehicle still there
        sims["D21"].transaction = False
        await sims["D21"].start()
        await _until(lambda: gw.fleet.stations["D21"].capabilities_ready.is_set())
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 14_666, "B201": 0, "D21": 7_333}
        assert _decisions(gw, "site-cap")[-1]["reason"] == "D21 ready"
        _exposure_never_exceeds(gw, "site-cap", CAP)


async def test_a_refused_decrease_holds_the_raise_back(tmp_path: Path) -> None:
    """B refuses every new profile, so its decrease from 7.333 to 5.5 kW is not confirmed and it still counts at
    7.333 kW: D is raised only as far as the cap allows (22 - 11 - 7.333 = 3.667 kW), audited as held back."""
    specs = [("A21", V21), ("B201", V201), ("D21", V21)]
    async with site(tmp_path, specs) as (gw, sims):
        for sid in ("A21", "B201"):
            await _plug_in(gw, sims[sid])
        await gw.submit(_site_cap())
        await gw.outcomes("site-cap")
        await _settled(gw)
        sims["B201"].behaviour = SimBehaviour(reject=frozenset({"SetChargingProfile"}))
        await _plug_in(gw, sims["D21"])
        await _settled(gw)
        shares = gw.sharing.shares("site-cap")["import_limit_w"]
        assert shares["A21"] == 11_000
        assert shares["D21"] == 3_667
        held_back = _decisions(gw, "site-cap")[-1]
        assert held_back["reason"] == "raises held back"
        assert held_back["order"] == [["D21", "import_limit_w", 3_667]]
        _exposure_never_exceeds(gw, "site-cap", CAP)


async def test_a_changed_cap_goes_out_lowered_and_is_raised_once_answered(tmp_path: Path) -> None:
    """The utility raises the cap from 22 to 33 kW: the new version goes out with the shares as they are (no
    station gets more before every station answered), then A and B are raised to their ratings. Lowered to 11 kW:
    the new version itself carries the lower shares (B at its minimum), and nothing follows."""
    specs = [("A21", V21), ("B201", V201)]
    async with site(tmp_path, specs) as (gw, sims):
        for sim in sims.values():
            await _plug_in(gw, sim)
        await gw.submit(_site_cap())
        await gw.outcomes("site-cap")
        await _settled(gw)
        mark = max(e.seq for e in _wire(gw, "site-cap"))
        await gw.dispatcher.change(_site_cap(cap=33_000))
        await gw.outcomes("site-cap")
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 22_000, "B201": 11_000}
        after = [e for e in _wire(gw, "site-cap") if e.seq > mark]
        sent = [e for e in after if e.kind == "command.sent"]
        limits = [(e.station_id, _limit_w(gw, e.station_id or "", e.data["frame"][3])) for e in sent]
        assert sorted(limits[:2]) == [("A21", 14_666), ("B201", 7_333)]  # the new version, shares unchanged
        assert sorted(limits[2:]) == [("A21", 22_000), ("B201", 11_000)]
        fanout = {e.message_id for e in sent[:2]}
        answers = [e.seq for e in after if e.kind == "station.answer" and e.message_id in fanout]
        assert len(answers) == 2
        assert max(answers) < min(e.seq for e in sent[2:])  # raised only once the new version was answered
        assert [d["reason"] for d in _decisions(gw, "site-cap")[-2:]] == ["changed", "changed"]

        mark = max(e.seq for e in _wire(gw, "site-cap"))
        await gw.dispatcher.change(_site_cap(cap=11_000))
        await gw.outcomes("site-cap")
        await _settled(gw)
        after = [e for e in _wire(gw, "site-cap") if e.seq > mark and e.kind == "command.sent"]
        assert sorted((e.station_id, _limit_w(gw, e.station_id or "", e.data["frame"][3])) for e in after) == [
            ("A21", 6_860),  # B at its 4.14 kW minimum (6 A x 230 V x 3), A the rest
            ("B201", 4_140),
        ]
        _exposure_never_exceeds(gw, "site-cap", 33_000)
        assert abs(sims["A21"].power_w() - 6_860) < 1.0


async def test_after_a_restart_stations_not_back_yet_count_at_what_they_were_sent(tmp_path: Path) -> None:
    """A and B share 22 kW (14.666 / 7.333 kW); both drop and the gateway restarts. A is back first: B may still
    draw 7.333 kW, so A is not raised past 14.666 kW (the last decision is read back from the audit log)."""
    clock, adapter = ManualClock(T0), RecordingAdapter()
    config = make_config(tmp_path, _configs(["A21", "B201"]))
    async with gateway_at(config, clock, adapter) as gw:
        sims = {
            sid: SimStation(gw.ocpp.url, sid, v, password=PASSWORD, meter_interval=3600, clock=clock,
                            power=DEMAND_W, reconnect_delay=None)
            for sid, v in (("A21", V21), ("B201", V201))
        }  # fmt: skip
        await asyncio.gather(*(s.start() for s in sims.values()))
        for sim in sims.values():
            await _plug_in(gw, sim)
        await gw.submit(_site_cap())
        await gw.outcomes("site-cap")
        await _settled(gw)
        assert gw.sharing.shares("site-cap")["import_limit_w"] == {"A21": 14_666, "B201": 7_333}
        for sim in sims.values():
            await sim.disconnect()  # dropped mid-session: the vehicles stay
    async with gateway_at(config, clock, adapter) as gw:
        a = sims["A21"]
        try:
            await a.stop()
            a.url = gw.ocpp.url
            await a.start()
            await _until(
                lambda: gw.fleet.stations["A21"].charging and gw.fleet.stations["A21"].capabilities_ready.is_set()
            )
            await _settled(gw)
            shares = gw.sharing.shares("site-cap")["import_limit_w"]
            # B keeps what it was last sent: 7.333 kW, or 7.334 if A's drop was seen first and gave it A's spare watt.
            assert shares["B201"] in (7_333, 7_334)
            assert shares["A21"] == CAP - shares["B201"]
            assert abs(a.power_w() - shares["A21"]) < 1.0
            assert "restored" in [d["reason"] for d in _decisions(gw, "site-cap")]
        finally:
            await asyncio.gather(*(s.stop() for s in sims.values()))
