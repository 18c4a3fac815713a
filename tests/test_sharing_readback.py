"""After a restart: how far each station's commands got after the last allocation decision (read from the audit)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from gateway.sharing import _may_hold, reached_after

SENT, ANSWER = "command.sent", "station.answer"


def test_the_last_command_decides() -> None:
    entries = [
        (10, SENT, "A", "m1", None),
        (11, ANSWER, "A", "m1", "Accepted"),
        (12, SENT, "B", "m2", None),
        (13, SENT, "C", "m3", None),
        (14, ANSWER, "C", "m3", "Rejected"),
        (15, SENT, "D", "m4", None),
        (16, ANSWER, "D", "m4", "Accepted"),
        (17, SENT, "D", "m5", None),  # sent again, unanswered: in flight
    ]
    assert reached_after(entries) == {"A": "accepted", "B": "sent", "C": "sent", "D": "sent"}


def test_an_answer_to_an_older_command_does_not_confirm_a_newer_one() -> None:
    entries = [(1, SENT, "A", "m1", None), (2, SENT, "A", "m2", None), (3, ANSWER, "A", "m1", "Accepted")]
    assert reached_after(entries) == {"A": "sent"}


@given(st.randoms())
def test_the_order_given_does_not_matter(rng: random.Random) -> None:
    entries = [
        (1, SENT, "A", "m1", None),
        (2, ANSWER, "A", "m1", "Accepted"),
        (3, SENT, "B", "m2", None),
        (4, SENT, None, "m3", None),  # no station: not counted
    ]
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert reached_after(shuffled) == {"A": "accepted", "B": "sent"}


def test_what_a_station_may_hold() -> None:
    """Decided 5.5 kW, 7.3 kW before: accepted -> 5.5; unanswered -> 7.3 (either may be in force); nothing sent ->
    7.3; a raise (0 -> 5.5) nothing was sent for -> 0, so it is sent again only as a raise, after the decreases."""
    reached = {"A": "accepted", "B": "sent"}
    assert _may_hold(5_500, 7_333, reached, "A") == 5_500
    assert _may_hold(5_500, 7_333, reached, "B") == 7_333
    assert _may_hold(5_500, 7_333, reached, "C") == 7_333
    assert _may_hold(5_500, 0, reached, "D") == 0
    assert _may_hold(5_500, 0, reached, "B") == 5_500
    assert _may_hold(5_500, 0, None, "D") == 5_500  # the audit after the decision unknown: the larger
