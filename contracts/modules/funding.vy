# pragma version ~=0.4.3
"""
@title funding
@notice The continuous funding accumulator. Each market keeps one cumulative
        index (quote per unit of size); a position owes
        size * (index - snapshot). Premium mode: F = clamp(p + interest,
        +-F_max). Dynamic mode: F drifts at clamp(S / skew_scale, -1, 1) *
        max_velocity per day and accrues at the average of old and new rate.
@custom:security Accrual must run before any change to skew, a size or
                 collateral in the market; what a position owes rounds up
                 (against the payer, and against the receiver when negative).
"""

from . import fixed_point
from . import markets

uses: markets

# @dev Funding rates are quoted per 8 hours.
FUNDING_PERIOD: constant(int256) = 8 * 3600
# @dev Dynamic-mode velocity is quoted per day.
VELOCITY_PERIOD: constant(int256) = 86400
SWAD: constant(int256) = 10**18


event FundingCheckpoint:
    market_id: indexed(uint256)
    funding_index: int256
    funding_rate: int256
    index_price: uint256
    skew: int256


# @dev Funding state by market in one word, so an accrual reads and writes one slot:
#      index (int128, bits 0-127) | rate (int64, 128-191) | last accrual time (192-255).
#      index: cumulative funding, quote per unit size (18 decimals); rate: per 8 hours
#      in force at the last accrual (18 decimals).
_state: HashMap[uint256, uint256]


@external
@view
def funding_index(market_id: uint256) -> int256:
    """
    @notice Cumulative funding index at the last accrual (quote per unit size, 18 decimals).
    @param market_id Market.
    @return The index.
    """
    return self._load(market_id)[0]


@external
@view
def funding_rate(market_id: uint256) -> int256:
    """
    @notice Funding rate per 8 hours in force at the last accrual (18 decimals).
    @param market_id Market.
    @return The rate.
    """
    return self._load(market_id)[1]


@external
@view
def last_funding_time(market_id: uint256) -> uint256:
    """
    @notice Timestamp of the market's last accrual.
    @param market_id Market.
    @return The timestamp (0: not listed).
    """
    return self._state[market_id] >> 192


@internal
@view
def _load(market_id: uint256) -> (int256, int256, uint256):
    """
    @dev The market's funding index, rate and last accrual time.
    """
    word: uint256 = self._state[market_id]
    return fixed_point._signed_field(word, 0, 128), fixed_point._signed_field(word, 128, 64), word >> 192


@internal
@view
def _index(market_id: uint256) -> int256:
    return fixed_point._signed_field(self._state[market_id], 0, 128)


@internal
def _save(market_id: uint256, index: int256, rate: int256):
    """
    @dev Stores the state accrued at this block; reverts outside int128
         (index) and int64 (rate), far beyond their bounds.
    """
    self._state[market_id] = fixed_point._int128_bits(index) | fixed_point._int64_bits(rate) << 128 | block.timestamp << 192


@internal
def _start(market_id: uint256):
    """
    @dev Starts a new market's clock.
    """
    self._save(market_id, 0, 0)


@internal
@view
def _current_rate(market_id: uint256, old_rate: int256, skew: int256, elapsed: int256) -> (int256, int256):
    """
    @dev The rate in force now, and the average rate over the elapsed time.
    """
    skew_scale: uint256 = 0
    max_premium: uint256 = 0
    dynamic: bool = False
    skew_scale, max_premium, dynamic = markets._skew_params(market_id)
    interest_rate: uint256 = 0
    max_funding_rate: uint256 = 0
    max_velocity: uint256 = 0
    interest_rate, max_funding_rate, max_velocity = markets._funding_params(market_id)
    max_rate: int256 = convert(max_funding_rate, int256)
    proportional_skew: int256 = skew * SWAD // convert(skew_scale, int256)
    if dynamic:
        velocity: int256 = convert(max_velocity, int256)
        drift: int256 = fixed_point._clamp(proportional_skew, SWAD) * velocity // SWAD * elapsed // VELOCITY_PERIOD
        new_rate: int256 = fixed_point._clamp(old_rate + drift, max_rate)
        return new_rate, (old_rate + new_rate) // 2
    premium: int256 = fixed_point._clamp(proportional_skew, convert(max_premium, int256))
    rate: int256 = fixed_point._clamp(premium + convert(interest_rate, int256), max_rate)
    return rate, rate


@internal
@view
def _pending(market_id: uint256, index_price: uint256, skew: int256) -> (int256, int256):
    """
    @dev The funding index and rate as if accrued now.
    """
    index: int256 = 0
    old_rate: int256 = 0
    last_time: uint256 = 0
    index, old_rate, last_time = self._load(market_id)
    elapsed: int256 = convert(block.timestamp - last_time, int256)
    if elapsed == 0:
        return index, old_rate
    rate: int256 = 0
    average_rate: int256 = 0
    rate, average_rate = self._current_rate(market_id, old_rate, skew, elapsed)
    increment: int256 = fixed_point._floor_div(average_rate * elapsed * convert(index_price, int256), FUNDING_PERIOD * SWAD)
    return index + increment, rate


@internal
def _accrue(market_id: uint256, index_price: uint256, skew: int256) -> int256:
    """
    @dev Brings the market's index up to now; returns it.
    """
    if self._state[market_id] >> 192 == block.timestamp:
        return self._index(market_id)
    index: int256 = 0
    rate: int256 = 0
    index, rate = self._pending(market_id, index_price, skew)
    self._save(market_id, index, rate)
    log FundingCheckpoint(market_id=market_id, funding_index=index, funding_rate=rate, index_price=index_price, skew=skew)
    return index


@internal
@pure
def _owed(size: int256, snapshot: int256, index: int256) -> int256:
    """
    @dev Funding a position owes since its snapshot (negative: it receives),
         rounded up so both payer and receiver are rounded against.
    """
    return fixed_point._ceil_div(size * (index - snapshot), SWAD)
