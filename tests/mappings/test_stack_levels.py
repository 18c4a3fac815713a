"""Reading and moving the stackLevel of mapped profiles on every version: schema-valid, the original untouched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.model import Directive, OcppVersion, StationCapabilities
from mappings import map_directive
from mappings.stack_levels import profile_slot, with_stack_level
from protocols.ocpp.schemas import validate

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("version", list(OcppVersion))
def test_a_profile_moves_to_another_level_and_stays_valid(version: OcppVersion) -> None:
    d = Directive.model_validate(
        {"priority": 4, "start": "2026-06-01T12:10:00Z", "duration_s": 600, "controls": {"import_limit_w": 3000}}
    )
    caps = StationCapabilities(version=version, max_charge_rate_w=7400)
    [command] = map_directive(d, caps, number=3, now=NOW).commands
    slot = profile_slot(command)
    assert slot is not None
    assert slot.level == 6  # band: 10 - priority
    assert slot.bounded is (version is not OcppVersion.V16)  # 2.x carries validFrom/validTo (K01.FR.06)
    moved = with_stack_level(command, 7)
    validate(version, moved.action, moved.payload)
    moved_slot = profile_slot(moved)
    assert moved_slot is not None
    assert (moved_slot.purpose, moved_slot.level) == (slot.purpose, 7)
    assert profile_slot(command) == slot  # the shared original is not mutated
