"""A station's charging profiles (OCPP 2.x use case K01, 1.6 Smart Charging), pure: time is an argument.

Both versions are kept in one shape: the evse (1.6: connector) id and the profile as received. The power the
simulated EV draws follows the profiles, so a fleet's metered power shows the gateway's limits taking effect.
Simplifications: Relative and Recurring schedules start when received; TxProfile needs no running transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.model import OcppVersion
from protocols.ocpp.simulator.der_store import parse_time

#: Purpose names of the station-wide maximum profile per version.
STATION_MAX = {OcppVersion.V16: "ChargePointMaxProfile"}


def station_max_purpose(version: OcppVersion) -> str:
    return STATION_MAX.get(version, "ChargingStationMaxProfile")


@dataclass(slots=True)
class StoredProfile:
    evse_id: int
    profile: dict[str, Any]
    received: datetime

    @property
    def profile_id(self) -> int:
        key = "chargingProfileId" if "chargingProfileId" in self.profile else "id"
        value: int = self.profile[key]
        return value

    @property
    def purpose(self) -> str:
        purpose: str = self.profile["chargingProfilePurpose"]
        return purpose

    @property
    def stack_level(self) -> int:
        level: int = self.profile["stackLevel"]
        return level

    def schedules(self) -> list[dict[str, Any]]:
        schedule = self.profile["chargingSchedule"]
        return schedule if isinstance(schedule, list) else [schedule]


def _validity(stored: StoredProfile) -> tuple[datetime | None, datetime | None]:
    raw_from, raw_to = stored.profile.get("validFrom"), stored.profile.get("validTo")
    return (parse_time(raw_from) if raw_from else None, parse_time(raw_to) if raw_to else None)


def _overlap(a: StoredProfile, b: StoredProfile) -> bool:
    """Whether two profiles' validity periods overlap (an absent bound is open)."""
    a_from, a_to = _validity(a)
    b_from, b_to = _validity(b)
    return (a_to is None or b_from is None or b_from < a_to) and (b_to is None or a_from is None or a_from < b_to)


@dataclass(frozen=True, slots=True)
class Rates:
    """What the EVSE's profiles allow at one instant, in W: a cap and, for CentralSetpoint, a setpoint."""

    limit_w: float | None = None
    setpoint_w: float | None = None

    def power(self, demand_w: float) -> float:
        """The power the EV draws given its own demand (positive import, negative export)."""
        if self.setpoint_w is not None:
            target = self.setpoint_w
            return min(target, self.limit_w) if self.limit_w is not None and target > 0 else target
        return demand_w if self.limit_w is None else max(0.0, min(demand_w, self.limit_w))


class ProfileStore:
    """Charging profiles of one station, with the acceptance checks a strict station makes."""

    def __init__(
        self,
        version: OcppVersion,
        *,
        rate_units: tuple[str, ...],
        operation_modes: frozenset[str],
        max_stack_level: int,
        volts: float,
        phases: int,
    ) -> None:
        self.version = version
        self.rate_units = rate_units
        self.operation_modes = operation_modes
        self.max_stack_level = max_stack_level
        self.volts = volts
        self.phases = phases
        self.profiles: list[StoredProfile] = []

    def set(self, evse_id: int, profile: dict[str, Any], now: datetime) -> tuple[str, str] | None:
        """Store a profile; None when accepted, else (reasonCode, additionalInfo) of the rejection."""
        stored = StoredProfile(evse_id, profile, now)
        if stored.stack_level > self.max_stack_level:
            return "InvalidStackLevel", f"stackLevel above {self.max_stack_level}"
        if stored.purpose == station_max_purpose(self.version) and evse_id != 0:
            return "InvalidProfile", f"{stored.purpose} must be on EVSE 0"
        for schedule in stored.schedules():
            if schedule["chargingRateUnit"] not in self.rate_units:
                return "UnsupportedRateUnit", f"rate units: {','.join(self.rate_units)}"  # K01.FR.26
            for period in schedule["chargingSchedulePeriod"]:
                mode = period.get("operationMode", "ChargingOnly")
                if self.version is OcppVersion.V21 and mode not in self.operation_modes | {"ChargingOnly"}:
                    return "InvalidSchedule", f"operationMode {mode} is not supported"  # K01.FR.115
        self.profiles = [
            p
            for p in self.profiles
            if p.profile_id != stored.profile_id
            and not (
                (p.evse_id, p.purpose, p.stack_level) == (evse_id, stored.purpose, stored.stack_level)
                and (self.version is OcppVersion.V16 or _overlap(p, stored))
            )
        ]  # K01.FR.05: same id is replaced; same EVSE, purpose and stack level too where validity overlaps (2.x
        # K01.FR.06; 1.6 replaces on stack level and purpose alone)
        self.profiles.append(stored)
        return None

    def find(
        self,
        *,
        profile_ids: list[int] | None = None,
        evse_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> list[StoredProfile]:
        return [
            p
            for p in self.profiles
            if (profile_ids is None or p.profile_id in profile_ids)
            and (evse_id is None or p.evse_id == evse_id)
            and (purpose is None or p.purpose == purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]

    def clear(self, found: list[StoredProfile]) -> bool:
        """Remove `found`; False when there was nothing to clear (status Unknown)."""
        self.profiles = [p for p in self.profiles if p not in found]
        return bool(found)

    def rates(self, evse_id: int, now: datetime) -> Rates:
        """The cap (lowest of the station maximum and the winning Tx/TxDefault profile) and setpoint at `now`."""
        tx = (
            self._winning_period("TxProfile", evse_id, now)
            or self._winning_period("TxDefaultProfile", evse_id, now)
            or self._winning_period("TxDefaultProfile", 0, now)  # a TxDefaultProfile on EVSE 0 applies to all
        )
        limits: list[float] = []
        setpoint: float | None = None
        for found in (self._winning_period(station_max_purpose(self.version), 0, now), tx):
            if found is None:
                continue
            values, unit, phases = found
            if "limit" in values:
                limits.append(self._watts(values["limit"], unit, phases))
            if values.get("operationMode") == "CentralSetpoint" and "setpoint" in values:
                setpoint = self._watts(values["setpoint"], unit, phases)
        return Rates(min(limits) if limits else None, setpoint)

    def _watts(self, value: float, unit: str, phases: int) -> float:
        return float(value) if unit == "W" else float(value) * self.volts * phases

    def _winning_period(self, purpose: str, evse_id: int, now: datetime) -> tuple[dict[str, Any], str, int] | None:
        """The current period of the highest stack level of `purpose` on `evse_id` that has one at `now`."""
        for stored in sorted(self.find(evse_id=evse_id, purpose=purpose), key=lambda p: -p.stack_level):
            valid_from, valid_to = _validity(stored)
            if (valid_from is not None and now < valid_from) or (valid_to is not None and now >= valid_to):
                continue
            schedule = stored.schedules()[0]
            start = parse_time(schedule["startSchedule"]) if "startSchedule" in schedule else stored.received
            elapsed = (now - start).total_seconds()
            if elapsed < 0 or ("duration" in schedule and elapsed >= schedule["duration"]):
                continue
            current = [p for p in schedule["chargingSchedulePeriod"] if p["startPeriod"] <= elapsed]
            if current:
                period = max(current, key=lambda p: p["startPeriod"])
                return period, schedule["chargingRateUnit"], period.get("numberPhases", self.phases)
        return None
