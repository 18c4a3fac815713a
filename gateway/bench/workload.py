"""What every CSMS of the bench sends: one fleet-wide frequency-droop directive per round.

It starts an hour after the bench began, so no station starts a control (and sends NotifyDERStartStop) while a
fan-out is being timed. On an OCPP 2.1 DER station it maps to exactly one SetDERControl, which the baselines
send as they get it from the gateway's own mapping, so all three put the same bytes on the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import CommandOutcome, Directive, OcppVersion, OutcomeStatus, StationCapabilities, StationOutcome
from mappings import map_directive
from mappings.commands import OcppCommand

#: What a simulated 2.1 station reports: enough for the mapping of a frequency droop.
STATION_CAPS = StationCapabilities(version=OcppVersion.V21, der_modes=frozenset({"FreqDroop"}), max_w=11_000)


def directive(number: int, start: datetime) -> Directive:
    """Round `number`'s directive; the gateway numbers directives from 1, so `number` is also its OCPP key."""
    return Directive.model_validate(
        {
            "id": f"bench-{number}",
            "source": {"protocol": "api", "program": "bench"},
            "priority": 5,
            "start": start.isoformat(),
            "duration_s": 3600,
            "target": {"scope": "fleet"},
            "controls": {
                "freq_droop": {
                    "over_freq_hz": 50.2,
                    "under_freq_hz": 49.8,
                    "over_droop": 0.05,
                    "under_droop": 0.05,
                    "response_time_s": 5,
                }
            },
        }
    )


def start_time() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


def set_der_control(number: int, start: datetime) -> dict[str, Any]:
    """The SetDERControl payload the gateway sends for round `number`."""
    return der_control(directive(number, start), number, start).payload


def der_control(d: Directive, number: int, now: datetime) -> OcppCommand:
    """The one command the gateway sends a simulated station for a bench directive numbered `number`."""
    (command,) = map_directive(d, STATION_CAPS, number=number, now=now).commands
    assert command.action == "SetDERControl"
    return command


def named(directive_id: str, start: datetime) -> Directive:
    """The bench directive under another id (a history's, a store's)."""
    return directive(0, start).model_copy(update={"id": directive_id})


def accepted(directive_id: str, station_id: str, message_id: str, at: datetime) -> StationOutcome:
    """A station's outcome of a bench directive: its SetDERControl accepted at `at`."""
    command = CommandOutcome(
        action="SetDERControl",
        message_id=message_id,
        controls=["freq_droop"],
        status=OutcomeStatus.ACCEPTED,
        answer="Accepted",
        at=at,
    )
    return StationOutcome(
        directive_id=directive_id, station_id=station_id, status=OutcomeStatus.ACCEPTED, commands=[command], updated=at
    )
