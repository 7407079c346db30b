# pragma version ~=0.4.3
"""
@title funding
@notice The continuous funding accumulator. Each market keeps one cumulative
        index (quote per unit of size); a position owes
        size * (index - snapshot). Premium mode: F = clamp(p + interest,
        +-F_max). Dynamic mode: F drifts at clamp(S / skew_scale, -1, 1) *
        max_velocity per day and is clamped to +-F_max; the index accrues the
        exact integral of that rate, linear up to the clamp, then flat (S12).
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
# @dev Dynamic mode keeps rates times this (1e18 * 86400) so that the drift of one second,
#      clamp(ps, +-1e18) * max_velocity / DRIFT_UNIT, is exact.
DRIFT_UNIT: constant(int256) = SWAD * VELOCITY_PERIOD


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
def _current_rate(market_id: uint256, skew: int256) -> (int256, int256):
    """
    @dev Premium mode: (the rate in force now, -1). Dynamic mode: (the drift
         clamp(ps, +-1e18) * max_velocity, max_funding_rate >= 0), which _dynamic
         integrates. The sign of the second word is the mode: a flag as a third word
         would grow the memory frame of every caller, and so the gas of every trade.
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
    # trunc (toward 0, plain //): the proportional skew, an 18-decimal input of both modes
    proportional_skew: int256 = skew * SWAD // convert(skew_scale, int256)
    if dynamic:
        # exact: abs(clamp) <= 1e18 and max_velocity < 2^57, so the product is below 2^117
        return unsafe_mul(fixed_point._clamp(proportional_skew, SWAD), convert(max_velocity, int256)), max_rate
    premium: int256 = fixed_point._clamp(proportional_skew, convert(max_premium, int256))
    return fixed_point._clamp(premium + convert(interest_rate, int256), max_rate), -1


@internal
@pure
def _dynamic(index: int256, old_rate: int256, drift: int256, max_rate: int256, elapsed: int256, index_price: int256) -> (int256, int256):
    """
    @dev Dynamic mode, exactly (S12): the index and the rate after `elapsed` seconds.
         The rate starts at old_rate clamped into +-max_rate (a lowered clamp binds at
         once), moves by drift / DRIFT_UNIT per second and stays at the clamp once it
         reaches it; the index grows by floor(integral of the rate * index_price /
         (FUNDING_PERIOD * 1e18)). Two divisions round, both toward -inf: that one and
         the stored rate. Everything else is exact.
         unsafe_ math is in range: max_rate < 2^56 (a 29-bit field in steps of 1e-10),
         so abs(start) < 2^56 too; abs(drift) < 2^117, DRIFT_UNIT < 2^77, elapsed < 2^64,
         index_price < 2^104 (pricing checks it) and abs(index) < 2^127 (stored as int128).
         Every value below stays under 2^247 (the linear numerator of the clamped case,
         which is then replaced) and every value used under 2^241.
    """
    start: int256 = max(unsafe_sub(0, max_rate), min(max_rate, old_rate))
    # The end rate times DRIFT_UNIT, unclamped (exact).
    end: int256 = unsafe_add(unsafe_mul(start, DRIFT_UNIT), unsafe_mul(drift, elapsed))
    bound: int256 = unsafe_mul(max_rate, DRIFT_UNIT)
    # floor (toward -inf; the dividend is made >= 0) of the clamped end rate: the stored rate,
    # exact at the clamp. Like the increment it can only lower the index, so many
    # checkpoints never accrue more than one late one.
    rate: int256 = unsafe_sub(unsafe_div(unsafe_add(max(unsafe_sub(0, bound), min(bound, end)), bound), DRIFT_UNIT), max_rate)
    # The integral is numerator / denominator, exactly, with denominator > 0:
    # - linear throughout: (start + end / DRIFT_UNIT) / 2 * elapsed
    #   = elapsed * (start * DRIFT_UNIT + end) / (2 * DRIFT_UNIT);
    # - reaching target = rate = +-max_rate (the sign of drift) after
    #   t* = (target - start) * DRIFT_UNIT / drift, then flat:
    #   (start + target) / 2 * t* + target * (elapsed - t*)
    #   = target * elapsed - (target - start)^2 * DRIFT_UNIT / (2 * drift)
    #   = (2 * abs(drift) * target * elapsed - gap * abs(gap) * DRIFT_UNIT) / (2 * abs(drift)),
    #   gap = target - start, which has the sign of drift (or is 0).
    numerator: int256 = unsafe_mul(elapsed, unsafe_add(unsafe_mul(start, DRIFT_UNIT), end))
    denominator: int256 = 2 * DRIFT_UNIT
    if end > bound or end < unsafe_sub(0, bound):
        denominator = unsafe_mul(2, max(drift, unsafe_sub(0, drift)))
        gap: int256 = unsafe_sub(rate, start)
        numerator = unsafe_sub(unsafe_mul(unsafe_mul(denominator, rate), elapsed), unsafe_mul(unsafe_mul(gap, max(gap, unsafe_sub(0, gap))), DRIFT_UNIT))
    # floor(numerator * index_price / (denominator * FUNDING_PERIOD * 1e18)), exactly and
    # without the overflow of numerator * index_price: numerator = whole * denominator + part
    # with whole = floor(numerator / denominator) and 0 <= part < denominator; the inner
    # division (both sides >= 0, so it floors) drops less than 1 from an integer sum, which
    # the outer floor (toward -inf) cannot see.
    whole: int256 = fixed_point._floor_div(numerator, denominator)
    part: int256 = unsafe_sub(numerator, unsafe_mul(whole, denominator))
    return unsafe_add(index, fixed_point._floor_div(unsafe_add(unsafe_mul(whole, index_price), unsafe_div(unsafe_mul(part, index_price), denominator)), FUNDING_PERIOD * SWAD)), rate


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
    max_rate: int256 = 0
    rate, max_rate = self._current_rate(market_id, skew)
    if max_rate >= 0:
        # dynamic mode: rate is the drift
        return self._dynamic(index, old_rate, rate, max_rate, elapsed, convert(index_price, int256))
    # floor (toward -inf)
    return index + fixed_point._floor_div(rate * elapsed * convert(index_price, int256), FUNDING_PERIOD * SWAD), rate


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
