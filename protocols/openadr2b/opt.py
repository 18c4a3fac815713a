"""Opt in or out of an OpenADR 2.0b event from what normalization made of it and what the fleet can do. Pure.

2.0b has one answer per event (oadrCreatedEvent optIn/optOut), so an event is opted out as soon as one part of it
cannot be followed, and then nothing of it reaches the fleet: the VTN plans with the answer, so the gateway must
not half-follow an event it declined. Import limits and prices are always doable (every OCPP version carries a
charging limit); setpoints and export need stations that can hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.openadr2b.normalize import Normalized

#: Rejection codes that do not stop the VEN from taking part (nothing to do, as the 2.0b rules ask).
NOTED_CODES = frozenset({"test_event"})


class Opt(StrEnum):
    IN = "optIn"
    OUT = "optOut"


@dataclass(frozen=True, slots=True)
class FleetCapability:
    """What the stations of one target can do now (the runtime's fleet registry knows it)."""

    stations_total: int
    stations_online: int
    #: Sum of the online stations' maximum import, W.
    max_import_w: float
    #: At least one online station can discharge (V2G, OCPP 2.1 with a discharge limit).
    can_discharge: bool
    #: The online stations can hold an active power setpoint (OCPP 2.1 operation modes).
    can_hold_setpoint: bool


@dataclass(frozen=True, slots=True)
class OptDecision:
    opt: Opt
    reason: str = ""
    code: str | None = None


def decide_opt(result: Normalized, capability: FleetCapability) -> OptDecision:
    """optOut with the first reason the event cannot be followed, else optIn."""
    for rejected in result.rejected:
        if rejected.code not in NOTED_CODES:
            return OptDecision(Opt.OUT, rejected.reason, rejected.code)
    if not result.directives:
        return OptDecision(Opt.IN)
    if capability.stations_online == 0:
        return OptDecision(Opt.OUT, "no station of the target is online", "no_station")
    for directive in result.directives:
        c = directive.controls
        setpoint = c.active_power_setpoint_w
        if (c.export_limit_w is not None or (setpoint is not None and setpoint < 0)) and not capability.can_discharge:
            return OptDecision(Opt.OUT, f"{directive.id}: no online station can discharge", "no_discharge")
        if setpoint is not None and not capability.can_hold_setpoint:
            return OptDecision(Opt.OUT, f"{directive.id}: the stations cannot hold a power setpoint", "no_setpoint")
        if setpoint is not None and setpoint > capability.max_import_w:
            reason = f"{directive.id}: setpoint {setpoint:.0f} W is above the online {capability.max_import_w:.0f} W"
            return OptDecision(Opt.OUT, reason, "beyond_capacity")
    return OptDecision(Opt.IN)
