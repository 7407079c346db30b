"""Conversions between human units and the contracts' 18-decimal fixed point."""

from decimal import Decimal, ROUND_DOWN

WAD = 10**18


def to_wad(value) -> int:
    """A human number (int, str, Decimal or float) as an exact 18-decimal integer."""
    scaled = Decimal(str(value)) * WAD
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than 18 decimals")
    return int(scaled)


def from_wad(value: int) -> Decimal:
    """An 18-decimal integer as a Decimal."""
    return Decimal(value) / WAD


def to_token_units(value, decimals: int) -> int:
    """A human amount of a token as its integer units, rounded down."""
    return int((Decimal(str(value)) * 10**decimals).to_integral_value(rounding=ROUND_DOWN))
