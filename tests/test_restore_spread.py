"""500 simulated stations over real OCPP-J end a curtailment: the restore ramps they receive spread the fleet's
step back over the delay window instead of one second (issue #3, docs/dispatch.md "Restore").

Gateway and stations share one ManualClock. The stations' own charging-profile logic (K01: startSchedule, periods,
duration, validTo) is evaluated at every second of the window, so the spread shown is what the stations would do.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.model import Directive, OcppVersion, OutcomeStatus
from gateway.runtime import Gateway
from gateway.schedule import station_fraction
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.support import make_config, station_configs

T0 = datetime(2026, 7, 1, 17, 0, tzinfo=UTC)
COUNT = 500
CURTAILED_W = 2000.0
DURATION_S = 900
MAX_DELAY_S = 300
RAMP_PCT_PER_S = 1.0
VERSIONS = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


def limit_at(sim: SimStation, at: datetime) -> float | None:
    """The station's own limit at `at`, from the profiles it holds (None: nothing limits it)."""
    return sim.profiles.rates(1, at).limit_w


async def settle(gw: Gateway) -> None:
    while gw.dispatcher.resends():
        await asyncio.gather(*gw.dispatcher.resends())


async def test_500_stations_step_back_spread_over_the_delay_window(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    ids = [f"RS{i:04d}" for i in range(COUNT)]
    config = make_config(tmp_path, station_configs(ids), security_profile=0, call_timeout_s=30.0)
    config.dispatch.restore_ramp_pct_per_s = RAMP_PCT_PER_S
    config.dispatch.restore_max_delay_s = MAX_DELAY_S
    gw = Gateway.build(config, clock=clock)
    await gw.start()
    sims = [
        SimStation(gw.ocpp.url, sid, VERSIONS[i % 3], meter_interval=86_400, clock=clock, reconnect_delay=None)
        for i, sid in enumerate(ids)
    ]
    gate = asyncio.Semaphore(100)

    async def start(sim: SimStation) -> None:
        async with gate:
            await sim.start()

    try:
        await asyncio.gather(*(start(s) for s in sims))
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
        curtailment = Directive.model_validate(
            {"id": "evening-peak", "duration_s": DURATION_S, "controls": {"import_limit_w": CURTAILED_W}}
        )
        await gw.submit(curtailment)
        outcomes = await gw.outcomes("evening-peak")
        assert {o.status for o in outcomes} == {OutcomeStatus.ACCEPTED}
        end = T0 + timedelta(seconds=DURATION_S)
        assert all(limit_at(s, end - timedelta(seconds=1)) == CURTAILED_W for s in sims)

        # Nothing is sent before the lead; at end - lead_s every station gets its ramp, ahead of the end.
        clock.set(end - timedelta(seconds=config.dispatch.restore_lead_s + 1))
        await gw.dispatcher.tick()
        await settle(gw)
        assert not [e for e in gw.audit.trail("evening-peak") if e.kind == "restore.planned"]
        clock.advance(1)
        await gw.dispatcher.tick()
        await settle(gw)
        (planned,) = [e for e in gw.audit.trail("evening-peak") if e.kind == "restore.planned"]
        assert planned.data["ramp_pct_per_s"] == RAMP_PCT_PER_S
        assert planned.data["max_delay_s"] == MAX_DELAY_S
        assert planned.data["ramp_source"] == planned.data["delay_source"] == "config"
        ramps = [e for e in gw.audit.trail("evening-peak") if e.kind == "command.sent" and e.seq > planned.seq]
        assert len(ramps) == COUNT  # one ramp per station: the 2.1 TxDefaultProfile holds its rating, no ramp
        assert {e.data["action"] for e in ramps} == {"SetChargingProfile"}

        # The stations now follow their ramps on their own clock: evaluate each second of the window.
        seconds = range(-5, MAX_DELAY_S + 200)
        limits = {s.station_id: [limit_at(s, end + timedelta(seconds=t)) for t in seconds] for s in sims}
        first_rise: dict[str, int] = {}
        for sid, series in limits.items():
            rises = [t for t, (a, b) in zip(seconds[1:], itertools.pairwise(series), strict=True) if _up(a, b)]
            assert rises, sid
            first_rise[sid] = rises[0]
            # Held at the curtailed limit until its own reproducible delay has passed, never lowered on the way.
            delay = int(station_fraction("evening-peak", sid, "restore") * MAX_DELAY_S)
            assert first_rise[sid] == delay
            assert all(v == CURTAILED_W for v in series[5 : 5 + delay])
        starts = Counter(first_rise.values())
        assert min(first_rise.values()) >= 0
        assert max(first_rise.values()) < MAX_DELAY_S + 1
        assert len(starts) > 200  # starts are spread over the window, not clumped
        assert max(starts.values()) <= 0.02 * COUNT  # at most 2 % of the fleet starts in any second (measured: 6)

        # The fleet's limit rises gradually: never down, and no second adds more than 1 % of the whole rise.
        final = {sid: max(v for v in series if v is not None) for sid, series in limits.items()}
        fleet: list[float] = [
            sum(_or(series[i], final[sid]) for sid, series in limits.items()) for i in range(len(seconds))
        ]
        assert fleet[0] == COUNT * CURTAILED_W
        growth = [b - a for a, b in itertools.pairwise(fleet)]
        assert min(growth) >= 0
        assert max(growth) <= 0.01 * (fleet[-1] - fleet[0])  # measured: 0.47 %
        # Without the restore every station would step back in the same second: 100 % of the rise at once.
        stepping = Counter(
            t
            for series in limits.values()
            for t, (a, b) in zip(seconds[1:], itertools.pairwise(series), strict=True)
            if _up(a, b)
        )
        assert max(stepping.values()) <= 0.2 * COUNT  # small steps of many ramps (measured: 56 stations, 11 %)
        # Each ramp ends, and its profile lapses: what else is in force (here nothing) takes over.
        assert all(limit_at(s, end + timedelta(seconds=MAX_DELAY_S + 3600)) is None for s in sims)
    finally:
        await asyncio.gather(*(s.stop() for s in sims))
        await gw.stop()


def _up(before: float | None, after: float | None) -> bool:
    return before is not None and (after is None or after > before)


def _or(limit: float | None, lapsed: float) -> float:
    """A station's limit, or its ramp's final level once the ramp profile has lapsed."""
    return lapsed if limit is None else limit
