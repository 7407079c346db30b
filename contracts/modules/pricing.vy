# pragma version ~=0.4.3
"""
@title pricing
@notice Index price from a Chainlink-compatible feed, mark price as the feed's
        time-weighted average over the market's mark window, premium and fill
        price with skew impact, the price-move circuit breaker, and the
        outlier halt (S4).
@custom:security An index that is zero, negative, from the future or older
                 than the market's max age reverts, so no trade runs on it.
"""

from ..interfaces import IPriceFeed
from ..interfaces import ITwapOracle
from . import fixed_point
from . import markets

uses: markets


WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18


event BreakerTripped:
    market_id: indexed(uint256)
    reference_price: uint256
    index_price: uint256


event BreakerCleared:
    market_id: indexed(uint256)
    index_price: uint256


event MarketResumed:
    market_id: indexed(uint256)
    halted_at_price: uint256
    index_price: uint256
    by_guardian: bool


event HaltConfirmationsSet:
    rounds: uint256


# @dev Price-move breaker by market in one word, so a refresh reads one slot: lowest
#      (bits 0-103) and highest (104-207) index of the current window, the window's
#      opening time (208-247), and bit 255 set when the window opened with a trip.
_breaker: HashMap[uint256, uint256]

# @dev Last index price each market accepted (18 decimals; 0 before its first). S4: an
#      index more than the breaker move away from it halts the market, however long the
#      feed was silent.
_accepted_index: HashMap[uint256, uint256]
# @dev Consecutive feed rounds (the latest included) that confirm an outlier by agreeing
#      with it within the breaker move, so a real move needs no guardian.
halt_confirmations: public(uint256)

# @dev Bounds of halt_confirmations: one round alone never confirms itself.
MIN_HALT_CONFIRMATIONS: constant(uint256) = 2
MAX_HALT_CONFIRMATIONS: constant(uint256) = 16
DEFAULT_HALT_CONFIRMATIONS: constant(uint256) = 3

# @dev Largest index price the breaker stores (about 2e13 quote per unit).
MAX_INDEX_PRICE: constant(uint256) = 2**104 - 1
MASK_40: constant(uint256) = 2**40 - 1
START_SHIFT: constant(uint256) = 208
TRIPPED_BIT: constant(uint256) = 1 << 255


@external
@view
def breaker(market_id: uint256) -> (uint256, uint256, uint256, uint256):
    """
    @notice The price-move breaker's current window.
    @param market_id Market.
    @return Lowest and highest index seen in the window (18 decimals; 0: no
            window yet), when the window opened, and when the breaker tripped
            if the window opened with a trip (else 0).
    """
    word: uint256 = self._breaker[market_id]
    start: uint256 = (word >> START_SHIFT) & MASK_40
    tripped_at: uint256 = 0
    if word & TRIPPED_BIT != 0:
        tripped_at = start
    return word & MAX_INDEX_PRICE, (word >> 104) & MAX_INDEX_PRICE, start, tripped_at


@internal
@view
def _index_price(market_id: uint256) -> uint256:
    """
    @dev The oracle's latest answer in 18 decimals; reverts when unusable.
    """
    oracle: address = empty(address)
    max_price_age: uint256 = 0
    window: uint256 = 0
    scale: uint256 = 0
    oracle, max_price_age, window, scale = markets._feed(market_id)
    answer: int256 = 0
    updated_at: uint256 = 0
    _: uint80 = 0
    __: uint256 = 0
    ___: uint80 = 0
    _, answer, __, updated_at, ___ = staticcall IPriceFeed(oracle).latestRoundData()
    assert answer > 0, "pricing: invalid price"
    assert updated_at <= block.timestamp, "pricing: price from the future"
    assert block.timestamp - updated_at <= max_price_age, "pricing: stale price"
    price: uint256 = convert(answer, uint256) * scale
    assert price <= MAX_INDEX_PRICE, "pricing: price above bound"
    return price


@internal
@view
def _within_move(price: uint256, reference: uint256, move: uint256) -> bool:
    """
    @dev True when price is within breaker_move of reference, the bound the
         breaker applies to its window.
    """
    # prices < 2**104 and WAD + move < 2**61: the products fit
    return unsafe_mul(price, WAD) <= unsafe_mul(reference, WAD + move) and unsafe_mul(price, WAD) >= unsafe_mul(reference, WAD - move)


@internal
@view
def _is_halted(market_id: uint256, index_price: uint256) -> bool:
    """
    @dev S4: the index is an outlier, beyond breaker_move of the last accepted
         index. It stays refused until confirm_price finds it confirmed by the
         feed's rounds or the guardian resumes the market.
    """
    accepted: uint256 = self._accepted_index[market_id]
    if accepted == 0:
        return False
    move: uint256 = 0
    window: uint256 = 0
    move, window = markets._breaker_params(market_id)
    return not self._within_move(index_price, accepted, move)


@internal
@view
def _accepted_index_price(market_id: uint256) -> uint256:
    """
    @dev The index, for views that price what a trade would: reverts while
         the market is halted, as the trade would.
    """
    index: uint256 = self._index_price(market_id)
    assert not self._is_halted(market_id, index), "pricing: market halted"
    return index


@internal
@view
def _confirmed(market_id: uint256, index_price: uint256, move: uint256) -> bool:
    """
    @dev The rounds before the latest, as many as halt_confirmations asks for
         besides it, each within breaker_move of the new index. A round the
         feed cannot return (another aggregator phase, a feed without
         getRoundData) does not confirm: the guardian resumes instead.
    """
    oracle: address = empty(address)
    max_price_age: uint256 = 0
    window: uint256 = 0
    scale: uint256 = 0
    oracle, max_price_age, window, scale = markets._feed(market_id)
    latest: uint80 = 0
    answer: int256 = 0
    _: uint256 = 0
    __: uint256 = 0
    ___: uint80 = 0
    latest, answer, _, __, ___ = staticcall IPriceFeed(oracle).latestRoundData()
    rounds: uint256 = self.halt_confirmations
    if convert(latest, uint256) < rounds:
        return False
    for back: uint256 in range(1, MAX_HALT_CONFIRMATIONS):
        if back >= rounds:
            break
        ok: bool = False
        response: Bytes[160] = b""
        ok, response = raw_call(
            oracle,
            abi_encode(latest - convert(back, uint80), method_id=method_id("getRoundData(uint80)")),
            max_outsize=160,
            is_static_call=True,
            revert_on_failure=False,
        )
        if not ok or len(response) != 160:
            return False
        ____: uint80 = 0
        ____, answer, _, __, ___ = abi_decode(response, (uint80, int256, uint256, uint256, uint80))
        if answer <= 0 or not self._within_move(convert(answer, uint256) * scale, index_price, move):
            return False
    return True


@internal
def _resume(market_id: uint256, index_price: uint256, by_guardian: bool):
    """
    @dev Ends a halt: the current index becomes the accepted one. The breaker
         then trips on it (its window still holds the old prices), so the
         market resumes reduce-only for a window.
    """
    log MarketResumed(market_id=market_id, halted_at_price=self._accepted_index[market_id], index_price=index_price, by_guardian=by_guardian)
    self._accepted_index[market_id] = index_price


@internal
def _set_halt_confirmations(rounds: uint256):
    assert rounds >= MIN_HALT_CONFIRMATIONS and rounds <= MAX_HALT_CONFIRMATIONS, "pricing: halt confirmations out of bounds"
    self.halt_confirmations = rounds
    log HaltConfirmationsSet(rounds=rounds)


@internal
@view
def _mark_price(market_id: uint256, index_price: uint256) -> uint256:
    """
    @dev Time-weighted average of the index over the mark window (0: the index).
    """
    oracle: address = empty(address)
    max_price_age: uint256 = 0
    window: uint256 = 0
    scale: uint256 = 0
    oracle, max_price_age, window, scale = markets._feed(market_id)
    if window == 0:
        return index_price
    twap: uint256 = staticcall ITwapOracle(oracle).twap(window)
    assert twap > 0, "pricing: invalid mark price"
    return twap * scale


@internal
@view
def _premium_integral(market_id: uint256, skew: int256, round_up: bool) -> int256:
    """
    @dev G(x) = integral from 0 to x of p(t) dt, with p(t) = clamp(t / skew_scale,
         +-max_premium) (18 decimals): x^2 / (2 k) below the clamp,
         m |x| - m^2 k / 2 beyond it. Even in x.
    """
    skew_scale: uint256 = 0
    max_premium: uint256 = 0
    dynamic: bool = False
    skew_scale, max_premium, dynamic = markets._skew_params(market_id)
    k: int256 = convert(skew_scale, int256)
    m: int256 = convert(max_premium, int256)
    x: int256 = abs(skew)
    numerator: int256 = 0
    denominator: int256 = 0
    if x * SWAD <= m * k:
        numerator = x * x * SWAD
        denominator = 2 * k
    else:
        numerator = 2 * SWAD * m * x - m * m * k
        denominator = 2 * SWAD
    if round_up:
        return fixed_point._ceil_div(numerator, denominator)
    return fixed_point._floor_div(numerator, denominator)


@internal
@view
def _fill_price(market_id: uint256, index_price: uint256, skew: int256, size_delta: int256) -> uint256:
    """
    @dev I * (1 + average premium over the skew the trade moves through),
         the average being (G(S + delta) - G(S)) / delta. Below the premium
         clamp this is PROTOCOL.md's (p(S) + p(S + delta)) / 2 exactly; at the
         clamp it keeps a trade split in pieces from filling better than one
         trade, so no round trip gains. Rounded against the trader: up for a
         buy, down for a sell.
    """
    index: int256 = convert(index_price, int256)
    if size_delta > 0:
        moved: int256 = self._premium_integral(market_id, skew + size_delta, True) - self._premium_integral(market_id, skew, False)
        return convert(index + fixed_point._ceil_div(index * moved, size_delta * SWAD), uint256)
    moved_down: int256 = self._premium_integral(market_id, skew, False) - self._premium_integral(market_id, skew + size_delta, True)
    return convert(index + fixed_point._floor_div(index * moved_down, -size_delta * SWAD), uint256)


@internal
def _update_breaker(market_id: uint256, index_price: uint256):
    """
    @dev Refuses an outlier (S4: beyond breaker_move of the last accepted
         index, however long the feed was silent) and records the index as
         accepted. Then trips the breaker when the index is more than breaker_move above the
         lowest or below the highest index seen in the current window. The
         comparison runs before an expired window rolls over, so a move across
         the roll is still caught. A trip restarts the window at the new
         price, so one move holds the market reduce-only for one window.
         Windows open only when the market is touched (the funding keeper
         touches it every minute); an idle market's window is older.
    """
    word: uint256 = self._breaker[market_id]
    low: uint256 = word & MAX_INDEX_PRICE
    high: uint256 = (word >> 104) & MAX_INDEX_PRICE
    move: uint256 = 0
    window: uint256 = 0
    move, window = markets._breaker_params(market_id)
    assert not self._is_halted(market_id, index_price), "pricing: market halted"
    self._accepted_index[market_id] = index_price
    if high != 0:
        if index_price * WAD > low * (WAD + move):
            self._trip(market_id, low, index_price)
            return
        if index_price * WAD < high * (WAD - move):
            self._trip(market_id, high, index_price)
            return
    if high == 0 or block.timestamp - ((word >> START_SHIFT) & MASK_40) >= window:
        self._open_window(market_id, index_price, False)
    elif index_price < low:
        self._breaker[market_id] = word ^ low ^ index_price
    elif index_price > high:
        self._breaker[market_id] = word ^ (high << 104) ^ (index_price << 104)


@internal
def _trip(market_id: uint256, reference_price: uint256, index_price: uint256):
    self._open_window(market_id, index_price, True)
    log BreakerTripped(market_id=market_id, reference_price=reference_price, index_price=index_price)


@internal
def _open_window(market_id: uint256, index_price: uint256, tripped: bool):
    """
    @dev A window opened by a trip holds the market reduce-only for its whole
         length; it can only roll over once that has passed.
    """
    word: uint256 = index_price | index_price << 104 | block.timestamp << START_SHIFT
    if tripped:
        word |= TRIPPED_BIT
    self._breaker[market_id] = word


@internal
@view
def _is_reduce_only(market_id: uint256) -> bool:
    """
    @dev True while a breaker trip is younger than the breaker window.
    """
    word: uint256 = self._breaker[market_id]
    if word & TRIPPED_BIT == 0:
        return False
    move: uint256 = 0
    window: uint256 = 0
    move, window = markets._breaker_params(market_id)
    return block.timestamp < ((word >> START_SHIFT) & MASK_40) + window


@internal
def _clear_breaker(market_id: uint256, index_price: uint256):
    """
    @dev Guardian override: lifts reduce-only and opens a new window.
    """
    self._open_window(market_id, index_price, False)
    log BreakerCleared(market_id=market_id, index_price=index_price)
