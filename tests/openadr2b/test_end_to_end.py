"""OpenADR 2.0b end to end over real HTTP against openleadr's own VTN: VTN event -> VEN adapter (opt in) ->
runtime -> OCPP SetChargingProfile on simulated stations at each interval boundary -> TELEMETRY_USAGE to the VTN.

openleadr polls on real time (1 s at the least), so this test runs on the system clock: it waits on the VTN's
callbacks, the stations' received messages and the dispatcher's directive events, never on fixed sleeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.clock import SystemClock
from gateway.interfaces import DirectiveEvent, DirectiveEventKind
from gateway.runtime import Gateway
from gateway.utility import FleetView
from protocols.ocpp.simulator import SimStation
from protocols.openadr2b.adapter import OpenAdr2bAdapter
from protocols.openadr2b.opt import Opt
from tests.openadr2b.conftest import WAIT_S, Vtn, adapter_config
from tests.support import PASSWORD, make_config, station_configs

# openleadr's VTN stores itself under a plain string key in its aiohttp app.
pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.AppKey")

STATIONS = ("EV-1", "EV-2")
STEP = timedelta(seconds=2)
#: x-loadControlCapacity fractions of the configured 22 kW reference: 5.5 kW, then 2.75 kW (under the 7 kW demand).
FRACTIONS = (0.25, 0.125)


async def test_event_becomes_profiles_at_each_interval_and_usage_reaches_the_vtn(vtn: Vtn, tmp_path: Path) -> None:
    clock = SystemClock()  # shared by the gateway and the adapter
    adapters: list[OpenAdr2bAdapter] = []

    def make(view: FleetView) -> OpenAdr2bAdapter:
        adapter = OpenAdr2bAdapter(adapter_config(vtn), clock=clock, fleet=view)
        adapters.append(adapter)
        return adapter

    config = make_config(tmp_path, station_configs(STATIONS, groups=["site-a"]))
    gw = Gateway.build(config, clock=clock, adapters=[make])

    events: asyncio.Queue[DirectiveEvent] = asyncio.Queue()

    async def listen(event: DirectiveEvent) -> None:
        events.put_nowait(event)

    gw.dispatcher.on_event(listen)
    await gw.start()  # registers the VEN and its reports with the VTN
    sims = {s: SimStation(gw.ocpp.url, s, password=PASSWORD, meter_interval=3600) for s in STATIONS}
    try:
        [adapter] = adapters
        assert adapter.health().ok
        await asyncio.gather(*(s.start() for s in sims.values()))
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*(gw.fleet.stations[s].capabilities_ready.wait() for s in STATIONS))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)  # the next poll comes within 1 s
        intervals = [
            {"dtstart": start + i * STEP, "duration": STEP, "signal_payload": f} for i, f in enumerate(FRACTIONS)
        ]
        event_id = vtn.add_event("LOAD_CONTROL", "x-loadControlCapacity", intervals, target={"resource_id": "site-a"})
        assert await vtn.opt(event_id) == "optIn"
        assert adapter.opts[event_id].opt is Opt.IN
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*(s.wait_for("SetChargingProfile", len(FRACTIONS)) for s in sims.values()))
        ids = [f"oa2.{event_id}.0.{i}" for i in range(len(FRACTIONS))]
        limits = [f * 22_000 for f in FRACTIONS]
        for station in sims.values():
            sent = [
                p["chargingProfile"]["chargingSchedule"][0] for a, p in station.received if a == "SetChargingProfile"
            ]
            assert sorted(
                (s["startSchedule"], s["duration"], s["chargingSchedulePeriod"][0]["limit"]) for s in sent
            ) == [(f"{start + i * STEP:%Y-%m-%dT%H:%M:%SZ}", STEP.seconds, limit) for i, limit in enumerate(limits)]
        for directive_id in ids:
            assert [o.status.value for o in await gw.outcomes(directive_id)] == ["accepted"] * len(sims)
        # The dispatcher's timer starts and ends each interval's directive at its boundary (within its 1 s tick).
        seen: list[tuple[str, DirectiveEventKind, datetime]] = []
        async with asyncio.timeout(WAIT_S):
            while len([e for e in seen if e[1] is DirectiveEventKind.COMPLETED]) < len(ids):
                event = await events.get()
                if event.kind in (DirectiveEventKind.STARTED, DirectiveEventKind.COMPLETED):
                    seen.append((event.directive_id, event.kind, event.at))
                if event.kind is DirectiveEventKind.STARTED and event.directive_id == ids[-1]:
                    # The last interval is in force: each station draws its limit, and the fleet reports it.
                    assert [s.power_w() for s in sims.values()] == [limits[-1]] * len(sims)
                    await asyncio.gather(*(s.send_meter_values() for s in sims.values()))
                    assert gw.fleet.stations["EV-1"].power_w == limits[-1]
        # Each directive's start and end at its interval's boundaries (one tick may start the next before it
        # completes the previous: same instant).
        at = {(d, k): t for d, k, t in seen}
        assert len(at) == len(seen) == 2 * len(ids)
        for i, directive_id in enumerate(ids):
            for kind, boundary in ((DirectiveEventKind.STARTED, start + i * STEP),
                                   (DirectiveEventKind.COMPLETED, start + (i + 1) * STEP)):  # fmt: skip
                assert boundary <= at[(directive_id, kind)] < boundary + timedelta(seconds=1.5)
        # TELEMETRY_USAGE: the site's metered import as the stations reported it (2 x 2.75 kW).
        async with asyncio.timeout(WAIT_S):
            while True:
                resource, measurement, values = await vtn.report()
                if measurement == "RealPower" and [v for _, v in values] == [2 * limits[-1]]:
                    break
        assert resource == "site-a"
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))
        await gw.stop()
