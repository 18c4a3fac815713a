"""Energy readings in the fleet registry and FleetView.sample's energy over an interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import AuditLog
from gateway.fleet import EnergyPoint, Fleet, energy_between
from gateway.model import OcppVersion, Target, TargetScope
from gateway.store import Store
from gateway.utility import FleetView
from protocols.ocpp.handlers import report

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def points(*readings: tuple[float, float]) -> list[EnergyPoint]:
    return [EnergyPoint(at(m), wh, None) for m, wh in readings]


def test_readings_around_the_bounds_are_interpolated_and_cover_the_interval() -> None:
    span = energy_between({1: points((-10, 1000), (30, 2000), (70, 3000))}, at(0), at(60))
    assert span is not None
    assert (span.energy_wh, span.meter_wh, span.covered) == (1500.0, 2750.0, True)


def test_readings_inside_only_are_not_covered_and_count_what_was_metered() -> None:
    span = energy_between({1: points((10, 1000), (50, 1800))}, at(0), at(60))
    assert span is not None
    assert (span.energy_wh, span.covered) == (800.0, False)


def test_the_main_meter_wins_over_evse_meters_which_are_summed() -> None:
    evses = {1: points((0, 0), (60, 500)), 2: points((0, 100), (60, 300))}
    span = energy_between(evses, at(0), at(60))
    assert span is not None
    assert (span.energy_wh, span.meter_wh) == (700.0, 800.0)
    span = energy_between({**evses, 0: points((0, 10_000), (60, 10_650))}, at(0), at(60))
    assert span is not None
    assert (span.energy_wh, span.meter_wh) == (650.0, 10_650.0)


def test_a_register_reset_counts_increases_only_and_is_not_covered() -> None:
    span = energy_between({1: points((0, 5000), (20, 5200), (40, 50), (60, 250))}, at(0), at(60))
    assert span is not None
    assert (span.energy_wh, span.covered) == (400.0, False)
    assert energy_between({1: [EnergyPoint(at(0), None, 5.0)]}, at(0), at(60)) is None


@given(
    steps=st.lists(st.tuples(st.integers(1, 600), st.floats(0, 1e6)), min_size=2, max_size=30),
    a=st.integers(0, 20_000),
    b=st.integers(0, 20_000),
)
def test_energy_is_additive_over_adjacent_intervals(steps: list[tuple[int, float]], a: int, b: int) -> None:
    t, wh, readings = T0, 0.0, []
    for dt, de in steps:
        t, wh = t + timedelta(seconds=dt), wh + de
        readings.append(EnergyPoint(t, wh, None))
    lo, mid, hi = T0, T0 + timedelta(seconds=min(a, b)), T0 + timedelta(seconds=max(a, b))
    whole, left, right = (energy_between({1: readings}, x, y) for x, y in ((lo, hi), (lo, mid), (mid, hi)))
    assert whole is not None
    assert left is not None
    assert right is not None
    assert abs(whole.energy_wh - left.energy_wh - right.energy_wh) <= 1e-6 * max(1.0, whole.energy_wh)
    assert 0 <= whole.energy_wh <= wh + 1e-6


def test_fleet_keeps_readings_from_meter_values_and_the_view_samples_them(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    fleet = Fleet([("EV-1", ["site"]), ("EV-2", ["site"])], Store(db), AuditLog.open(db, tmp_path / "certs"))
    for minutes, wh in ((0, 1000.0), (60, 8000.0)):
        for sid in ("EV-1", "EV-2"):
            payload = {"connectorId": 1, "meterValue": [{"timestamp": at(minutes).isoformat(), "sampledValue": [
                {"measurand": "Energy.Active.Import.Register", "value": f"{wh / 1000}", "unit": "kWh"},
                {"measurand": "Power.Active.Import", "value": "7000", "unit": "W"}]}]}  # fmt: skip
            report(fleet, OcppVersion.V16, sid, "MeterValues", payload, f"m{minutes}", at(minutes))
    fleet.station_energy("EV-1", 1, 8000.0, None, at(60))  # a retried message replaces, never duplicates
    assert len(fleet.stations["EV-1"].energy[1]) == 2
    view = FleetView(fleet)
    site = Target(scope=TargetScope.GROUP, ids=["site"])
    sample = view.sample(site, at(0), at(60))
    assert (sample.energy_wh, sample.meter_wh, sample.power_w, sample.quality) == (14_000.0, 16_000.0, 14_000.0, "OK")
    late = view.sample(site, at(30), at(90))  # no reading after the end: what was metered, ESTIMATED
    assert (late.energy_wh, late.quality) == (7000.0, "ESTIMATED")
