"""Arbitration properties over random sets of overlapping directives (Hypothesis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.schedule import Candidate, in_force

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CONTROLS = ["import_limit_w", "export_limit_w", "curve:volt_var", "freq_droop"]


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(0, 12))
    out = []
    for i in range(count):
        default = draw(st.booleans())
        start = None if default else NOW + timedelta(seconds=draw(st.integers(-7200, 7200)))
        end = None
        if start is not None and draw(st.booleans()):
            end = start + timedelta(seconds=draw(st.integers(1, 7200)))
        out.append(
            Candidate(
                directive_id=f"d{i}",
                priority=draw(st.integers(0, 5)),
                sequence=i,
                controls=frozenset(draw(st.lists(st.sampled_from(CONTROLS), min_size=1, max_size=4))),
                is_default=default,
                start=start,
                end=end,
            )
        )
    return out


def _eligible(cands: list[Candidate], control: str) -> list[Candidate]:
    active = [c for c in cands if control in c.controls and c.active(NOW)]
    return active or [c for c in cands if control in c.controls and c.is_default]


@given(candidates())
def test_winner_is_the_best_eligible_directive_per_control(cands: list[Candidate]) -> None:
    chosen = in_force(cands, NOW)
    by_id = {c.directive_id: c for c in cands}
    for control in CONTROLS:
        eligible = _eligible(cands, control)
        if not eligible:
            assert control not in chosen
            continue
        winner = by_id[chosen[control]]
        assert control in winner.controls
        # Lowest priority value first, then the most recently received (R04, 2030.5 primacy).
        assert all((winner.priority, -winner.sequence) <= (c.priority, -c.sequence) for c in eligible)
        # A scheduled directive in force beats every default (R04.FR.11: defaults only when nothing else is).
        if any(c.active(NOW) for c in eligible):
            assert not winner.is_default


@given(candidates(), st.randoms())
def test_order_of_input_does_not_matter(cands: list[Candidate], rnd: random.Random) -> None:
    shuffled = list(cands)
    rnd.shuffle(shuffled)
    assert in_force(shuffled, NOW) == in_force(cands, NOW)


@given(candidates())
def test_controls_compose_independently(cands: list[Candidate]) -> None:
    """Adding a directive for another control never changes who holds this one."""
    before = in_force(cands, NOW)
    extra = Candidate("extra", 0, 10_000, frozenset({"fixed_var"}), start=NOW - timedelta(seconds=1))
    after = in_force([*cands, extra], NOW)
    assert after.pop("fixed_var") == "extra"
    assert after == before


def test_expired_and_future_directives_are_not_in_force() -> None:
    past = Candidate(
        "past", 0, 1, frozenset({"import_limit_w"}), start=NOW - timedelta(hours=2), end=NOW - timedelta(hours=1)
    )
    future = Candidate("future", 0, 2, frozenset({"import_limit_w"}), start=NOW + timedelta(seconds=1))
    default = Candidate("default", 9, 0, frozenset({"import_limit_w"}), is_default=True)
    assert in_force([past, future, default], NOW) == {"import_limit_w": "default"}
    assert in_force([past, future], NOW) == {}
    # At its exact end a directive is over; at its exact start it is in force.
    assert in_force([past], NOW - timedelta(hours=1)) == {}
    assert in_force([future], NOW + timedelta(seconds=1)) == {"import_limit_w": "future"}
