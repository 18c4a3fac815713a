"""What the mapping layer hands the runtime: OCPP commands to send, and the controls no command could carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.model import UnsupportedControl


@dataclass(frozen=True)
class OcppCommand:
    """One OCPP CALL for one station.

    `payload` is exactly the camelCase JSON object sent on the wire (the `ocpp` package's converter mangles several
    2.1 DER names, so payloads are built by hand). `controls` names the canonical controls (`Controls.present()`
    spelling) this command carries, so the station's answer can be reported per control.
    """

    action: str
    payload: dict[str, Any]
    controls: tuple[str, ...]
    note: str | None = None

    def target_id(self) -> str | None:
        """The station-side id this command sets or clears (controlId, charging profile id): a set and the clear of
        what it set share it."""
        p = self.payload
        found = (
            p.get("controlId")
            or p.get("chargingProfileId")
            or p.get("id")
            or (p.get("chargingProfile") or {}).get("id")
            or (p.get("csChargingProfiles") or {}).get("chargingProfileId")
        )
        return None if found is None else str(found)


@dataclass(frozen=True)
class MappingResult:
    """Every control of a directive ends up in exactly one command's `controls` or in `unsupported`."""

    commands: tuple[OcppCommand, ...]
    unsupported: tuple[UnsupportedControl, ...]

    def carried(self) -> list[str]:
        """Controls carried by some command, in command order."""
        return [name for command in self.commands for name in command.controls]
