"""Staggered, ramped restore: a fleet never steps back at the same second."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.schedule.restore import limit_at, restore_plan


def test_500_stations_restore_spread_over_the_delay_window() -> None:
    """500 stations curtailed to 0 W, restored to 11 kW with a 300 s random delay and a 10 %/s ramp."""
    plans = {
        f"CS{i:05d}": restore_plan("curtail-1", f"CS{i:05d}", from_w=0, to_w=11_000, rating_w=11_000,
                                   ramp_pct_per_s=10, max_delay_s=300)
        for i in range(500)
    }  # fmt: skip
    fleet_at = [sum(limit_at(p, t) for p in plans.values()) for t in range(0, 320)]
    assert fleet_at[0] < 11_000 * 5  # almost nobody is back at once
    assert fleet_at[-1] == 500 * 11_000  # everybody is back after delay + ramp
    rises = [b - a for a, b in itertools.pairwise(fleet_at)]
    # No second adds more than a few percent of the fleet's power: 500 stations x 11 kW over ~300 s.
    assert max(rises) < 0.03 * 500 * 11_000
    starters = sorted(
        p[1].offset_s if len(p) > 1 and p[0].limit_w == 0 and p[1].offset_s else 0 for p in plans.values()
    )
    assert len(set(starters)) > 200  # start seconds are spread, not clumped


@given(
    st.floats(0, 20_000),
    st.floats(0, 20_000),
    st.floats(1_000, 50_000),
    st.floats(0, 100),
    st.floats(0, 3600),
    st.text(min_size=1, max_size=10),
)
def test_plans_go_monotonically_to_the_target(
    start: float, target: float, rating: float, ramp: float, delay: float, station: str
) -> None:
    plan = restore_plan("d", station, from_w=start, to_w=target, rating_w=rating, ramp_pct_per_s=ramp,
                        max_delay_s=delay)  # fmt: skip
    assert plan[-1].limit_w == target
    offsets = [s.offset_s for s in plan]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0
    if target <= start:
        assert plan == [plan[0]]  # lowering is immediate
    else:
        limits = [s.limit_w for s in plan]
        assert limits == sorted(limits)
        assert len(plan) <= 11
