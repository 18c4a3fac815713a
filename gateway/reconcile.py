"""Reconciliation: what a reconnecting station holds against what should be in force there. Pure: no I/O, no clock.

A station that was away (or a gateway that was restarted) may hold controls the gateway no longer wants there
(cancelled while it was offline, or changed) and may miss controls it should hold. The station reports what it
holds (2.1 GetDERControl -> ReportDERControl, 2.x GetChargingProfiles -> ReportChargingProfiles); `diff` compares
that with the commands that should be in force and returns the least to send: the commands whose id the station
does not hold, or holds with other content, and clears for what it holds under our ids that nothing wants. Items
that are not ours (other controlIds, profile ids of no directive the gateway knows) are never touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gateway.model import Directive, OcppVersion
from gateway.schedule import station_window
from mappings import OcppCommand
from mappings.decisions import PROFILE_SLOTS, SLOT_STATION_MAX, SLOT_TX_DEFAULT
from mappings.naming import der_setting_field

ItemKind = Literal["der", "profile"]
#: (kind, id): a DER control by controlId, a charging profile by its id.
Key = tuple[ItemKind, str]

_OUR_CONTROL = re.compile(r"^g(\d+)-")
#: ReportDERControl fields (one list per setting type) and the key each entry keeps its setting under.
_REPORT_SETTING = {
    "curve": "curve",
    "enterService": "enterService",
    "fixedPFAbsorb": "fixedPF",
    "fixedPFInject": "fixedPF",
    "fixedVar": "fixedVar",
    "freqDroop": "freqDroop",
    "gradient": "gradient",
    "limitMaxDischarge": "limitMaxDischarge",
}
#: ReportDERControl types whose entries carry no isDefault: they exist only as defaults (R04.FR.14).
_DEFAULT_ONLY_FIELDS = frozenset({"enterService", "gradient"})


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a station holds or should hold; `body` is its content in canonical JSON (compared, not read)."""

    kind: ItemKind
    ident: str
    body: str
    is_default: bool = False

    @property
    def key(self) -> Key:
        return (self.kind, self.ident)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send a station: commands (with the directive each belongs to) and clears for items held."""

    send: list[tuple[str, OcppCommand]] = field(default_factory=list)
    clear: list[Item] = field(default_factory=list)
    #: Directives whose every command the station already holds as they should be.
    held: list[str] = field(default_factory=list)


def item_of(command: OcppCommand) -> Item | None:
    """The item a Set* command puts on a station (None for other commands)."""
    p = command.payload
    if command.action == "SetDERControl":
        setting = p[der_setting_field(p["controlType"])]
        return Item("der", str(p["controlId"]), _canonical(setting), bool(p["isDefault"]))
    if command.action == "SetChargingProfile" and "chargingProfile" in p:
        profile = p["chargingProfile"]
        return Item("profile", str(profile["id"]), _canonical([p["evseId"], profile]))
    if command.action == "SetChargingProfile" and "csChargingProfiles" in p:  # 1.6: never reported, only keyed
        profile = p["csChargingProfiles"]
        return Item("profile", str(profile["chargingProfileId"]), _canonical([p["connectorId"], profile]))
    return None


def held_der(reports: Iterable[Mapping[str, Any]]) -> list[Item]:
    """Items from ReportDERControl payloads."""
    items: list[Item] = []
    for report in reports:
        for name, key in _REPORT_SETTING.items():
            for entry in report.get(name, ()):
                default = bool(entry.get("isDefault", name in _DEFAULT_ONLY_FIELDS))
                items.append(Item("der", str(entry["id"]), _canonical(entry[key]), default))
    return items


def held_profiles(reports: Iterable[Mapping[str, Any]]) -> list[Item]:
    """Items from ReportChargingProfiles payloads (2.x)."""
    return [
        Item("profile", str(profile["id"]), _canonical([report["evseId"], profile]))
        for report in reports
        for profile in report.get("chargingProfile", ())
    ]


def number_of(item: Item) -> int | None:
    """The directive number an item's id derives from, when it has our shape (`g{number}-...`, number*16+slot)."""
    if item.kind == "der":
        found = _OUR_CONTROL.match(item.ident)
        return int(found.group(1)) if found else None
    try:
        ident = int(item.ident)
    except ValueError:
        return None
    number, slot = divmod(ident, PROFILE_SLOTS)
    return number if number > 0 and slot in (SLOT_STATION_MAX, SLOT_TX_DEFAULT) else None


def diff(
    desired: Sequence[tuple[str, OcppCommand]],
    held: Sequence[Item],
    *,
    ours: Collection[int],
    keep: Collection[int] = (),
) -> Plan:
    """The least that makes the station hold exactly `desired` among the items of directive numbers `ours`.

    `desired` is (directive id, Set* command) for everything that should be in force at the station; `keep` are
    numbers whose items are left alone either way (a fan-out or a timed clear of theirs is under way).
    """
    have = {item.key: item for item in held}
    send: list[tuple[str, OcppCommand]] = []
    wanted: set[Key] = set()
    missing_by_directive: dict[str, bool] = {}
    for directive_id, command in desired:
        item = item_of(command)
        if item is None:
            continue
        wanted.add(item.key)
        current = have.get(item.key)
        stale = current is None or current.body != item.body or current.is_default != item.is_default
        if stale:
            send.append((directive_id, command))
        missing_by_directive[directive_id] = missing_by_directive.get(directive_id, False) or stale
    clear = [
        item
        for item in held
        if item.key not in wanted and (number := number_of(item)) is not None and number in ours and number not in keep
    ]
    held_ids = [d for d, missing in missing_by_directive.items() if not missing]
    return Plan(send=send, clear=clear, held=held_ids)


def clear_command(item: Item, version: OcppVersion) -> OcppCommand:
    """The command that removes one held item (ClearDERControl by id, R04.FR.46; ClearChargingProfile by id)."""
    if item.kind == "der":
        return OcppCommand("ClearDERControl", {"isDefault": item.is_default, "controlId": item.ident}, ())
    if version is OcppVersion.V16:
        return OcppCommand("ClearChargingProfile", {"id": int(item.ident)}, ())
    return OcppCommand("ClearChargingProfile", {"chargingProfileId": int(item.ident)}, ())


def wanted_at(directive: Directive, station_id: str, *, received: datetime, now: datetime) -> bool:
    """Should a station hold `directive` now: a default always, anything else until its own (randomized) window
    has ended; a directive that starts later is held ahead of its start, as fan-out sends it."""
    if directive.is_default:
        return True
    end = station_window(directive, station_id, received=received).end
    return end is None or end > now
