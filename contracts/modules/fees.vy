# pragma version ~=0.4.3
"""
@title fees
@notice Maker/taker fees by a trade's effect on skew: the part of a trade
        that reduces |skew| pays the maker rate, the part that increases it
        pays the taker rate; a trade that flips the skew is split pro rata.
@custom:security Stateless; fees round up (against the payer).
"""

WAD: constant(uint256) = 10**18


@internal
@pure
def _trade_fee(skew: int256, size_delta: int256, fill_notional: uint256, maker_fee: uint256, taker_fee: uint256) -> uint256:
    """
    @dev Fee for a trade of size_delta against skew, on its fill notional.
    """
    size: uint256 = convert(abs(size_delta), uint256)
    maker_size: uint256 = 0
    if (skew > 0 and size_delta < 0) or (skew < 0 and size_delta > 0):
        maker_size = min(size, convert(abs(skew), uint256))
    taker_size: uint256 = size - maker_size
    weighted_rate: uint256 = maker_size * maker_fee + taker_size * taker_fee
    denominator: uint256 = size * WAD
    return (fill_notional * weighted_rate + denominator - 1) // denominator

