"""Number, unit and time encodings OCPP expects: W <-> A, decimal places, RFC 3339 datetimes, stack levels."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from gateway.model import RateUnit, StationCapabilities
from mappings.decisions import DECIMALS_2X, STACK_LEVEL_CEILING


def toward_zero(value: float, places: int = DECIMALS_2X) -> float:
    """Round a power to `places` decimals toward zero: a limit, setpoint or discharge limit never grows by rounding."""
    return _quantize(value, places, ROUND_DOWN)


def nearest(value: float, places: int = DECIMALS_2X) -> float:
    """Round a non-power quantity (Hz, %V, s, per-unit) to `places` decimals, half to even."""
    return _quantize(value, places, ROUND_HALF_EVEN)


def _quantize(value: float, places: int, rounding: str) -> float:
    # Decimal(repr()) keeps what the float says, so 0.3 stays 0.3 and the result passes multipleOf checks.
    result = float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=rounding))
    return result + 0.0  # -0.0 -> 0.0


def rate(watts: float, unit: RateUnit, caps: StationCapabilities) -> float:
    """A power in the schedule's chargingRateUnit, unrounded: W as is, A per phase (K01.FR.50/51: I = P / (V * n))."""
    if unit is RateUnit.W:
        return watts
    return watts / (caps.nominal_voltage_v * caps.phases)


def rate_unit(caps: StationCapabilities) -> RateUnit:
    """W when the station accepts it (exact, all phases), else A; a unit it does not list is Rejected (K01.FR.26)."""
    return RateUnit.W if RateUnit.W in caps.rate_units else RateUnit.A


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with at most millisecond precision, e.g. 2026-01-02T03:04:05.123Z (truncated, not rounded)."""
    utc = moment.astimezone(UTC)
    base = utc.strftime("%Y-%m-%dT%H:%M:%S")
    millis = utc.microsecond // 1000
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def whole_seconds(seconds: float) -> int:
    """A schedule duration in integer seconds, rounded up so the schedule never ends before the directive does."""
    return math.ceil(seconds)


def stack_level(priority: int, is_default: bool, station_max: int | None = None) -> int:
    """OCPP stackLevel (higher wins) from a canonical priority (lower wins); defaults at 0 below every schedule.

    The ceiling is the station's own maximum (SmartChargingCtrlr.ProfileStackLevel, 1.6 ChargeProfileMaxStackLevel)
    when lower than ours: a level above it is Rejected (K01)."""
    ceiling = STACK_LEVEL_CEILING if station_max is None else min(STACK_LEVEL_CEILING, station_max)
    if is_default or ceiling < 1:
        return 0
    return max(1, min(ceiling, ceiling - priority))
