"""Per-station randomization: inside the bound, reproducible from ids alone, and spread across the fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Controls, Directive
from gateway.schedule import station_fraction, station_window

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _directive(rs: int, rd: int, duration: float | None = 3600) -> Directive:
    return Directive(
        id="evt-1",
        start=T0,
        duration_s=duration,
        randomize_start_s=rs,
        randomize_duration_s=rd,
        controls=Controls(import_limit_w=1000),
    )


@given(st.integers(-3600, 3600), st.integers(-3600, 3600), st.text(min_size=1, max_size=20))
def test_offsets_stay_inside_their_bounds(rs: int, rd: int, station: str) -> None:
    w = station_window(_directive(rs, rd), station, received=T0)
    lo, hi = sorted((0, rs))
    assert lo <= w.start_offset_s <= hi
    assert w.start == T0 + timedelta(seconds=w.start_offset_s)
    assert w.end is not None
    assert w.end - w.start == timedelta(seconds=max(0.0, 3600 + w.duration_offset_s))


def test_offsets_are_reproducible_and_differ_between_stations() -> None:
    d = _directive(600, 0)
    assert station_window(d, "CS1", received=T0) == station_window(d, "CS1", received=T0)
    starts = {station_window(d, f"CS{i}", received=T0).start for i in range(100)}
    assert len(starts) == 100


def test_a_fleet_is_spread_uniformly() -> None:
    buckets = [0] * 10
    for i in range(2000):
        buckets[int(station_fraction("evt-1", f"CS{i:05d}", "start") * 10)] += 1
    assert min(buckets) > 150  # expected 200 each; a clumped generator fails this
    assert max(buckets) < 250


def test_no_randomization_and_until_cancelled() -> None:
    w = station_window(_directive(0, 0, duration=None), "CS1", received=T0)
    assert (w.start, w.end) == (T0, None)
    unstarted = Directive(id="now", controls=Controls(import_limit_w=1))
    assert station_window(unstarted, "CS1", received=T0).start == T0
