"""Arbitration: for one station at one moment, which directive is in force for each control.

Per control (import limit, volt-var curve, ...): among the scheduled directives whose window contains `now`, the
best (lowest) priority wins, then the most recently received; when none is, the best default does. Controls are
independent, so a volt-var curve from one directive and an export limit from another can both be in force. This
follows IEEE 2030.5 primacy and OCPP 2.1 R04 (one control per type, lower priority value wins, defaults apply
when nothing else does: R04.FR.11).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """A directive as arbitration sees it at one station. `sequence` orders receipt (higher = more recent)."""

    directive_id: str
    priority: int
    sequence: int
    controls: frozenset[str]
    is_default: bool = False
    start: datetime | None = None
    end: datetime | None = None

    def active(self, now: datetime) -> bool:
        if self.is_default or self.start is None or now < self.start:
            return False
        return self.end is None or now < self.end


def _rank(c: Candidate) -> tuple[int, int]:
    return (c.priority, -c.sequence)


def in_force(candidates: Iterable[Candidate], now: datetime) -> dict[str, str]:
    """Control name -> id of the directive in force for it at `now` (controls nobody asks for are absent)."""
    best: dict[str, Candidate] = {}
    fallback: dict[str, Candidate] = {}
    for c in candidates:
        table = best if c.active(now) else fallback if c.is_default else None
        if table is None:
            continue
        for control in c.controls:
            held = table.get(control)
            if held is None or _rank(c) < _rank(held):
                table[control] = c
    chosen = {control: c.directive_id for control, c in fallback.items()}
    chosen.update({control: c.directive_id for control, c in best.items()})
    return chosen
