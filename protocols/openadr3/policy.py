"""How the gateway answers OpenADR 3 signals that do not name a power: configuration with documented defaults.

SIMPLE levels, price tiers and alerts all become an import limit that is a fraction of `reference_import_w` (the
import capacity of the targeted stations, from configuration), because an import limit is the one control every
OCPP version can carry (docs/mappings.md). None as a fraction means "no limit" (normal operation).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.model import CurveKind, CurveUnit, OperationMode, Target

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimplePolicy(Policy):
    """SIMPLE level -> fraction of the reference import. Defaults follow the definition's example reading:
    0 normal, 1 moderate shed, 2 high shed, 3 emergency shed."""

    levels: dict[Annotated[int, Field(ge=0, le=3)], Fraction | None] = Field(
        default_factory=lambda: {0: None, 1: 0.75, 2: 0.5, 3: 0.0}
    )


class PriceTier(Policy):
    at_or_above_per_kwh: float = Field(allow_inf_nan=False)
    import_fraction: Fraction


class PricePolicy(Policy):
    """PRICE and EXPORT_PRICE are always passed through as a `price` control. With tiers, an import price at or
    above a tier's threshold also limits import to that tier's fraction (the highest matching tier wins).
    Default: no tiers (pass-through only), so a price alone never curtails."""

    tiers: list[PriceTier] = Field(default_factory=list, max_length=32)
    #: Used when the payload descriptor names no currency.
    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


def _default_alerts() -> dict[str, Fraction | None]:
    return {"ALERT_GRID_EMERGENCY": 0.0, "ALERT_BLACK_START": 0.0, "ALERT_FLEX_ALERT": 0.5}


class AlertPolicy(Policy):
    """ALERT_* -> fraction of the reference import, or None: audited only. Default: grid emergency and black start
    stop charging (the definition: "devices should minimize electricity use"), a flex alert halves it, every other
    alert (fire, wind, outage ...) is audited and changes nothing."""

    fractions: dict[str, Fraction | None] = Field(default_factory=_default_alerts)


class CurveSpec(Policy):
    """What a program's CURVE points mean: the definition leaves the curve type and axes to the program.
    Scales convert wire values to the model's units (an OpenADR PERCENT fraction -> percent: scale 100)."""

    kind: CurveKind
    x_unit: CurveUnit
    y_unit: CurveUnit
    x_scale: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    y_scale: float = Field(default=1.0, allow_inf_nan=False)


class NormalizeConfig(Policy):
    """Everything normalization needs besides the event and program."""

    #: Import capacity (W) that SIMPLE, price tiers and alerts scale; without it they are rejected, not guessed.
    reference_import_w: float | None = Field(default=None, ge=0, le=10_000_000, allow_inf_nan=False)
    #: OpenADR target string (3.1 target, or a 3.0.1 target value) -> stations or groups.
    targets: dict[str, Target] = Field(default_factory=dict)
    #: For events with no targets.
    default_target: Target = Field(default_factory=Target)
    #: Events whose targets are all unknown: "reject" (audited, nothing sent) or "default" (default_target).
    unknown_targets: str = Field(default="reject", pattern=r"^(reject|default)$")
    #: Used when the event has no priority.
    default_priority: int = Field(default=10, ge=0, le=1_000_000)
    simple: SimplePolicy = Field(default_factory=SimplePolicy)
    price: PricePolicy = Field(default_factory=PricePolicy)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    #: Program name (or "*" for any) -> meaning of its CURVE payloads. No entry: CURVE payloads are rejected.
    curves: dict[str, CurveSpec] = Field(default_factory=dict)
    #: CONTROL_SETPOINT strings -> operation mode (case-insensitive keys); numbers with power units are setpoints.
    operation_modes: dict[str, OperationMode] = Field(
        default_factory=lambda: {mode.value.upper(): mode for mode in OperationMode}
    )
