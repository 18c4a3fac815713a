"""Fleet data -> the DER documents the gateway reports (DERCapability, DERSettings, DERStatus, DERAvailability) and
the site power reading it mirrors (MirrorUsagePoint / MirrorMeterReading).

All builders are pure: fleet numbers (W, var, counts) in, wire models out. Powers are ActivePower (Int16 value x
10^multiplier), so the multiplier is the smallest power of ten that keeps the value within Int16; the site reading is
an Int48 in W (multiplier 0). Signs follow the canonical model: + is import (the site draws power).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from gateway.model import Target
from protocols.ieee2030_5 import wire

#: DERType 82: EVSE.
DER_TYPE_EVSE = 82
#: DERControlType bits (modesSupported / modesEnabled).
MODE_CHARGE, MODE_DISCHARGE = 1 << 0, 1 << 1
MODE_FIXED_W, MODE_MAX_LIM_W, MODE_TARGET_W = 1 << 7, 1 << 20, 1 << 22
#: CSIP-AUS DOEControlType bits.
DOE_EXP_LIM_W, DOE_IMP_LIM_W, DOE_GEN_LIM_W, DOE_LOAD_LIM_W = 1 << 0, 1 << 1, 1 << 2, 1 << 3
#: ConnectStatusType bits.
CONNECTED, AVAILABLE, OPERATING, FAULT = 0x01, 0x02, 0x04, 0x10
#: OperationalModeStatusType.
OP_MODE_OFF, OP_MODE_OPERATIONAL = 1, 2


@dataclass(frozen=True, slots=True)
class FleetRatings:
    """Nameplate sums over the stations of a target that reported capabilities (W, var)."""

    max_w: float = 0.0
    max_charge_w: float = 0.0
    max_discharge_w: float = 0.0
    max_var: float = 0.0


@dataclass(frozen=True, slots=True)
class FleetState:
    """What the target's stations are doing now."""

    stations: int = 0
    online: int = 0
    faulted: int = 0
    #: Sum of the connected stations' latest active power, W (+ import); None when none reported.
    power_w: float | None = None
    #: Ratings of the online stations only: what can be dispatched now.
    available_w: float = 0.0
    available_var: float = 0.0


class FleetData(Protocol):
    """What the adapter reads about the stations an EndDevice stands for (gateway.utility.FleetView)."""

    def ratings(self, target: Target) -> FleetRatings: ...

    def der_state(self, target: Target) -> FleetState: ...


def power(watts: float) -> wire.Power:
    """W (or var) as value x 10^multiplier with the value inside Int16."""
    multiplier = 0
    while abs(round(watts / 10**multiplier)) > 32767:
        multiplier += 1
    return wire.Power(round(watts / 10**multiplier), multiplier)


def _modes(ratings: FleetRatings) -> tuple[int, int]:
    """What the gateway can carry out for these stations: charge and the import/load limits always; discharge,
    setpoints and the export/generation limits only when some station can discharge."""
    modes, doe = MODE_CHARGE, DOE_IMP_LIM_W | DOE_LOAD_LIM_W
    if ratings.max_discharge_w > 0:
        modes |= MODE_DISCHARGE | MODE_FIXED_W | MODE_MAX_LIM_W | MODE_TARGET_W
        doe |= DOE_EXP_LIM_W | DOE_GEN_LIM_W
    return modes, doe


def capability(ratings: FleetRatings) -> wire.DERCapability:
    modes, doe = _modes(ratings)
    return wire.DERCapability(
        modes_supported=modes,
        rtg_max_w=power(ratings.max_w),
        der_type=DER_TYPE_EVSE,
        doe_modes_supported=doe,
        rtg_max_charge_rate_w=power(ratings.max_charge_w) if ratings.max_charge_w else None,
        rtg_max_discharge_rate_w=power(ratings.max_discharge_w) if ratings.max_discharge_w else None,
        rtg_max_var=power(ratings.max_var) if ratings.max_var else None,
    )


def settings(ratings: FleetRatings, *, updated: int, set_grad_w: int | None) -> wire.DERSettings:
    """The gateway sets nothing below the ratings, so the settings are the ratings; setGradW is the one the server
    gave in its DefaultDERControl (0, no limit, when none)."""
    modes, doe = _modes(ratings)
    return wire.DERSettings(
        set_grad_w=set_grad_w or 0,
        set_max_w=power(ratings.max_w),
        updated_time=updated,
        modes_enabled=modes,
        set_max_charge_rate_w=power(ratings.max_charge_w) if ratings.max_charge_w else None,
        set_max_discharge_rate_w=power(ratings.max_discharge_w) if ratings.max_discharge_w else None,
        doe_modes_enabled=doe,
    )


def status(state: FleetState, *, at: int) -> wire.DERStatus:
    """genConnectStatus: connected and available when a station is online, operating when power flows, fault when a
    station's alarm is open; operationalModeStatus: operational when a station is online, else off."""
    connect = CONNECTED | AVAILABLE if state.online else 0
    if state.online and state.power_w:
        connect |= OPERATING
    if state.faulted:
        connect |= FAULT
    return wire.DERStatus(
        reading_time=at,
        gen_connect_status=connect,
        operational_mode_status=OP_MODE_OPERATIONAL if state.online else OP_MODE_OFF,
    )


def availability(state: FleetState, *, at: int) -> wire.DERAvailability:
    return wire.DERAvailability(
        reading_time=at,
        stat_w_avail=power(state.available_w),
        stat_var_avail=power(state.available_var) if state.available_var else None,
    )


def mrid(lfdi: str, what: str) -> str:
    """A stable mRID for what the gateway mirrors for one EndDevice (the same across restarts)."""
    return hashlib.sha256(f"{lfdi.lower()}:{what}".encode()).hexdigest()[:32]


#: Site power: instantaneous (12) real power (kind 37) in W (uom 38), forward flow (1, + import), all phases.
SITE_POWER = wire.ReadingType(kind=37, uom=38, power_of_ten_multiplier=0, flow_direction=1, accumulation_behaviour=12)


def site_reading(lfdi: str, watts: float, *, at: int, duration: int = 0) -> wire.MirrorMeterReading:
    return wire.MirrorMeterReading(
        mrid=mrid(lfdi, "site-power"),
        reading_type=SITE_POWER,
        description="site active power",
        value=round(watts),
        time_start=at,
        time_duration=duration,
    )


def usage_point(lfdi: str, *, post_rate: int | None) -> wire.MirrorUsagePoint:
    """The site's connection point (isMirror | isPremisesAggregationPoint) with its power reading declared."""
    declared = wire.MirrorMeterReading(
        mrid=mrid(lfdi, "site-power"), reading_type=SITE_POWER, description="site active power"
    )
    return wire.MirrorUsagePoint(
        mrid=mrid(lfdi, "site"),
        device_lfdi=lfdi,
        description="site",
        readings=(declared,),
        post_rate=post_rate,
    )
