"""How the gateway answers OpenADR 2.0b signals that do not name a power: configuration with documented defaults.

SIMPLE levels, LOAD_CONTROL capacity fractions and level offsets, and price tiers all become an import limit that
is a fraction of `reference_import_w` (the import capacity of the targeted stations, from configuration), because
an import limit is the one control every OCPP version can carry (docs/mappings.md). None as a fraction means "no
limit" (normal operation).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway.model import Target

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimplePolicy(Policy):
    """SIMPLE level (and LOAD_DISPATCH level) -> fraction of the reference import. The 2.0b profile reads the levels
    as 0 normal, 1 moderate, 2 high, 3 special (emergency) shed."""

    levels: dict[Annotated[int, Field(ge=0, le=3)], Fraction | None] = Field(
        default_factory=lambda: {0: None, 1: 0.75, 2: 0.5, 3: 0.0}
    )


class LevelOffsetPolicy(Policy):
    """LOAD_CONTROL x-loadControlLevelOffset: discrete levels relative to normal operation (0). Negative offsets
    shed: each maps to a fraction of the reference import; an offset that is not configured takes the next deeper
    configured one (or the deepest), the safe side. Offsets >= 0 (normal or more load) lift the limit: the gateway
    never forces stations to draw more."""

    shed: dict[Annotated[int, Field(le=-1, ge=-100)], Fraction] = Field(
        default_factory=lambda: {-1: 0.75, -2: 0.5, -3: 0.0}, min_length=1
    )


class PriceTier(Policy):
    at_or_above_per_kwh: float = Field(allow_inf_nan=False)
    import_fraction: Fraction


class PricePolicy(Policy):
    """ELECTRICITY_PRICE and ENERGY_PRICE (signal type `price`) are passed through as a `price` control. With tiers,
    a price at or above a tier's threshold also limits import to that tier's fraction (the highest matching tier
    wins). Default: no tiers, so a price alone never curtails."""

    tiers: list[PriceTier] = Field(default_factory=list, max_length=32)
    #: Used when the signal's itemBase names no currency.
    default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class NormalizeConfig(Policy):
    """Everything normalization needs besides the event itself."""

    #: Import capacity (W) that SIMPLE, capacity fractions, level offsets and price tiers scale; without it those
    #: signals are rejected, not guessed.
    reference_import_w: float | None = Field(default=None, ge=0, le=10_000_000, allow_inf_nan=False)
    #: OpenADR target value (resourceID, groupID, groupName, partyID) -> stations or groups.
    targets: dict[str, Target] = Field(default_factory=dict)
    #: For events that only target this VEN (venID) or name no target.
    default_target: Target = Field(default_factory=Target)
    #: Events whose other targets are all unknown: "reject" (audited, opted out) or "default" (default_target).
    unknown_targets: str = Field(default="reject", pattern=r"^(reject|default)$")
    #: For events with priority 0, which 2.0b defines as "no priority" (the lowest).
    default_priority: int = Field(default=10, ge=0, le=1_000_000)
    simple: SimplePolicy = Field(default_factory=SimplePolicy)
    level_offset: LevelOffsetPolicy = Field(default_factory=LevelOffsetPolicy)
    price: PricePolicy = Field(default_factory=PricePolicy)
