# pragma version ~=0.4.3
"""
@title fixed_point
@notice 18-decimal fixed-point arithmetic with an explicit rounding direction.
        Vyper's signed `//` truncates toward zero, which rounds credits up for
        negative values; every signed division here says whether it floors or
        ceils so callers round against the party being paid.
@custom:security Stateless; every function is pure.
"""

# @dev One unit in 18-decimal fixed point.
WAD: constant(uint256) = 10**18
# @dev One unit in 18-decimal fixed point, signed.
SWAD: constant(int256) = 10**18


@internal
@pure
def _floor_div(x: int256, y: int256) -> int256:
    """
    @dev Signed division rounded toward negative infinity; y must be positive.
    """
    q: int256 = x // y
    if x % y != 0 and x < 0:
        q -= 1
    return q


@internal
@pure
def _ceil_div(x: int256, y: int256) -> int256:
    """
    @dev Signed division rounded toward positive infinity; y must be positive.
    """
    q: int256 = x // y
    if x % y != 0 and x > 0:
        q += 1
    return q


@internal
@pure
def _mul_floor(x: int256, y: int256) -> int256:
    """
    @dev x * y / WAD rounded toward negative infinity.
    """
    return self._floor_div(x * y, SWAD)


@internal
@pure
def _mul_ceil(x: int256, y: int256) -> int256:
    """
    @dev x * y / WAD rounded toward positive infinity.
    """
    return self._ceil_div(x * y, SWAD)


@internal
@pure
def _umul_down(x: uint256, y: uint256) -> uint256:
    """
    @dev x * y / WAD rounded down.
    """
    return x * y // WAD


@internal
@pure
def _umul_up(x: uint256, y: uint256) -> uint256:
    """
    @dev x * y / WAD rounded up.
    """
    return (x * y + WAD - 1) // WAD


@internal
@pure
def _clamp(x: int256, bound: int256) -> int256:
    """
    @dev Clamps x into [-bound, +bound] (bound >= 0).
    """
    return max(-bound, min(bound, x))


@internal
@pure
def _sign(x: int256) -> int256:
    """
    @dev -1, 0 or +1.
    """
    if x > 0:
        return 1
    if x < 0:
        return -1
    return 0


# ---------------------------------------------------------------------------
# Signed fields packed into storage words (two's complement, zero stays zero)
# ---------------------------------------------------------------------------

# @dev Stored fractions (market rates, fees, margins and breaker move, the fee share) are
#      kept in steps of 1e-10: multiples of this many wei of an 18-decimal fraction.
FRACTION_STEP: constant(uint256) = 10**8
MASK_64: constant(uint256) = 2**64 - 1
MASK_104: constant(uint256) = 2**104 - 1
MASK_128: constant(uint256) = 2**128 - 1


@internal
@pure
def _int128_bits(x: int256) -> uint256:
    """
    @dev x as 128 bits; reverts outside int128.
    """
    return convert(convert(convert(x, int128), bytes32), uint256) & MASK_128


@internal
@pure
def _int104_bits(x: int256) -> uint256:
    """
    @dev x as 104 bits; reverts outside int104.
    """
    return convert(convert(convert(x, int104), bytes32), uint256) & MASK_104


@internal
@pure
def _int64_bits(x: int256) -> uint256:
    """
    @dev x as 64 bits; reverts outside int64.
    """
    return convert(convert(convert(x, int64), bytes32), uint256) & MASK_64


@internal
@pure
def _signed_field(word: uint256, offset: uint256, bits: uint256) -> int256:
    """
    @dev The signed field of `bits` bits that starts at bit `offset` of word.
    """
    return convert(convert(word << (256 - offset - bits), bytes32), int256) >> (256 - bits)
