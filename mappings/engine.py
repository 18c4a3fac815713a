"""map_directive / map_clear: one directive and one station's capabilities in, the OCPP commands for it out.

Pure: no I/O and no clock (time is the `now` argument). Every control of the directive ends up either in exactly one
command's `controls` or in `unsupported` with a reason naming the OCPP version and what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.model import Directive, OcppVersion, StationCapabilities, UnsupportedControl
from mappings import charging_profiles, der_controls
from mappings.commands import MappingResult, OcppCommand
from mappings.decisions import MAX_NUMBER, PRICE_REASON
from mappings.naming import VERSION_LABEL

#: map_clear renders the installed commands at this instant only to recover their ids: which commands a directive
#: installs never depends on `now`, only their timestamps do.
_CLEAR_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)


def map_directive(
    directive: Directive,
    caps: StationCapabilities,
    *,
    number: int,
    now: datetime,
    evse_id: int | None = None,
) -> MappingResult:
    """The commands that put `directive` in force on a station with `caps`, and the controls it cannot carry.

    `number` is the runtime's unique positive number for the directive; every id sent derives from it. `evse_id`
    overrides the directive's own target EVSE (None or 0 = the whole station). A directive without a start begins
    at `now`.
    """
    if not 1 <= number <= MAX_NUMBER:
        raise ValueError(f"number must be in 1..{MAX_NUMBER} so profile ids stay within int32, not {number}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    evse = evse_id if evse_id is not None else directive.target.evse_id
    profiles, unsupported, consumed = charging_profiles.build(directive, caps, number=number, now=now, evse=evse)
    names = [n for n in der_controls.der_control_names(directive) if n not in consumed]
    ders, der_unsupported = der_controls.build(directive, caps, names=names, number=number, now=now, evse=evse)
    unsupported.extend(der_unsupported)
    if directive.controls.price is not None:
        unsupported.append(
            UnsupportedControl(control="price", reason=PRICE_REASON.format(version=VERSION_LABEL[caps.version]))
        )
    order = {name: i for i, name in enumerate(directive.controls.present())}
    unsupported.sort(key=lambda u: order[u.control])
    return MappingResult(commands=(*ders, *profiles), unsupported=tuple(unsupported))


def map_clear(
    directive: Directive,
    caps: StationCapabilities,
    *,
    number: int,
    evse_id: int | None = None,
) -> MappingResult:
    """The commands that remove exactly what map_directive installed for (`directive`, `number`) on this station.

    ClearDERControl by isDefault and controlId (R04.FR.46); ClearChargingProfile by chargingProfileId (1.6: id).
    `unsupported` repeats what was never installed, so the caller can report the clear per control too.
    """
    installed = map_directive(directive, caps, number=number, now=_CLEAR_ANCHOR, evse_id=evse_id)
    return MappingResult(
        commands=tuple(clear_command(command, caps.version) for command in installed.commands),
        unsupported=installed.unsupported,
    )


def clear_command(command: OcppCommand, version: OcppVersion) -> OcppCommand:
    """The command that removes what `command` set (ClearDERControl by id, ClearChargingProfile by profile id)."""
    payload = command.payload
    if command.action == "SetDERControl":
        clear = {"isDefault": payload["isDefault"], "controlId": payload["controlId"]}
        return OcppCommand("ClearDERControl", clear, command.controls)
    if version is OcppVersion.V16:
        return OcppCommand(
            "ClearChargingProfile", {"id": payload["csChargingProfiles"]["chargingProfileId"]}, command.controls
        )
    return OcppCommand(
        "ClearChargingProfile", {"chargingProfileId": payload["chargingProfile"]["id"]}, command.controls
    )
