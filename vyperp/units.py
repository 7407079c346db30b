"""Conversions between human units and the contracts' fixed point (18 decimals, or a token's)."""

from decimal import ROUND_DOWN, Context, Decimal

WAD = 10**18
# Wide enough that no uint256 or int256 rounds when scaled (Decimal's default keeps 28 digits).
EXACT = Context(prec=100)


def to_wad(value) -> int:
    """A human number (int, str, Decimal or float) as an exact 18-decimal integer."""
    scaled = Decimal(str(value)).scaleb(18, EXACT)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than 18 decimals")
    return int(scaled)


def from_wad(value: int) -> Decimal:
    """An 18-decimal integer as an exact Decimal, however many digits it has."""
    return from_units(value, 18)


def from_units(value: int, decimals: int) -> Decimal:
    """An integer amount with `decimals` decimals as an exact Decimal."""
    return Decimal(value).scaleb(-decimals, EXACT)


def to_token_units(value, decimals: int) -> int:
    """A human amount of a token as its integer units, rounded down."""
    return int(Decimal(str(value)).scaleb(decimals, EXACT).to_integral_value(rounding=ROUND_DOWN))
