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
