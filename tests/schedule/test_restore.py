"""Staggered, ramped restore: a fleet never steps back at the same second."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.model import Directive
from gateway.schedule.restore import Pace, Step, limit_at, pace, restore_plan


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


@given(
    st.text(min_size=1, max_size=12),
    st.text(min_size=1, max_size=12),
    st.floats(0, 10_000),
    st.floats(0.01, 100),
    st.floats(0, 3600),
    st.integers(1, 30),
)
def test_delays_stay_within_the_bound_and_are_reproducible_from_the_ids(
    directive_id: str, station: str, start: float, ramp: float, max_delay: float, steps: int
) -> None:
    def plan() -> list[Step]:
        return restore_plan(directive_id, station, from_w=start, to_w=start + 5000, rating_w=20_000,
                            ramp_pct_per_s=ramp, max_delay_s=max_delay, max_steps=steps)  # fmt: skip

    first = plan()
    assert plan() == first  # an auditor recomputes every station's plan from the record
    rises = [s.offset_s for s in first if s.limit_w > start]
    assert 0 <= rises[0] <= max_delay
    assert rises[0] < max_delay or max_delay == 0
    assert len(rises) <= steps
    assert [s.limit_w for s in first if s.offset_s < rises[0]] in ([], [start])  # held until the delay has passed


def _default(**controls: object) -> Directive:
    return Directive.model_validate({"id": "def", "is_default": True, "controls": controls})


def test_pace_comes_from_the_directive_then_the_defaults_then_the_configuration() -> None:
    gradients = {"ramp_pct_per_s": 2.0, "soft_start_pct_per_s": 0.5}
    enter = {"high_voltage_pct": 110, "low_voltage_pct": 90, "high_freq_hz": 50.5, "low_freq_hz": 49.5}
    plain = Directive.model_validate({"id": "cut", "controls": {"import_limit_w": 1000}})
    own = Directive.model_validate(
        {"id": "cut", "controls": {"import_limit_w": 1000, "gradients": {**gradients, "ramp_pct_per_s": 4.0}}}
    )
    defaults = [_default(gradients=gradients, enter_service={**enter, "random_delay_s": 120})]

    def paced(d: Directive, defaults: list[Directive], *, spread: bool = False) -> Pace:
        return pace(d, defaults, ramp_pct_per_s=0.33, max_delay_s=300.0, utility_spread=spread)

    assert paced(plain, []) == Pace(0.33, "config", 300.0, "config")
    assert paced(plain, defaults) == Pace(2.0, "default def", 120, "default def")
    assert paced(own, defaults) == Pace(4.0, "directive", 120, "default def")
    # A utility's 0 (2030.5 "no limit") is not taken as "step back at once": the configuration decides that.
    zero = [_default(gradients={"ramp_pct_per_s": 0, "soft_start_pct_per_s": 0})]
    assert paced(plain, zero).ramp_source == "config"
    # A randomized end or cancel already spreads the stations: no second random delay on top.
    spread = paced(plain, defaults, spread=True)
    assert (spread.max_delay_s, spread.delay_source) == (0.0, "utility randomization")
