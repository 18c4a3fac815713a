"""Compliance summary of one directive, built only from its audit trail.

What was asked (``directive.created``, ``directive.stations``), where it came from (``signal.received``), what the
gateway decided (``allocation.decided``, lifecycle entries), what it sent to each station and what each station
answered and when (``command.sent`` paired with ``station.answer`` by station and OCPP message id), and
what went back upstream (``upstream.sent``) or was given up on (``upstream.dropped``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.entry import Kind, StoredEntry

__all__ = ["DirectiveReport", "StationCommand", "build_report"]

_LIFECYCLE = {
    Kind.DIRECTIVE_SCHEDULED,
    Kind.DIRECTIVE_SUPERSEDED,
    Kind.DIRECTIVE_CANCELLED,
    Kind.DIRECTIVE_COMPLETED,
}


_WIDTHS = (20, 22, 38, 24, 12, 24)


def _row(*cells: str) -> str:
    return "  " + " ".join(cell.ljust(width) for cell, width in zip(cells, (*_WIDTHS, 0), strict=True)).rstrip()


def _compact(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class StationCommand:
    """One command sent to a station and the station's answer to it, if any."""

    sent: StoredEntry
    answer: StoredEntry | None

    @property
    def status(self) -> str:
        if self.answer is None:
            return "no answer"
        status = self.answer.data.get("status")
        return str(status) if status is not None else "error" if "error" in self.answer.data else "?"

    @property
    def latency_ms(self) -> int | None:
        if self.answer is None:
            return None
        return round((self.answer.at - self.sent.at).total_seconds() * 1000)

    def to_json(self) -> dict[str, Any]:
        return {
            "station_id": self.sent.station_id,
            "message_id": self.sent.message_id,
            "action": self.sent.data.get("action"),
            "sent_at": self.sent.at_text,
            "sent_seq": self.sent.seq,
            "status": self.status,
            "answered_at": None if self.answer is None else self.answer.at_text,
            "answer_seq": None if self.answer is None else self.answer.seq,
            "latency_ms": self.latency_ms,
            "error": None if self.answer is None else self.answer.data.get("error"),
        }


@dataclass(slots=True)
class DirectiveReport:
    directive_id: str
    asked: list[StoredEntry] = field(default_factory=list)
    signals: list[StoredEntry] = field(default_factory=list)
    lifecycle: list[StoredEntry] = field(default_factory=list)
    allocations: list[StoredEntry] = field(default_factory=list)
    commands: list[StationCommand] = field(default_factory=list)
    upstream: list[StoredEntry] = field(default_factory=list)
    other: list[StoredEntry] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.asked or self.commands or self.lifecycle or self.allocations or self.upstream)

    def statuses(self) -> Counter[str]:
        return Counter(c.status for c in self.commands)

    def to_json(self) -> dict[str, Any]:
        def listed(entries: Sequence[StoredEntry]) -> list[dict[str, Any]]:
            return [{"seq": e.seq, "at": e.at_text, "kind": e.kind, "data": e.data} for e in entries]

        return {
            "directive_id": self.directive_id,
            "asked": listed(self.asked),
            "signals": listed(self.signals),
            "lifecycle": listed(self.lifecycle),
            "allocations": listed(self.allocations),
            "stations": [c.to_json() for c in self.commands],
            "status_counts": dict(sorted(self.statuses().items())),
            "upstream": listed(self.upstream),
            "other": listed(self.other),
        }

    def render(self) -> str:
        out = [f"Directive {self.directive_id}"]
        if not self.found:
            out.append("  no audit entries for this directive")
            return "\n".join(out)

        def section(title: str, entries: Sequence[StoredEntry]) -> None:
            if entries:
                out.append(f"{title}:")
                out.extend(f"  {e.at_text}  {e.kind:<22} seq {e.seq:<8} {_compact(e.data)}" for e in entries)

        section("Asked", self.asked)
        section("Source signals", self.signals)
        section("Lifecycle", self.lifecycle)
        section("Decided", self.allocations)
        answered = sum(c.answer is not None for c in self.commands)
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self.statuses().items()))
        out.append(f"Stations: {len(self.commands)} command(s) sent, {answered} answered ({counts or 'none'})")
        if self.commands:
            out.append(_row("station", "action", "message id", "sent", "answer", "answered", "ms"))
        for c in self.commands:
            out.append(
                _row(
                    c.sent.station_id or "-",
                    str(c.sent.data.get("action", "?")),
                    c.sent.message_id or "-",
                    c.sent.at_text,
                    c.status,
                    "-" if c.answer is None else c.answer.at_text,
                    "-" if c.latency_ms is None else str(c.latency_ms),
                )
            )
        section("Upstream responses", self.upstream)
        section("Other", self.other)
        return "\n".join(out)


def build_report(directive_id: str, entries: Sequence[StoredEntry]) -> DirectiveReport:
    """Sort a directive's trail (see ``directive_trail``) into the sections of the summary."""
    report = DirectiveReport(directive_id)
    answers: dict[tuple[str | None, str], StoredEntry] = {}
    for e in entries:
        if e.kind == Kind.STATION_ANSWER and e.message_id is not None:
            answers.setdefault((e.station_id, e.message_id), e)  # the first answer is the answer
    for e in entries:
        if e.kind in (Kind.DIRECTIVE_CREATED, Kind.DIRECTIVE_STATIONS):
            report.asked.append(e)
        elif e.kind == Kind.SIGNAL_RECEIVED:
            report.signals.append(e)
        elif e.kind in _LIFECYCLE:
            report.lifecycle.append(e)
        elif e.kind == Kind.ALLOCATION_DECIDED:
            report.allocations.append(e)
        elif e.kind == Kind.COMMAND_SENT:
            answer = None if e.message_id is None else answers.get((e.station_id, e.message_id))
            report.commands.append(StationCommand(e, answer))
        elif e.kind in (Kind.UPSTREAM_SENT, Kind.UPSTREAM_DROPPED):  # what the utility got, and what it never will
            report.upstream.append(e)
        elif e.kind != Kind.STATION_ANSWER or (e.station_id, e.message_id) not in answers:
            report.other.append(e)
    return report
