"""Alarm classification: 200 stations with UnderFrequency within seconds is a grid event; one alone is local."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Alarm
from gateway.schedule.alarms import classify

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _alarm(station: str, seconds: float, fault: str | None = "UnderFrequency", ended: bool = False) -> Alarm:
    return Alarm(
        station_id=station, control="FreqDroop", grid_event_fault=fault, ended=ended, at=T0 + timedelta(seconds=seconds)
    )


def test_many_stations_with_one_fault_is_a_grid_event_and_a_lone_station_is_local() -> None:
    alarms = [_alarm(f"CS{i:03d}", i * 0.02) for i in range(200)] + [_alarm("LONE", 500, "OverVoltage")]
    reports = classify(alarms, now=T0 + timedelta(minutes=10))
    grid = [r for r in reports if r.grid_event]
    local = [r for r in reports if not r.grid_event]
    assert len(grid) == 1
    assert {a.station_id for a in grid[0].alarms} == {f"CS{i:03d}" for i in range(200)}
    assert [r.alarms[0].station_id for r in local] == ["LONE"]


def test_alarms_apart_in_time_or_without_a_grid_fault_stay_local() -> None:
    spread = [_alarm(f"CS{i}", i * 60) for i in range(5)]
    assert not any(r.grid_event for r in classify(spread, now=T0))
    deviations = [_alarm(f"CS{i}", 0, fault=None) for i in range(5)]
    assert not any(r.grid_event for r in classify(deviations, now=T0))
    ends = [_alarm(f"CS{i}", 0, ended=True) for i in range(5)]
    assert not any(r.grid_event for r in classify(ends, now=T0))


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 120), st.sampled_from(["UnderFrequency", "OverVoltage"]))))
def test_every_alarm_is_reported_exactly_once(raw: list[tuple[int, float, str]]) -> None:
    alarms = [_alarm(f"CS{s}", t, f) for s, t, f in raw]
    reports = classify(alarms, now=T0)
    reported = [a for r in reports for a in r.alarms]
    assert sorted(reported, key=id) == sorted(alarms, key=id)
    for r in reports:
        if r.grid_event:
            assert len({a.station_id for a in r.alarms}) >= 3
            assert len({a.grid_event_fault for a in r.alarms}) == 1
