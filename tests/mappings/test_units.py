"""Encodings OCPP needs: rounding toward the safe side, timestamps, stack levels, ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.model import StationCapabilities
from mappings import map_directive
from mappings.decisions import MAX_NUMBER
from mappings.units import stack_level, timestamp, toward_zero
from tests.mappings.samples import NOW, der_controls, directive, v21


def test_powers_round_toward_zero_so_limits_never_grow() -> None:
    assert toward_zero(1.23456789) == 1.234567
    assert toward_zero(-1.23456789) == -1.234567
    assert toward_zero(2.39, 1) == 2.3
    assert str(toward_zero(-0.0000001)) == "0.0"


def test_timestamps_are_utc_with_at_most_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert timestamp(datetime(2026, 1, 2, 5, 4, 5, 123999, tzinfo=plus_two)) == "2026-01-02T03:04:05.123Z"
    assert timestamp(datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=plus_two)) == "2026-01-02T01:04:05Z"


@pytest.mark.parametrize(
    ("priority", "is_default", "level"), [(0, False, 10), (3, False, 7), (9, False, 1), (500, False, 1), (0, True, 0)]
)
def test_stack_level_lower_priority_wins_and_defaults_sit_below(priority: int, is_default: bool, level: int) -> None:
    assert stack_level(priority, is_default) == level


@pytest.mark.parametrize("number", [0, -1, MAX_NUMBER + 1])
def test_numbers_outside_int32_profile_ids_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="number must be"):
        map_directive(directive(der_controls("VoltVar")), v21(), number=number, now=NOW)


def test_naive_now_is_refused() -> None:
    caps: StationCapabilities = v21()
    with pytest.raises(ValueError, match="aware"):
        map_directive(directive(der_controls("VoltVar")), caps, number=1, now=NOW.replace(tzinfo=None))
