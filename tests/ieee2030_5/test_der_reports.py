"""DER documents and site power from fleet numbers: units and multipliers, schema validity, what the counterpart
receives over the link, and retry of failed deliveries through the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audit import AuditLog
from gateway.certs import DevPki
from gateway.fleet import Fleet
from gateway.model import Alarm, OcppVersion, StationCapabilities, Target, TargetScope
from gateway.store import Store
from gateway.utility import FleetView
from protocols.ieee2030_5 import decode, encode, fleet, wire
from protocols.ieee2030_5.fleet import FleetRatings, FleetState
from tests.ieee2030_5.conftest import SITE_LFDI, make_link, scenario
from tests.ieee2030_5.xsd import problems

RATINGS = FleetRatings(max_w=44_000, max_charge_w=44_000, max_discharge_w=11_000, max_var=5_000)


@pytest.mark.parametrize(
    ("watts", "expected"),
    [
        (0, wire.Power(0, 0)),
        (22_000, wire.Power(22_000, 0)),
        (44_000, wire.Power(4_400, 1)),
        (-1_234_567, wire.Power(-12_346, 2)),
        (32_767, wire.Power(32_767, 0)),
    ],
)
def test_power_keeps_the_value_within_int16(watts: float, expected: wire.Power) -> None:
    assert fleet.power(watts) == expected
    assert abs(fleet.power(watts).si - watts) <= 10**expected.multiplier / 2


def test_capability_and_settings_from_ratings() -> None:
    cap = fleet.capability(RATINGS)
    assert cap.rtg_max_w == wire.Power(4_400, 1)
    assert cap.rtg_max_charge_rate_w == wire.Power(4_400, 1)
    assert cap.rtg_max_discharge_rate_w == wire.Power(11_000, 0)
    assert cap.rtg_max_var == wire.Power(5_000, 0)
    assert cap.der_type == fleet.DER_TYPE_EVSE
    assert cap.modes_supported & fleet.MODE_DISCHARGE
    assert cap.doe_modes_supported == 0x0F
    charge_only = fleet.capability(FleetRatings(max_w=7_400, max_charge_w=7_400))
    assert charge_only.modes_supported == fleet.MODE_CHARGE
    assert charge_only.doe_modes_supported == fleet.DOE_IMP_LIM_W | fleet.DOE_LOAD_LIM_W
    assert charge_only.rtg_max_discharge_rate_w is None
    settings = fleet.settings(RATINGS, updated=100, set_grad_w=27)
    assert (settings.set_max_w, settings.set_grad_w, settings.updated_time) == (wire.Power(4_400, 1), 27, 100)
    assert fleet.settings(RATINGS, updated=100, set_grad_w=None).set_grad_w == 0  # 0: no limit
    for body in (encode.der_capability(cap), encode.der_settings(settings), encode.der_capability(charge_only)):
        assert problems(body) == []
    assert decode.der_capability(decode.root(encode.der_capability(cap), "DERCapability")) == cap


def test_status_and_availability_from_state() -> None:
    idle = fleet.status(FleetState(stations=2, online=2, power_w=0.0), at=100)
    assert idle.gen_connect_status == fleet.CONNECTED | fleet.AVAILABLE
    assert idle.operational_mode_status == fleet.OP_MODE_OPERATIONAL
    busy = fleet.status(FleetState(stations=2, online=1, faulted=1, power_w=7_000.0), at=100)
    assert busy.gen_connect_status == fleet.CONNECTED | fleet.AVAILABLE | fleet.OPERATING | fleet.FAULT
    off = fleet.status(FleetState(stations=2), at=100)
    assert (off.gen_connect_status, off.operational_mode_status) == (0, fleet.OP_MODE_OFF)
    avail = fleet.availability(FleetState(online=1, available_w=50_000, available_var=0), at=100)
    assert avail.stat_w_avail == wire.Power(5_000, 1)
    assert avail.stat_var_avail is None
    for body in (encode.der_status(busy), encode.der_status(off), encode.der_availability(avail)):
        assert problems(body) == []
    assert decode.der_status(decode.root(encode.der_status(busy), "DERStatus")) == busy


def test_site_reading_and_usage_point() -> None:
    reading = fleet.site_reading(SITE_LFDI, -1_500.4, at=100)
    assert (reading.value, reading.time_start) == (-1_500, 100)
    assert reading.reading_type is not None
    assert reading.reading_type.uom == 38
    mup = fleet.usage_point(SITE_LFDI, post_rate=60)
    assert mup.readings[0].mrid == reading.mrid == fleet.mrid(SITE_LFDI.upper(), "site-power")
    for body in (encode.mirror_meter_reading(reading), encode.mirror_usage_point(mup)):
        assert problems(body) == []
    assert decode.mirror_usage_point(decode.root(encode.mirror_usage_point(mup), "MirrorUsagePoint")) == mup


@dataclass
class FakeFleet:
    ratings_: FleetRatings = RATINGS
    state: FleetState = field(default_factory=lambda: FleetState(stations=2, online=2, power_w=9_000.0))
    targets: list[Target] = field(default_factory=list)

    def ratings(self, target: Target) -> FleetRatings:
        self.targets.append(target)
        return self.ratings_

    def der_state(self, target: Target) -> FleetState:
        return self.state


async def test_adapter_reports_fleet_data_and_retries_failed_deliveries(pki: DevPki) -> None:
    made = await make_link(pki, scenario())
    try:
        data = FakeFleet()
        made.adapter.fleet = data
        made.server.fail("/edev/1/der/1/ders", 503)  # the first status PUT fails: kept and sent on the next run
        await made.adapter.run_due()
        server = made.server
        assert data.targets
        assert data.targets[0].ids == ["site1"]
        assert server.der_capability() == fleet.capability(RATINGS)
        assert server.der_status() is None
        assert made.adapter.pending_reports() > 0
        assert [m.mrid for m in server.mups] == [fleet.mrid(SITE_LFDI, "site")]
        assert server.meter_readings() == []  # in order: the reading waits behind the failed status PUT
        data.state = FleetState(stations=2, online=2, faulted=1, power_w=-2_000.0)
        made.clock.advance(60)  # the counterpart's EndDevice postRate
        await made.adapter.run_due()
        status = server.der_status()
        assert status is not None
        assert status.gen_connect_status is not None
        assert status.gen_connect_status & fleet.FAULT
        assert [(p, r.value) for p, r in server.meter_readings()] == [("/mup/1", 9_000), ("/mup/1", -2_000)]
        assert [r.root for r in server.received if r.path == "/edev/1/der/1/ders"] == ["DERStatus"]  # latest only
        assert made.adapter.pending_reports() == 0
        # Capability and settings unchanged: PUT once; the MirrorUsagePoint is created once.
        puts = [r.path for r in server.received if r.method == "PUT"]
        assert puts.count("/edev/1/der/1/dercap") == 1
        assert puts.count("/edev/1/der/1/derg") == 1
        assert [r.root for r in server.received].count("MirrorUsagePoint") == 1
        # Every delivery is audited.
        sent = [u[0] for u in made.sink.upstream]
        assert {"DERCapability", "DERSettings", "DERStatus", "DERAvailability", "MirrorUsagePoint"} <= set(sent)
        assert sent.count("MirrorMeterReading") == 2
        # Every document served, including what was PUT and the MirrorUsagePoint, is schema-valid.
        for path in (
            "/dcap",
            "/edev/1",
            "/edev/1/der",
            "/edev/1/der/1",
            "/mup",
            "/mup/1",
            "/edev/1/der/1/derg",
            "/edev/1/der/1/dera",
            "/edev/1/der/1/ders",
            "/edev/1/der/1/dercap",
        ):
            fetched = await made.adapter.client.get(path)
            assert problems(fetched.body) == [], path
        assert not made.sink.rejected
    finally:
        await made.adapter.stop()
        await made.server.stop()


async def test_without_fleet_data_nothing_is_reported(pki: DevPki) -> None:
    made = await make_link(pki, scenario())
    try:
        await made.adapter.run_due()
        assert not [r for r in made.server.received if r.root in ("DERStatus", "MirrorUsagePoint")]
    finally:
        await made.adapter.stop()
        await made.server.stop()


def test_fleet_view_sums_ratings_and_state_per_target(tmp_path: Path) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    db = tmp_path / "gw.db"
    registry = Fleet(
        [("A", ["site1"]), ("B", ["site1"]), ("C", ["site2"])], Store(db), AuditLog.open(db, tmp_path / "certs")
    )
    a, b, c = (registry.stations[s] for s in "ABC")
    a.capabilities = StationCapabilities(
        version=OcppVersion.V21, max_w=11_000, max_discharge_rate_w=7_000, max_var=3_000
    )
    b.capabilities = StationCapabilities(version=OcppVersion.V16, max_charge_rate_w=22_000)
    c.capabilities = StationCapabilities(version=OcppVersion.V16, max_w=50_000)
    a.connected, a.power_w = True, -2_000.0
    b.connected, b.power_w = False, 9_000.0  # offline: its last reading is not site power now
    b.last_alarm = Alarm(station_id="B", control="FreqDroop", at=at)
    view = FleetView(registry)
    site1 = Target(scope=TargetScope.GROUP, ids=["site1"])
    assert view.ratings(site1) == FleetRatings(max_w=33_000, max_charge_w=33_000, max_discharge_w=7_000, max_var=3_000)
    assert view.der_state(site1) == FleetState(
        stations=2, online=1, faulted=1, power_w=-2_000.0, available_w=11_000, available_var=3_000
    )
    assert view.der_state(Target(scope=TargetScope.GROUP, ids=["nowhere"])) == FleetState()
