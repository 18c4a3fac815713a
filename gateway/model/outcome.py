"""Per-station outcomes and alarms: what goes back to the utility."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field

from gateway.model.controls import Strict


class OutcomeStatus(StrEnum):
    """Per-station, per-directive state (DESIGN.md lifecycle)."""

    PENDING = "pending"
    SENT = "sent"
    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"
    NOT_SUPPORTED = "not-supported"
    TIMEOUT = "timeout"
    OFFLINE = "offline-queued"
    ERROR = "error"
    CLEARED = "cleared"

    @property
    def final(self) -> bool:
        return self not in (OutcomeStatus.PENDING, OutcomeStatus.SENT)


class CommandOutcome(Strict):
    """One OCPP command sent for a directive, and what the station answered."""

    action: str
    message_id: str | None = None
    controls: list[str]
    status: OutcomeStatus
    #: The station's status string (Accepted, Rejected, NotSupported, ...) or the CALLERROR code.
    answer: str | None = None
    detail: str | None = None
    at: AwareDatetime | None = None


class UnsupportedControl(Strict):
    control: str
    reason: str


class StationOutcome(Strict):
    directive_id: str
    station_id: str
    status: OutcomeStatus
    commands: list[CommandOutcome] = Field(default_factory=list)
    unsupported: list[UnsupportedControl] = Field(default_factory=list)
    updated: AwareDatetime | None = None


class Alarm(Strict):
    """A station's NotifyDERAlarm, in canonical form."""

    station_id: str
    evse_id: int | None = None
    control: str
    grid_event_fault: str | None = None
    ended: bool = False
    at: datetime
    extra_info: str | None = None
    raw: dict[str, Any] | None = None
