"""Aggregate limits shared across stations: properties of the allocation and of the change between two."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mappings.allocation import Member, allocate, fit_raises, transition


@st.composite
def fleets(draw: st.DrawFn) -> list[Member]:
    n = draw(st.integers(0, 30))
    out = []
    for i in range(n):
        max_w = draw(st.sampled_from([0.0, 3_700.0, 7_400.0, 11_000.0, 22_000.0, 50_000.0]))
        min_w = draw(st.sampled_from([0.0, 1_380.0, 4_140.0]))
        out.append(Member(f"S{i:02d}", max_w, min_w, draw(st.booleans())))
    return out


caps = st.floats(0, 500_000, allow_nan=False)


@given(caps, fleets())
def test_shares_respect_the_cap_and_each_station_s_bounds(cap: float, members: list[Member]) -> None:
    shares = allocate(cap, members)
    assert set(shares) == {m.station_id for m in members}
    assert sum(shares.values()) <= cap + 1e-6
    for m in members:
        share = shares[m.station_id]
        if not m.charging:
            assert share == 0
        elif share > 0:
            assert min(m.min_w, m.max_w) - 1e-6 <= share <= m.max_w + 1e-6


@given(caps, fleets())
def test_unconstrained_stations_share_in_proportion_to_their_rating(cap: float, members: list[Member]) -> None:
    shares = allocate(cap, members)
    free = [m for m in members if 0 < shares[m.station_id] < m.max_w - 1e-6 and shares[m.station_id] > m.min_w + 1e-6]
    ratios = {round(shares[m.station_id] / m.max_w, 6) for m in free}
    assert len(ratios) <= 1


@given(fleets())
def test_enough_capacity_gives_every_charging_station_its_rating(members: list[Member]) -> None:
    cap = sum(m.max_w for m in members)
    shares = allocate(cap, members)
    for m in members:
        assert math.isclose(shares[m.station_id], m.max_w if m.charging else 0.0)


@given(caps, caps, fleets())
def test_lower_first_then_raise_never_exceeds_the_larger_cap(cap_a: float, cap_b: float, members: list[Member]) -> None:
    old, new = allocate(cap_a, members), allocate(cap_b, members)
    current = dict(old)
    for station_id, value in transition(old, new):
        current[station_id] = value
        assert sum(current.values()) <= max(cap_a, cap_b) + 1e-6
    assert current == {**old, **new}


powers = st.floats(0, 50_000, allow_nan=False)


@given(caps, st.dictionaries(st.sampled_from("ABCDEF"), powers), st.dictionaries(st.sampled_from("ABCDEF"), powers))
def test_raises_fit_in_the_room_left_and_stay_between_held_and_wanted(
    cap: float, held: dict[str, float], wanted: dict[str, float]
) -> None:
    raised = fit_raises(cap, held, wanted)
    assert set(raised) == {sid for sid, w in wanted.items() if w > held.get(sid, 0.0)}
    for sid, value in raised.items():
        assert held.get(sid, 0.0) - 1e-6 <= value <= wanted[sid] + 1e-6
    after = {**held, **raised}
    assert sum(after.values()) <= max(cap, sum(held.values())) + 1e-6
    if sum(held.values()) + sum(w - held.get(s, 0.0) for s, w in wanted.items() if s in raised) <= cap:
        assert all(math.isclose(v, wanted[s], abs_tol=1e-6) for s, v in raised.items())  # room for all: raises in full


def test_an_unconfirmed_decrease_holds_the_raises_back() -> None:
    """A lowered from 100 to 60 kW but did not answer, so it still counts at 100: B's raise to 240 only gets what
    the 300 kW cap leaves (200); with A's decrease confirmed B gets all of it."""
    assert fit_raises(300_000, {"A": 100_000, "B": 150_000}, {"A": 60_000, "B": 240_000}) == {"B": 200_000}
    assert fit_raises(300_000, {"A": 60_000, "B": 150_000}, {"A": 60_000, "B": 240_000}) == {"B": 240_000}


def test_worked_example() -> None:
    """300 kW site, three 150 kW chargers and one 50 kW: 50 kW gets its 1/10, the others 3/10 each."""
    members = [Member("A", 150_000), Member("B", 150_000), Member("C", 150_000), Member("D", 50_000),
               Member("E", 22_000, charging=False)]  # fmt: skip
    assert allocate(300_000, members) == {"A": 90_000, "B": 90_000, "C": 90_000, "D": 30_000, "E": 0}
    # Too little for every minimum: the largest minimums are left out, the rest keep charging.
    tight = [Member("A", 11_000, 4_140), Member("B", 11_000, 1_380), Member("C", 11_000, 1_380)]
    assert allocate(3_000, tight) == {"A": 0, "B": 1_500, "C": 1_500}
