"""The dashboard's event stream over real HTTP: token handling, the snapshot, live station, directive and alarm
events, and the page's static files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.dashboard import EventHub
from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import Directive
from tests.dashboard.conftest import MIX, World
from tests.support import TOKEN


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """Parse a text/event-stream body into (event, data) pairs as they arrive."""
    name = "message"
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])
        elif not line:
            name = "message"


async def _until(stream: AsyncIterator[tuple[str, Any]], event: str) -> Any:
    async for name, data in stream:
        if name == event:
            return data
    raise AssertionError(f"stream ended before a {event!r} event")


async def test_stream_needs_the_token_and_the_page_does_not(world: World) -> None:
    url = world.gateway.api_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/dashboard/events") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/dashboard/events?token=wrong") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/api/stations?token={TOKEN}") as resp:
            assert resp.status == 401  # every /api call stays header-only
        async with http.get(f"{url}/", allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/dashboard/"
        for name, kind in (("", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")):
            async with http.get(f"{url}/dashboard/{name}") as resp:
                assert resp.status == 200
                assert resp.content_type == kind
        async with http.get(f"{url}/dashboard/../pyproject.toml") as resp:
            assert resp.status == 404


async def test_snapshot_then_live_directive_station_and_alarm_events(world: World) -> None:
    gw = world.gateway
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(f"{gw.api_url}/dashboard/events?token={TOKEN}") as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        stream = _events(resp)
        snapshot = await _until(stream, "snapshot")
        rows = {s["id"]: s for s in snapshot["stations"]}
        assert {sid: (r["connected"], r["version"]) for sid, r in rows.items()} == {
            sid: (True, v.value) for sid, v in MIX.items()
        }
        assert snapshot["checkpoint"]["entries"] > 0

        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(f"{gw.api_url}/api/directives", json=SAMPLE_DIRECTIVE, headers=headers) as posted:
            assert posted.status == 202
        await gw.dispatcher.wait(SAMPLE_DIRECTIVE["id"])
        seen: dict[str, Any] = {}
        while seen.get("state") != "active":
            seen = await _until(stream, "directive")
        assert seen["counts"] == {"accepted": 1, "partial": 2}
        assert "import_limit_w" in seen["controls"]

        await world.stations["DASH-21"].send_meter_values()
        station: dict[str, Any] = {}
        while not (station.get("id") == "DASH-21" and station.get("power_w") is not None):
            station = next(iter(s for s in await _until(stream, "stations") if s["id"] == "DASH-21"), {})
        assert station["controls"]
        assert station["limit_w"] == 7000
        sample = await _until(stream, "sample")
        assert sample["power_w"] == station["power_w"]
        assert sample["limit_w"] == 3 * 7000  # every station applied the import limit

        await world.stations["DASH-21"].raise_alarm("FreqDroop", grid_event_fault="OverFrequency")
        alarm = await _until(stream, "alarm")
        assert (alarm["station_id"], alarm["grid_event_fault"]) == ("DASH-21", "OverFrequency")


async def test_a_subscriber_that_falls_behind_is_dropped_not_buffered(world: World) -> None:
    gw = world.gateway
    hub = EventHub(gw.fleet, gw.store, gw.audit, gw.clock, gw.adapters, queue_size=3)
    slow = hub.subscribe()
    for _ in range(5):
        hub.tick()
    assert slow.dropped
    assert hub.subscribers == 0
    drained = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert drained[-1] is None  # the stream ends; the browser reconnects and gets a fresh snapshot


async def test_closing_the_hub_ends_open_streams(world: World) -> None:
    gw = world.gateway
    hub = EventHub(gw.fleet, gw.store, gw.audit, gw.clock, gw.adapters)
    sub = hub.subscribe()
    hub.close()
    assert sub.queue.get_nowait() is not None  # the snapshot
    assert sub.queue.get_nowait() is None


async def test_a_subscriber_joining_after_changes_nobody_watched_sees_them_all_in_its_snapshot(world: World) -> None:
    gw = world.gateway
    hub = EventHub(gw.fleet, gw.store, gw.audit, gw.clock, gw.adapters)
    gw.dispatcher.on_event(hub.directive_event)
    record = await gw.submit(Directive.model_validate(SAMPLE_DIRECTIVE))
    await gw.dispatcher.wait(record.directive.id)
    metered = asyncio.Event()
    gw.fleet.on_change(lambda sid: metered.set() if gw.fleet.stations[sid].power_w is not None else None)
    gw.fleet.on_change(hub.station_changed)
    await world.stations["DASH-21"].send_meter_values()
    await metered.wait()
    hub.tick()  # nobody subscribed: rows are not built (gateway/dashboard/hub.py), and nothing is kept for later
    assert hub.subscribers == 0

    late = hub.subscribe()
    snapshot = late.queue.get_nowait()
    assert snapshot is not None
    rows = {s["id"]: s for s in snapshot.data["stations"]}
    assert rows["DASH-21"]["power_w"] == gw.fleet.stations["DASH-21"].power_w
    assert rows["DASH-21"]["limit_w"] == 7000  # the directive applied while nobody watched is in force
    assert [d["id"] for d in snapshot.data["directives"]] == [record.directive.id]
    hub.tick()
    assert [m.event for m in [late.queue.get_nowait() for _ in range(late.queue.qsize())] if m] == ["sample"]
    hub.station_changed("DASH-21")
    hub.tick()
    stations = late.queue.get_nowait()
    assert stations is not None
    assert stations.event == "stations"
    assert [s["id"] for s in stations.data] == ["DASH-21"]
