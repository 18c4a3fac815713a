"""Grid directives versus the CSMS's own charging profiles and DER controls: detection, no I/O.

The proxy remembers what the gateway put on each station (the payloads the station accepted) and checks every CSMS
SetChargingProfile / ClearChargingProfile / SetDERControl / ClearDERControl against it:

- `replaces`: the CSMS command overwrites a grid profile or control (same id; or, for profiles, the same EVSE,
  purpose and stackLevel, K01.FR.05; for DER controls the same controlId);
- `clears`: the CSMS clear matches a grid profile or control (K10, R04.FR.30ff);
- `overrides`: the CSMS command outranks a grid one without removing it (a higher stackLevel of the same purpose,
  K01.FR.17; a TxProfile over a grid TxDefaultProfile; a DER control of the same type with equal or higher priority).

Policy (docs/sidecar.md): CSMS frames are passed on unchanged and every conflict is audited; after the station
accepts a `replaces` or `clears`, the gateway sends its own command again, so the grid directive is back in force.
An `overrides` cannot be undone without rewriting the CSMS's frame: it is audited for the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.model import OcppVersion

Payload = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    evse: int
    purpose: str
    stack: int


@dataclass(frozen=True, slots=True)
class DerControl:
    id: str
    control_type: str
    is_default: bool
    priority: int


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str  # replaces | clears | overrides
    #: The grid command concerned: its action and payload as the station accepted it.
    action: str
    payload: Payload

    @property
    def reassert(self) -> bool:
        return self.kind in ("replaces", "clears")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "grid_action": self.action, "grid_payload": self.payload}


def profile_of(version: OcppVersion, payload: Mapping[str, Any]) -> Profile:
    if version is OcppVersion.V16:
        p = payload["csChargingProfiles"]
        return Profile(p["chargingProfileId"], payload["connectorId"], p["chargingProfilePurpose"], p["stackLevel"])
    p = payload["chargingProfile"]
    return Profile(p["id"], payload["evseId"], p["chargingProfilePurpose"], p["stackLevel"])


def der_of(payload: Mapping[str, Any]) -> DerControl:
    kind = str(payload["controlType"])
    setting = next((v for v in payload.values() if isinstance(v, dict) and "priority" in v), {})
    return DerControl(str(payload["controlId"]), kind, bool(payload["isDefault"]), int(setting.get("priority", 0)))


def _clear_criteria(version: OcppVersion, payload: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
    if version is OcppVersion.V16:
        criteria = {"evse": payload.get("connectorId"), "purpose": payload.get("chargingProfilePurpose")}
        criteria["stack"] = payload.get("stackLevel")
        return payload.get("id"), criteria
    c = payload.get("chargingProfileCriteria") or {}
    criteria = {"evse": c.get("evseId"), "purpose": c.get("chargingProfilePurpose"), "stack": c.get("stackLevel")}
    return payload.get("chargingProfileId"), criteria


def _profile_cleared(held: Profile, ident: int | None, criteria: Mapping[str, Any]) -> bool:
    if ident is not None:
        return held.id == ident
    values = {"evse": held.evse, "purpose": held.purpose, "stack": held.stack}
    given = {k: v for k, v in criteria.items() if v is not None}
    return bool(given) and all(values[k] == v for k, v in given.items())


def _der_cleared(held: DerControl, payload: Mapping[str, Any]) -> bool:
    if "controlId" in payload:
        return bool(held.id == payload["controlId"])
    if held.is_default != payload["isDefault"]:
        return False
    return "controlType" not in payload or payload["controlType"] == held.control_type


class GridHoldings:
    """What the gateway holds on one station: accepted charging profiles and DER controls, by id."""

    def __init__(self, version: OcppVersion) -> None:
        self.version = version
        self.profiles: dict[int, tuple[Profile, Payload]] = {}
        self.der: dict[str, tuple[DerControl, Payload]] = {}

    def accepted(self, action: str, payload: Payload) -> None:
        """The station accepted a gateway command: remember (or forget) what it holds."""
        if action == "SetChargingProfile":
            profile = profile_of(self.version, payload)
            self.profiles[profile.id] = (profile, payload)
        elif action == "ClearChargingProfile":
            ident, criteria = _clear_criteria(self.version, payload)
            clear_all = ident is None and all(v is None for v in criteria.values())  # 1.6: no criteria = all
            for key in [k for k, (p, _) in self.profiles.items() if clear_all or _profile_cleared(p, ident, criteria)]:
                del self.profiles[key]
        elif action == "SetDERControl":
            control = der_of(payload)
            self.der[control.id] = (control, payload)
        elif action == "ClearDERControl":
            for control_id in [k for k, (c, _) in self.der.items() if _der_cleared(c, payload)]:
                del self.der[control_id]

    def conflicts(self, action: str, payload: Payload) -> list[Conflict]:
        """How a CSMS command (schema-valid) would affect what the gateway holds."""
        found: list[Conflict] = []
        if action == "SetChargingProfile":
            new = profile_of(self.version, payload)
            for held, grid in self.profiles.values():
                if held.id == new.id or (held.evse, held.purpose, held.stack) == (new.evse, new.purpose, new.stack):
                    found.append(Conflict("replaces", action, grid))
                elif (held.purpose == new.purpose and new.stack > held.stack and new.evse in (held.evse, 0)) or (
                    held.purpose == "TxDefaultProfile" and new.purpose == "TxProfile"
                ):
                    found.append(Conflict("overrides", action, grid))
        elif action == "ClearChargingProfile":
            ident, criteria = _clear_criteria(self.version, payload)
            clear_all = ident is None and all(v is None for v in criteria.values())  # 1.6: no criteria = all
            found += [
                Conflict("clears", "SetChargingProfile", grid)
                for held, grid in self.profiles.values()
                if clear_all or _profile_cleared(held, ident, criteria)
            ]
        elif action == "SetDERControl":
            new_der = der_of(payload)
            for held_der, grid in self.der.values():
                if held_der.id == new_der.id:
                    found.append(Conflict("replaces", action, grid))
                elif (held_der.control_type, held_der.is_default) == (new_der.control_type, new_der.is_default) and (
                    new_der.priority <= held_der.priority
                ):
                    found.append(Conflict("overrides", action, grid))
        elif action == "ClearDERControl":
            found += [
                Conflict("clears", "SetDERControl", grid) for c, grid in self.der.values() if _der_cleared(c, payload)
            ]
        return found
