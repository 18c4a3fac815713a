"""Reading and setting the stackLevel of a mapped SetChargingProfile (OCPP 2.x and 1.6 payload shapes).

The mapping gives each profile the level of its priority band (docs/mappings.md); the runtime then moves it to the
level its neighbours on the station leave free (gateway.schedule.stacking). These helpers keep the payload shapes
of both versions in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.commands import OcppCommand


@dataclass(frozen=True, slots=True)
class ProfileSlot:
    """Where a profile sits on a station: its purpose, level and whether it carries validFrom/validTo."""

    purpose: str
    level: int
    bounded: bool


def profile_slot(command: OcppCommand) -> ProfileSlot | None:
    """The slot a SetChargingProfile fills (None for any other command)."""
    if command.action != "SetChargingProfile":
        return None
    p = command.payload
    profile = p["csChargingProfiles"] if "csChargingProfiles" in p else p["chargingProfile"]
    bounded = "validTo" in profile and "validFrom" in profile
    return ProfileSlot(str(profile["chargingProfilePurpose"]), int(profile["stackLevel"]), bounded)


def with_stack_level(command: OcppCommand, level: int) -> OcppCommand:
    """The same command with another stackLevel (a new payload; the original is shared and never mutated)."""
    p = command.payload
    key = "csChargingProfiles" if "csChargingProfiles" in p else "chargingProfile"
    payload = {**p, key: {**p[key], "stackLevel": level}}
    return OcppCommand(command.action, payload, command.controls, command.note)
