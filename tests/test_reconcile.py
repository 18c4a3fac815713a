"""Reconciliation on reconnect, cancel with randomization and resumption after a restart, end to end in one process
on a shared ManualClock (stations power-cycle with `stop`/`start`, keeping what they hold)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from gateway.schedule import station_fraction
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.support import PASSWORD, make_config, station_configs
from tests.test_lifecycle import T0, RecordingAdapter, _signal, gateway_at, stations

V21, V201, V16 = OcppVersion.V21, OcppVersion.V201, OcppVersion.V16
SETS_AND_CLEARS = ("SetDERControl", "SetChargingProfile", "ClearDERControl", "ClearChargingProfile")


def _directive(did: str, **extra: Any) -> Directive:
    curve = {
        "kind": "volt_var",
        "x_unit": "pct_v_nominal",
        "y_unit": "pct_max_var",
        "points": [{"x": 92, "y": -30}, {"x": 108, "y": 30}],
    }
    raw = {"id": did, "duration_s": 3600, "controls": {"import_limit_w": 5000, "curves": [curve]}, **extra}
    return Directive.model_validate(raw)


async def _gone(gw: Gateway, sid: str) -> None:
    """Until the gateway has seen the station leave (bounded)."""
    state = gw.fleet.stations[sid]
    async with asyncio.timeout(5):
        while state.connected:  # noqa: ASYNC110 - the registry offers no event for a disconnect
            await asyncio.sleep(0.01)


async def _back(gw: Gateway, sims: Sequence[SimStation]) -> None:
    """Start stations again and wait for their reconciliation to finish."""
    await asyncio.gather(*(s.start() for s in sims))
    await asyncio.gather(*(gw.fleet.stations[s.station_id].capabilities_ready.wait() for s in sims))
    while gw.dispatcher.resends():
        await asyncio.gather(*gw.dispatcher.resends())


def _actions(sim: SimStation, since: int) -> list[str]:
    return [a for a, _ in sim.received[since:] if a in SETS_AND_CLEARS]


def _held_ids(sim: SimStation) -> set[str]:
    return {c.control_id for c in sim.der if not c.is_default} | {str(p.profile_id) for p in sim.profiles.profiles}


async def test_a_reconnecting_station_gets_only_the_difference(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    ids = ["A21", "B201", "C16"]
    config = make_config(tmp_path, station_configs(ids))
    async with (
        gateway_at(config, clock, adapter) as gw,
        stations(gw, ["A21"]) as a,
        stations(gw, ["B201"], V201) as b,
        stations(gw, ["C16"], V16) as c,
    ):
        sims = {**a, **b, **c}
        # Distinct priorities: profiles of one purpose at one stackLevel replace each other on a station.
        keep, drop, short = (
            _directive("keep", priority=2),
            _directive("drop", priority=5),
            _directive("short", priority=4, duration_s=60),
        )
        for d in (keep, drop, short):
            await gw.submit(d)
            await gw.outcomes(d.id)
        changed = _directive("change", priority=3)
        await gw.submit(changed)
        await gw.outcomes("change")
        before_held = {sid: _held_ids(s) for sid, s in sims.items()}
        for s in sims.values():
            await s.stop()
        for sid in ids:
            await _gone(gw, sid)
        # While they are away: one is cancelled, one changed, one added, one expires.
        await gw.dispatcher.cancel("drop")
        lower = changed.controls.model_copy(update={"import_limit_w": 3000.0})
        await gw.dispatcher.change(changed.model_copy(update={"controls": lower}))
        await gw.outcomes("change")
        await gw.submit(_directive("new", priority=6, controls={"import_limit_w": 2000}))
        await gw.outcomes("new")
        assert {o.status for o in gw.store.outcomes("new")} == {OutcomeStatus.OFFLINE}
        clock.advance(120)
        await gw.dispatcher.tick()
        marks = {sid: len(s.received) for sid, s in sims.items()}
        await _back(gw, list(sims.values()))
        new_profile = str(gw.store.directive("new").number * 16)  # type: ignore[union-attr]
        # 2.1: asked what it holds, then: the new directive and the changed limit are sent; the cancelled
        # directive's controls cleared; the expired one cleared if still listed; "keep" not sent again.
        a21 = sims["A21"]
        assert [x for x, _ in a21.received[marks["A21"] :] if x.startswith("Get") and x != "GetVariables"] == [
            "GetDERControl",
            "GetChargingProfiles",
        ]
        keep_number = gw.store.directive("keep").number  # type: ignore[union-attr]
        for sid in ("A21", "B201"):
            sent = sims[sid].received[marks[sid] :]
            set_ids = [p["chargingProfile"]["id"] for x, p in sent if x == "SetChargingProfile"]
            assert all(i // 16 != keep_number for i in set_ids), sid
            assert all(not p.get("controlId", "").startswith(f"g{keep_number}-") for x, p in sent)
            assert int(new_profile) in set_ids
        assert "SetDERControl" not in _actions(a21, marks["A21"])
        assert "ClearDERControl" in _actions(a21, marks["A21"])
        for sid in ("A21", "B201"):
            drop_n = gw.store.directive("drop").number  # type: ignore[union-attr]
            short_n = gw.store.directive("short").number  # type: ignore[union-attr]
            held = _held_ids(sims[sid])
            assert not any(h.startswith((f"g{drop_n}-", f"g{short_n}-")) for h in held), sid
            assert not any(h.isdigit() and int(h) // 16 in (drop_n, short_n) for h in held), sid
            assert held >= {h for h in before_held[sid] if h.startswith(f"g{keep_number}-")}
        # 1.6 reports nothing: what is in force is sent again, and the cancelled directive's profile cleared.
        c16 = _actions(sims["C16"], marks["C16"])
        assert c16.count("SetChargingProfile") == 3  # keep, change, new
        assert "ClearChargingProfile" in c16
        assert {o.status for o in gw.store.outcomes("new")} == {OutcomeStatus.ACCEPTED}
        [entry] = [e for e in gw.audit.query(kind="station.reconciled", station_id="A21")][-1:]
        assert entry.data["queried"] is True
        assert "keep" in entry.data["already_held"]


async def test_a_fresh_station_is_not_queried(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(make_config(tmp_path, station_configs(["N"])), clock, adapter) as gw,
        stations(gw, ["N"]) as s,
    ):
        while gw.dispatcher.resends():
            await asyncio.gather(*gw.dispatcher.resends())
        assert not [a for a, _ in s["N"].received if a in ("GetDERControl", "GetChargingProfiles")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_cancel_with_randomization_spreads_clears_and_survives_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    ids = [f"R{i:02d}" for i in range(12)]
    config = make_config(tmp_path, station_configs(ids), port=_free_port())
    gw = Gateway.build(config, clock=clock, adapters=[adapter := RecordingAdapter()])
    await gw.start()
    sims = {
        sid: SimStation(
            gw.ocpp.url, sid, V201, password=PASSWORD, meter_interval=3600, clock=clock, reconnect_delay=0.05
        )
        for sid in ids
    }
    try:
        await asyncio.gather(*(s.start() for s in sims.values()))
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
        await gw.submit(Directive.model_validate({"id": "cut", "controls": {"import_limit_w": 4000}}))
        await gw.outcomes("cut")
        assert adapter.sink is not None
        await adapter.sink.cancel("cut", _signal("<cancel/>", clock), randomize_s=600)
        assert gw.store.directive("cut").state.value == "cancelled"  # type: ignore[union-attr]
        due = {sid: T0 + timedelta(seconds=600 * station_fraction("cut", sid, "cancel")) for sid in ids}

        def cleared() -> set[str]:
            """Stations released from the limit: at its due time each gets its restore ramp in place of the
            curtailment (same profile id; docs/dispatch.md, "Restore"), without a second random delay."""
            return {
                sid
                for sid, s in sims.items()
                if all(len(p.schedules()[0]["chargingSchedulePeriod"]) > 1 for p in s.profiles.profiles)
            }

        async def step(seconds: float) -> None:
            clock.advance(seconds)
            await gw.dispatcher.tick()
            while gw.dispatcher.resends():
                await asyncio.gather(*gw.dispatcher.resends())

        assert cleared() == set()
        await step(300)
        assert cleared() == {sid for sid, t in due.items() if t <= clock.now()}
        assert 0 < len(cleared()) < len(ids)
        # The gateway stops half-way; a new one on the same store carries on with the clears still owed.
        await gw.stop()
        gw = Gateway.build(config, clock=clock, adapters=[RecordingAdapter()])
        await gw.start()
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
        while gw.dispatcher.resends():
            await asyncio.gather(*gw.dispatcher.resends())
        assert cleared() == {sid for sid, t in due.items() if t <= clock.now()}  # reconnecting cleared no one early
        for _ in range(6):
            await step(60)
            assert cleared() == {sid for sid, t in due.items() if t <= clock.now()}
        assert cleared() == set(ids)
        assert gw.store.pending_clears() == []
        assert {o.status for o in gw.store.outcomes("cut")} == {OutcomeStatus.CLEARED}
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gw.stop()
