"""Directive lifecycle on an injected clock, per-station randomization, and the utility seam (sink, events, alarms).

No sleeps: time moves when the test advances the ManualClock and calls Dispatcher.tick().
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import GatewayConfig
from gateway.interfaces import (
    AlarmReport,
    DirectiveEvent,
    DirectiveEventKind,
    DirectiveSink,
    LinkHealth,
    Signal,
)
from gateway.model import Directive, OcppVersion, SourceProtocol
from gateway.runtime import Gateway
from gateway.schedule import station_window
from mappings.units import timestamp
from protocols.ocpp.simulator import ManualClock, SimStation
from tests.support import PASSWORD, make_config, station_configs

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class RecordingAdapter:
    """A utility adapter that records what the runtime reports to it (the seam, not a protocol under test)."""

    protocol = SourceProtocol.IEEE2030_5

    def __init__(self) -> None:
        self.sink: DirectiveSink | None = None
        self.events: list[DirectiveEvent] = []
        self.alarms: list[AlarmReport] = []

    async def start(self, sink: DirectiveSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.sink = None

    def health(self) -> LinkHealth:
        return LinkHealth(ok=True, last_seen=None)

    async def directive_event(self, event: DirectiveEvent) -> None:
        self.events.append(event)

    async def alarm(self, report: AlarmReport) -> None:
        self.alarms.append(report)


@asynccontextmanager
async def gateway_at(config: GatewayConfig, clock: ManualClock, adapter: RecordingAdapter) -> AsyncIterator[Gateway]:
    gw = Gateway.build(config, clock=clock, adapters=[adapter])
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@asynccontextmanager
async def stations(
    gw: Gateway, ids: Sequence[str], version: OcppVersion = OcppVersion.V21
) -> AsyncIterator[dict[str, SimStation]]:
    """Simulated stations on the gateway's clock, so both sides agree on what is in force."""
    clock = gw.clock
    assert isinstance(clock, ManualClock)
    sims = {
        sid: SimStation(gw.ocpp.url, sid, version, password=PASSWORD, meter_interval=3600, clock=clock) for sid in ids
    }
    try:
        await asyncio.gather(*(s.start() for s in sims.values()))
        await asyncio.gather(*(gw.fleet.stations[sid].capabilities_ready.wait() for sid in ids))
        yield sims
    finally:
        await asyncio.gather(*(s.stop() for s in sims.values()))


def _signal(text: str, clock: ManualClock, signal_id: str = "mrid-1") -> Signal:
    raw = text.encode()
    return Signal(
        SourceProtocol.IEEE2030_5,
        "https://utility.test/dcap",
        hashlib.sha256(raw).hexdigest(),
        len(raw),
        clock.now(),
        signal_id,
    )


def _curve_directive(**extra: Any) -> Directive:
    curve = {
        "kind": "volt_var",
        "x_unit": "pct_v_nominal",
        "y_unit": "pct_max_var",
        "points": [{"x": 92, "y": -30}, {"x": 108, "y": 30}],
    }
    return Directive.model_validate({"source": {"protocol": "ieee2030_5"}, "controls": {"curves": [curve]}, **extra})


async def test_scheduled_directive_goes_out_ahead_then_starts_and_completes_on_time(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(make_config(tmp_path, station_configs(["A"])), clock, adapter) as gw,
        stations(gw, ["A"]) as s,
    ):
        d = _curve_directive(id="evt", start=(T0 + timedelta(minutes=5)).isoformat(), duration_s=600)
        await gw.submit(d)
        await gw.outcomes("evt")
        # Sent ahead of its start: the 2.1 station holds it with startTime/duration (R04).
        [payload] = [p for a, p in s["A"].received if a == "SetDERControl"]
        assert payload["curve"]["startTime"] == "2026-06-01T12:05:00Z"
        assert payload["curve"]["duration"] == 600
        assert gw.store.directive("evt").state.value == "scheduled"  # type: ignore[union-attr]
        assert [e.kind for e in adapter.events] == [DirectiveEventKind.RECEIVED, DirectiveEventKind.SCHEDULED]
        assert await gw.dispatcher.tick() == T0 + timedelta(minutes=5)
        clock.advance(300)
        assert await gw.dispatcher.tick() == T0 + timedelta(minutes=15)
        assert gw.store.directive("evt").state.value == "active"  # type: ignore[union-attr]
        clock.advance(600)
        assert await gw.dispatcher.tick() is None
        assert gw.store.directive("evt").state.value == "completed"  # type: ignore[union-attr]
        assert [e.kind for e in adapter.events][2:] == [DirectiveEventKind.STARTED, DirectiveEventKind.COMPLETED]
        kinds = [e.kind for e in gw.audit.query(directive_id="evt")]
        assert kinds[0] == "directive.created"
        assert kinds[-3:] == ["directive.scheduled", "directive.active", "directive.completed"]


async def test_each_station_gets_its_own_reproducible_randomized_start(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    ids = ["R1", "R2", "R3"]
    async with gateway_at(make_config(tmp_path, station_configs(ids)), clock, adapter) as gw, stations(gw, ids) as s:
        d = _curve_directive(
            id="rnd", start=(T0 + timedelta(hours=1)).isoformat(), duration_s=900, randomize_start_s=600
        )
        await gw.submit(d)
        await gw.outcomes("rnd")
        starts = {}
        for sid in ids:
            [payload] = [p for a, p in s[sid].received if a == "SetDERControl"]
            starts[sid] = payload["curve"]["startTime"]
            expected = station_window(d, sid, received=T0).start  # an auditor recomputes it from the ids alone
            assert starts[sid] == timestamp(expected)
            assert T0 + timedelta(hours=1) <= expected <= T0 + timedelta(hours=1, minutes=10)
        assert len(set(starts.values())) == 3


async def test_sink_audits_signals_refuses_unknown_targets_and_routes_events(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with gateway_at(make_config(tmp_path, station_configs(["A"])), clock, adapter) as gw, stations(gw, ["A"]):
        assert adapter.sink is not None
        good = _curve_directive(id="from-utility", duration_s=60)
        await adapter.sink.submit(good, _signal("<DERControl/>", clock))
        await gw.outcomes("from-utility")
        bad = _curve_directive(id="nowhere", target={"scope": "station", "ids": ["ZZZ"]})
        await adapter.sink.submit(bad, _signal("<DERControl>2</DERControl>", clock, "mrid-2"))
        await adapter.sink.cancel("from-utility", _signal("<cancel/>", clock, "mrid-1"))
        await adapter.sink.cancel("never-was", _signal("<cancel/>", clock, "mrid-3"))
        # Directives from the operator API are not reported to the 2030.5 adapter.
        await gw.submit(Directive.model_validate({"id": "operator", "controls": {"import_limit_w": 1000}}))
        await gw.outcomes("operator")
        kinds = [(e.directive_id, e.kind) for e in adapter.events]
        assert ("from-utility", DirectiveEventKind.STARTED) in kinds
        assert kinds[-1] == ("from-utility", DirectiveEventKind.CANCELLED)
        assert all(d != "operator" for d, _ in kinds)
        signals = gw.audit.query(kind="signal.received")
        assert [e.signal_id for e in signals] == ["mrid-1", "mrid-2", "mrid-1", "mrid-3"]
        assert signals[0].data["sha256"] == hashlib.sha256(b"<DERControl/>").hexdigest()
        rejected = [e.data["reason"] for e in gw.audit.query(kind="input.rejected")]
        assert rejected == ["unknown station(s): ZZZ", "cancel of unknown directive never-was"]
        adapter.sink.sent_upstream("Response", {"status": 2}, directive_id="from-utility", signal_id="mrid-1")
        [sent] = gw.audit.query(kind="upstream.sent")
        assert (sent.data, sent.directive_id, sent.signal_id) == (
            {"what": "Response", "status": 2},
            "from-utility",
            "mrid-1",
        )


async def test_station_alarms_reach_the_adapter_classified(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    ids = ["F1", "F2", "F3", "L1"]
    async with gateway_at(make_config(tmp_path, station_configs(ids)), clock, adapter) as gw, stations(gw, ids) as s:
        for sid in ("F1", "F2", "F3"):
            await s[sid].raise_alarm("FreqDroop", grid_event_fault="UnderFrequency")
        await s["L1"].raise_alarm("VoltVar", grid_event_fault="OverVoltage")
        await gw.alarms.flush()
        grid = [r for r in adapter.alarms if r.grid_event]
        local = [r for r in adapter.alarms if not r.grid_event]
        assert [sorted(a.station_id for a in r.alarms) for r in grid] == [["F1", "F2", "F3"]]
        assert [r.alarms[0].station_id for r in local] == ["L1"]
        assert len(gw.audit.query(kind="station.alarm")) == 4


async def test_a_changed_directive_replaces_in_place_and_clears_what_it_dropped(tmp_path: Path) -> None:
    clock, adapter = ManualClock(T0), RecordingAdapter()
    async with (
        gateway_at(make_config(tmp_path, station_configs(["A"])), clock, adapter) as gw,
        stations(gw, ["A"]) as s,
    ):
        assert adapter.sink is not None
        first = _curve_directive(id="chg", duration_s=3600)
        first = first.model_copy(update={"controls": first.controls.model_copy(update={"import_limit_w": 5000.0})})
        await adapter.sink.submit(first, _signal("v1", clock))
        await gw.outcomes("chg")
        profile_ids = {p["chargingProfile"]["id"] for a, p in s["A"].received if a == "SetChargingProfile"}
        assert {c.control_type for c in s["A"].der} == {"VoltVar"}
        # Polling hands the same version again: nothing is sent.
        sent_before = len(s["A"].received)
        await adapter.sink.submit(first, _signal("v1", clock))
        assert len(s["A"].received) == sent_before
        # The utility drops the curve and lowers the limit: same profile id (replaced in place), curve cleared.
        second = Directive.model_validate(
            {
                "id": "chg",
                "source": {"protocol": "ieee2030_5"},
                "duration_s": 3600,
                "controls": {"import_limit_w": 3000},
            }
        )
        await adapter.sink.submit(second, _signal("v2", clock))
        outcome = (await gw.outcomes("chg"))[0]
        assert outcome.status.value == "accepted"
        new = s["A"].received[sent_before:]
        assert [a for a, _ in new] == ["SetChargingProfile", "ClearDERControl"]
        assert new[0][1]["chargingProfile"]["id"] in profile_ids
        assert new[0][1]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 3000
        assert [c for c in s["A"].der if not c.is_default] == []
        assert gw.audit.query(directive_id="chg", kind="directive.created")[-1].data["changed"] is True
        # Once it has ended, a change under the same id is refused (and audited), not applied.
        await gw.dispatcher.cancel("chg")
        await adapter.sink.submit(first, _signal("v3", clock, "mrid-9"))
        assert "has ended (cancelled)" in gw.audit.query(kind="input.rejected")[-1].data["reason"]
