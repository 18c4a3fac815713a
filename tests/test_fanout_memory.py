"""A finished fan-out is not kept with its outcome list (they added up with every directive); its outcomes are
still there to read."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

from gateway import gcfreeze
from gateway.model import Directive, OcppVersion, OutcomeStatus
from protocols.ocpp.simulator import SimStation
from tests.support import PASSWORD, make_config, running, station_configs

DROOP = {"over_freq_hz": 50.2, "under_freq_hz": 49.8, "over_droop": 0.05, "under_droop": 0.05, "response_time_s": 5}


async def test_a_finished_fan_out_is_forgotten_and_its_outcomes_stay_readable(tmp_path: Path) -> None:
    ids = ["M1", "M2"]
    async with running(make_config(tmp_path, station_configs(ids))) as gw:
        stations = [
            SimStation(gw.ocpp.url, sid, OcppVersion.V21, password=PASSWORD, meter_interval=3600) for sid in ids
        ]
        try:
            await asyncio.gather(*(s.start() for s in stations))
            await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
            directive = Directive.model_validate({"id": "mem", "duration_s": 600, "controls": {"freq_droop": DROOP}})
            await gw.dispatcher.submit(directive)
            (run,) = gw.dispatcher.in_flight()
            finished = weakref.ref(run)
            outcomes = await gw.dispatcher.wait("mem")
            del run
            gcfreeze.release()  # the fan-out's heap is frozen for a while; hand it back so gc.collect sees all
            gc.collect()
            assert finished() is None
            assert [o.status for o in outcomes] == [OutcomeStatus.ACCEPTED] * 2
            assert await gw.dispatcher.wait("mem") == outcomes
        finally:
            await asyncio.gather(*(s.stop() for s in stations))
