"""The Directive: one utility request in canonical form, whatever protocol it came in on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, field_validator, model_validator

from gateway.model.controls import Controls, Strict
from gateway.model.units import Priority, RandomizeSeconds

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]


class SourceProtocol(StrEnum):
    API = "api"
    IEEE2030_5 = "ieee2030_5"
    OPENADR3 = "openadr3"
    OPENADR2B = "openadr2b"
    IEC61850 = "iec61850"


class Source(Strict):
    """Where a directive came from, so outcomes can go back to the same place."""

    protocol: SourceProtocol = SourceProtocol.API
    server: str | None = Field(default=None, max_length=512)
    program: str | None = Field(default=None, max_length=256)
    #: The utility's own id of the signal (2030.5 mRID, OpenADR event id, ...).
    signal_id: str | None = Field(default=None, max_length=256)


class TargetScope(StrEnum):
    FLEET = "fleet"
    GROUP = "group"
    STATION = "station"


class Share(StrEnum):
    """How a target's stations take the directive's power limits (docs/dispatch.md, "Aggregate targets")."""

    #: Every station gets the limit as given.
    EACH = "each"
    #: The import/export limits are one cap for all the target's stations together, shared among them.
    TOTAL = "total"


class Target(Strict):
    """Which stations a directive is for. `evse_id` narrows a station target to one EVSE (0 = whole station)."""

    scope: TargetScope = TargetScope.FLEET
    ids: list[Identifier] = Field(default_factory=list, max_length=10_000)
    evse_id: int | None = Field(default=None, ge=0, le=1000)
    share: Share = Share.EACH

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.scope is TargetScope.FLEET and self.ids:
            raise ValueError("target: a fleet target takes no ids")
        if self.scope is not TargetScope.FLEET and not self.ids:
            raise ValueError(f"target: a {self.scope} target needs at least one id")
        if self.evse_id is not None and self.scope is not TargetScope.STATION:
            raise ValueError("target: evse_id is only meaningful for a station target")
        return self


#: Power controls that are per station by nature: a total share of them has no meaning the gateway could apply.
_PER_STATION_POWER = ("active_power_setpoint_w", "max_discharge_pct")


class Directive(Strict):
    """A utility request: controls for a target over a time window, with a priority.

    `start` None means "now"; `duration_s` None means "until cancelled". Default directives (IEEE 2030.5
    DefaultDERControl, OCPP isDefault) apply whenever nothing else of their kind does and carry no time window.
    """

    id: Identifier = Field(default_factory=lambda: str(uuid.uuid4()))
    source: Source = Field(default_factory=Source)
    priority: Priority = 10
    start: AwareDatetime | None = None
    duration_s: float | None = Field(default=None, gt=0, le=31_536_000, allow_inf_nan=False)
    randomize_start_s: RandomizeSeconds = 0
    randomize_duration_s: RandomizeSeconds = 0
    target: Target = Field(default_factory=Target)
    is_default: bool = False
    controls: Controls

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.is_default and (self.start is not None or self.duration_s is not None):
            raise ValueError("a default directive has no start or duration (OCPP R04.FR.12/13)")
        if self.is_default and (self.randomize_start_s or self.randomize_duration_s):
            raise ValueError("a default directive cannot be randomized")
        if self.target.share is Share.TOTAL:
            c = self.controls
            if c.import_limit_w is None and c.export_limit_w is None:
                raise ValueError("target.share total: the directive needs import_limit_w or export_limit_w to share")
            per_station = [n for n in _PER_STATION_POWER if getattr(c, n) is not None]
            if per_station:
                raise ValueError(
                    f"target.share total: {', '.join(per_station)} cannot be shared as a total "
                    "(only import_limit_w and export_limit_w can)"
                )
        return self

    def end(self, now: datetime) -> datetime | None:
        """When the directive stops being in force, or None if it runs until cancelled."""
        if self.duration_s is None:
            return None
        return (self.start or now) + timedelta(seconds=self.duration_s)


class DirectiveState(StrEnum):
    """Directive lifecycle (DESIGN.md): received -> scheduled -> active -> completed, or an early end."""

    RECEIVED = "received"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    FAILED = "failed"
