"""Supersession properties: what `covers` calls superseded is never in force again by `in_force` (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from gateway.model import Directive
from gateway.schedule import Candidate, in_force
from gateway.schedule.supersede import covers

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
CONTROLS: list[dict[str, Any]] = [{"import_limit_w": 1000}, {"export_limit_w": 500}, {"connect": False}]


@st.composite
def directives(draw: st.DrawFn, number: int) -> tuple[Directive, datetime]:
    received = T0 + timedelta(minutes=draw(st.integers(0, 30)) + 30 * number)
    controls: dict[str, Any] = {}
    for c in draw(st.lists(st.sampled_from(CONTROLS), min_size=1, max_size=3)):
        controls.update(c)
    default = draw(st.integers(0, 5)) == 0
    raw: dict[str, Any] = {"id": f"d{number}", "priority": draw(st.integers(0, 3)), "controls": controls}
    if default:
        raw["is_default"] = True
    else:
        if draw(st.booleans()):
            raw["start"] = (received + timedelta(minutes=draw(st.integers(-30, 60)))).isoformat()
        if draw(st.integers(0, 4)):
            raw["duration_s"] = draw(st.integers(1, 120)) * 60
    return Directive.model_validate(raw), received


def _candidate(d: Directive, received: datetime, sequence: int) -> Candidate:
    start = None if d.is_default else d.start or received
    end = None if d.is_default else d.end(received)
    return Candidate(d.id, d.priority, sequence, frozenset(d.controls.present()), d.is_default, start, end)


@given(directives(0), directives(1))
def test_a_covered_directive_is_never_in_force_again(
    older: tuple[Directive, datetime], newer: tuple[Directive, datetime]
) -> None:
    (old, old_received), (new, new_received) = older, newer
    now = new_received
    if not covers(new, new_received, old, old_received, now):
        event("not covered")
        return
    event("covered")
    candidates = [_candidate(old, old_received, 0), _candidate(new, new_received, 1)]
    instants = {now + timedelta(minutes=m) for m in range(0, 400, 7)}
    instants.update(t for c in candidates for t in (c.start, c.end) if t is not None and t >= now)
    for at in instants:
        chosen = in_force(candidates, at)
        assert old.id not in chosen.values(), at


def _limit(did: str, start_min: int | None, minutes: int | None, priority: int = 5, **controls: Any) -> Directive:
    raw: dict[str, Any] = {"id": did, "priority": priority, "controls": controls or {"import_limit_w": 3000}}
    if start_min is not None:
        raw["start"] = (T0 + timedelta(minutes=start_min)).isoformat()
    if minutes is not None:
        raw["duration_s"] = minutes * 60
    return Directive.model_validate(raw)


def test_covers_needs_the_whole_rest_of_the_window_the_controls_and_a_priority_as_good() -> None:
    old = _limit("old", 10, 20)
    assert covers(_limit("new", 5, 30), T0, old, T0, T0)
    assert covers(_limit("new", 5, None), T0, old, T0, T0)  # until cancelled
    assert not covers(_limit("new", 15, 30), T0, old, T0, T0)  # starts after the old one
    assert covers(_limit("new", 15, 30), T0, old, T0, T0 + timedelta(minutes=15))  # ... but that part is past
    assert not covers(_limit("new", 5, 20), T0, old, T0, T0)  # ends before it
    assert not covers(_limit("new", 5, 30, priority=6), T0, old, T0, T0)  # worse priority
    assert covers(_limit("new", 5, 30, priority=4), T0, old, T0, T0)
    assert not covers(_limit("new", 5, 30, export_limit_w=100), T0, old, T0, T0)  # other control
    assert covers(_limit("new", 5, None), T0, _limit("old", 10, None), T0, T0) is not False
    randomized = _limit("new", 5, 30).model_copy(update={"randomize_start_s": 60})
    assert not covers(randomized, T0, old, T0, T0)
