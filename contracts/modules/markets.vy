# pragma version ~=0.4.3
"""
@title markets
@notice Per-market parameters and their hard bounds. Every value an admin
        can set is checked here, so no parameter can leave the ranges that
        the margin, funding and pricing maths were designed for.
@custom:security Validation only; callers do access control.
"""

from ..interfaces import IPriceFeed
from . import fixed_point


# @dev Market ids are bit positions in an account's open-market mask.
MAX_MARKETS: constant(uint256) = 64
# @dev Rates and fractions are 18-decimal fixed point.
WAD: constant(uint256) = 10**18

# @dev Hard bounds, inclusive. Sizes and the skew scale fit 128 bits of a packed word.
MAX_UINT128: constant(uint256) = 2**128 - 1
MAX_PRICE_AGE_BOUND: constant(uint256) = 86400
MAX_MARK_WINDOW: constant(uint256) = 3600
MAX_PREMIUM_BOUND: constant(uint256) = WAD // 10
MAX_INTEREST_BOUND: constant(uint256) = WAD // 1000
MAX_FUNDING_RATE_BOUND: constant(uint256) = WAD // 20
MAX_FUNDING_VELOCITY_BOUND: constant(uint256) = WAD // 10
MIN_IMR: constant(uint256) = WAD // 100
MIN_MMR: constant(uint256) = WAD // 200
MAX_FEE_BOUND: constant(uint256) = WAD // 100
MIN_BREAKER_MOVE: constant(uint256) = WAD // 100
MIN_BREAKER_WINDOW: constant(uint256) = 60
MAX_BREAKER_WINDOW: constant(uint256) = 86400


struct MarketParams:
    oracle: address
    max_price_age: uint256
    mark_window: uint256
    skew_scale: uint256
    max_premium: uint256
    interest_rate: uint256
    max_funding_rate: uint256
    dynamic_funding: bool
    max_funding_velocity: uint256
    imr: uint256
    mmr: uint256
    maker_fee: uint256
    taker_fee: uint256
    max_position_size: uint256
    max_open_interest: uint256
    max_oi_vault_ratio: uint256
    breaker_move: uint256
    breaker_window: uint256


event MarketParamsSet:
    market_id: indexed(uint256)
    params: MarketParams


event AtomicTradingSet:
    market_id: indexed(uint256)
    allowed: bool


# @dev Parameters of each market, by id.
params: public(HashMap[uint256, MarketParams])
# @dev Number of markets listed; ids run from 0 to market_count - 1.
market_count: public(uint256)
# @dev The parameters again, packed in four words by the group that reads them together
#      (see _pack), so a trade reads four cold slots instead of eighteen.
packed_params: HashMap[uint256, uint256[4]]


@internal
def _add(p: MarketParams) -> uint256:
    """
    @dev Lists a new market after validating its parameters.
    """
    market_id: uint256 = self.market_count
    assert market_id < MAX_MARKETS, "markets: too many markets"
    self.market_count = market_id + 1
    self._set(market_id, p)
    return market_id


@internal
def _set(market_id: uint256, p: MarketParams):
    """
    @dev Replaces a market's parameters after validating them.
    """
    assert market_id < self.market_count, "markets: unknown market"
    self._validate(p)
    decimals: uint256 = convert(staticcall IPriceFeed(p.oracle).decimals(), uint256)
    assert decimals <= 18, "markets: oracle decimals above 18"
    self.params[market_id] = p
    words: uint256[4] = self._pack(p, 18 - decimals)
    words[0] |= self.packed_params[market_id][0] & ATOMIC_BIT
    self.packed_params[market_id] = words
    log MarketParamsSet(market_id=market_id, params=p)


# ---------------------------------------------------------------------------
# Packed reads for the hot paths
# ---------------------------------------------------------------------------

# @dev Rates, fees, margins and the breaker move are stored in units of STEP (1e-10),
#      which fits a funding checkpoint's fields in two words. A stored field has at most
#      34 bits, so scaling it back (unsafe_mul) cannot overflow.
STEP: constant(uint256) = fixed_point.FRACTION_STEP
MASK_5: constant(uint256) = 2**5 - 1
MASK_12: constant(uint256) = 2**12 - 1
MASK_17: constant(uint256) = 2**17 - 1
MASK_24: constant(uint256) = 2**24 - 1
MASK_27: constant(uint256) = 2**27 - 1
MASK_29: constant(uint256) = 2**29 - 1
MASK_30: constant(uint256) = 2**30 - 1
MASK_34: constant(uint256) = 2**34 - 1
# @dev Set in a market's first packed word while atomic trading is allowed there.
ATOMIC_BIT: constant(uint256) = 1 << 255
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1


@internal
@pure
def _pack(p: MarketParams, scale_exponent: uint256) -> uint256[4]:
    """
    @dev Word 0: oracle | max_price_age << 160 (17 bits) | mark_window << 177 (12)
                 | scale exponent << 189 (5) | breaker_window << 194 (17)
                 | breaker_move << 211 (34) (| ATOMIC_BIT, kept by _set).
         Word 1: skew_scale (128) | max_premium << 128 (30) | interest_rate << 158 (24)
                 | max_funding_rate << 182 (29) | max_funding_velocity << 211 (30)
                 | dynamic_funding << 241.
         Word 2: imr (34) | mmr << 34 (34) | maker_fee << 68 (27) | taker_fee << 95 (27)
                 | max_oi_vault_ratio << 122 (67).
         Word 3: max_position_size (128) | max_open_interest << 128.
         Fractions are in STEP units. A funding checkpoint reads words 0-1, a trade
         that reduces risk words 0-2, one that adds risk all four. The bounds and
         steps in _validate keep every field inside its bits.
    """
    return [
        convert(p.oracle, uint256) | p.max_price_age << 160 | p.mark_window << 177 | scale_exponent << 189
        | p.breaker_window << 194 | (p.breaker_move // STEP) << 211,
        p.skew_scale | (p.max_premium // STEP) << 128 | (p.interest_rate // STEP) << 158
        | (p.max_funding_rate // STEP) << 182 | (p.max_funding_velocity // STEP) << 211
        | convert(p.dynamic_funding, uint256) << 241,
        (p.imr // STEP) | (p.mmr // STEP) << 34 | (p.maker_fee // STEP) << 68
        | (p.taker_fee // STEP) << 95 | p.max_oi_vault_ratio << 122,
        p.max_position_size | p.max_open_interest << 128,
    ]


@internal
@view
def _feed(market_id: uint256) -> (address, uint256, uint256, uint256):
    """
    @dev The oracle, max_price_age, mark_window and the answer-to-18-decimals multiplier.
    """
    word: uint256 = self.packed_params[market_id][0]
    return convert(word & MASK_160, address), (word >> 160) & MASK_17, (word >> 177) & MASK_12, 10 ** ((word >> 189) & MASK_5)


@internal
@view
def _skew_params(market_id: uint256) -> (uint256, uint256, bool):
    """
    @dev skew_scale, max_premium and dynamic_funding.
    """
    word: uint256 = self.packed_params[market_id][1]
    return word & MASK_128, unsafe_mul((word >> 128) & MASK_30, STEP), (word >> 241) & 1 != 0


@internal
@view
def _funding_params(market_id: uint256) -> (uint256, uint256, uint256):
    """
    @dev interest_rate, max_funding_rate and max_funding_velocity.
    """
    word: uint256 = self.packed_params[market_id][1]
    return unsafe_mul((word >> 158) & MASK_24, STEP), unsafe_mul((word >> 182) & MASK_29, STEP), unsafe_mul((word >> 211) & MASK_30, STEP)


@internal
@view
def _margin_params(market_id: uint256) -> (uint256, uint256, uint256, uint256):
    """
    @dev imr, mmr, maker_fee and taker_fee.
    """
    word: uint256 = self.packed_params[market_id][2]
    return unsafe_mul(word & MASK_34, STEP), unsafe_mul((word >> 34) & MASK_34, STEP), unsafe_mul((word >> 68) & MASK_27, STEP), unsafe_mul((word >> 95) & MASK_27, STEP)


@internal
@view
def _limits(market_id: uint256) -> (uint256, uint256, uint256):
    """
    @dev max_position_size, max_open_interest and max_oi_vault_ratio.
    """
    word: uint256 = self.packed_params[market_id][3]
    return word & MASK_128, word >> 128, self.packed_params[market_id][2] >> 122


@internal
@view
def _breaker_params(market_id: uint256) -> (uint256, uint256):
    """
    @dev breaker_move and breaker_window.
    """
    word: uint256 = self.packed_params[market_id][0]
    return unsafe_mul((word >> 211) & MASK_34, STEP), (word >> 194) & MASK_17


@internal
def _set_atomic_trading(market_id: uint256, allowed: bool):
    self._check_exists(market_id)
    word: uint256 = self.packed_params[market_id][0]
    if allowed:
        self.packed_params[market_id][0] = word | ATOMIC_BIT
    else:
        self.packed_params[market_id][0] = word & ~ATOMIC_BIT
    log AtomicTradingSet(market_id=market_id, allowed=allowed)


@external
@view
def atomic_trading(market_id: uint256) -> bool:
    """
    @notice True where traders may trade directly at the current oracle price;
            elsewhere only the order book trades, with prices newer than the
            order (off when a market is listed).
    @param market_id Market.
    @return Whether direct trades are allowed.
    """
    return self._atomic_trading(market_id)


@internal
@view
def _atomic_trading(market_id: uint256) -> bool:
    return self.packed_params[market_id][0] & ATOMIC_BIT != 0


@internal
@view
def _check_exists(market_id: uint256):
    """
    @dev A listed market always has an oracle, so its first packed word is
         never zero; this reads the word the trade reads next anyway.
    """
    assert self.packed_params[market_id][0] != 0, "markets: unknown market"


# @dev Names of the bounded numeric parameters, concatenated in _numeric_fields order
#      (Vyper has no arrays of strings); NAME_STARTS and NAME_LENGTHS cut them out.
PARAM_NAMES: constant(String[170]) = "max_price_agemark_windowskew_scalemax_premiuminterest_ratemax_funding_ratemax_funding_velocityimrmmrtaker_feemax_position_sizemax_oi_vault_ratiobreaker_movebreaker_window"
NAME_STARTS: constant(uint256[14]) = [0, 13, 24, 34, 45, 58, 74, 94, 97, 100, 109, 126, 144, 156]
NAME_LENGTHS: constant(uint256[14]) = [13, 11, 10, 11, 13, 16, 20, 3, 3, 9, 17, 18, 12, 14]
# @dev Inclusive lower bounds, in PARAM_NAMES order.
LOWER_BOUNDS: constant(uint256[14]) = [1, 0, 1, 0, 0, 0, 0, MIN_IMR, MIN_MMR, 0, 1, 0, MIN_BREAKER_MOVE, MIN_BREAKER_WINDOW]
# @dev Inclusive upper bounds, in PARAM_NAMES order.
UPPER_BOUNDS: constant(uint256[14]) = [
    MAX_PRICE_AGE_BOUND,
    MAX_MARK_WINDOW,
    MAX_UINT128,
    MAX_PREMIUM_BOUND,
    MAX_INTEREST_BOUND,
    MAX_FUNDING_RATE_BOUND,
    MAX_FUNDING_VELOCITY_BOUND,
    WAD,
    WAD,
    MAX_FEE_BOUND,
    MAX_UINT128,
    100 * WAD,
    WAD,
    MAX_BREAKER_WINDOW,
]


@internal
@pure
def _numeric_fields(p: MarketParams) -> uint256[14]:
    return [
        p.max_price_age,
        p.mark_window,
        p.skew_scale,
        p.max_premium,
        p.interest_rate,
        p.max_funding_rate,
        p.max_funding_velocity,
        p.imr,
        p.mmr,
        p.taker_fee,
        p.max_position_size,
        p.max_oi_vault_ratio,
        p.breaker_move,
        p.breaker_window,
    ]


# @dev Names of the fields kept in STEP units, concatenated in _stepped_fields order.
STEPPED_NAMES: constant(String[96]) = "max_premiuminterest_ratemax_funding_ratemax_funding_velocityimrmmrmaker_feetaker_feebreaker_move"
STEPPED_STARTS: constant(uint256[9]) = [0, 11, 24, 40, 60, 63, 66, 75, 84]
STEPPED_LENGTHS: constant(uint256[9]) = [11, 13, 16, 20, 3, 3, 9, 9, 12]


@internal
@pure
def _stepped_fields(p: MarketParams) -> uint256[9]:
    return [
        p.max_premium,
        p.interest_rate,
        p.max_funding_rate,
        p.max_funding_velocity,
        p.imr,
        p.mmr,
        p.maker_fee,
        p.taker_fee,
        p.breaker_move,
    ]


@internal
@pure
def _validate(p: MarketParams):
    """
    @dev Checks every parameter against its hard bounds and the fractions
         against their step, then the rules that tie parameters together.
         The reason names the offending parameter.
    """
    assert p.oracle != empty(address), "markets: oracle is zero"
    values: uint256[14] = self._numeric_fields(p)
    for i: uint256 in range(14):
        if values[i] < LOWER_BOUNDS[i] or values[i] > UPPER_BOUNDS[i]:
            raw_revert(abi_encode(concat("markets: ", slice(PARAM_NAMES, NAME_STARTS[i], NAME_LENGTHS[i]), " out of bounds"), method_id=method_id("Error(string)")))
    stepped: uint256[9] = self._stepped_fields(p)
    for i: uint256 in range(9):
        if stepped[i] % STEP != 0:
            raw_revert(abi_encode(concat("markets: ", slice(STEPPED_NAMES, STEPPED_STARTS[i], STEPPED_LENGTHS[i]), " not a multiple of 1e-10"), method_id=method_id("Error(string)")))
    assert p.interest_rate <= p.max_funding_rate, "markets: interest_rate above max_funding_rate"
    assert p.mmr < p.imr, "markets: mmr not below imr"
    assert p.maker_fee <= p.taker_fee, "markets: maker_fee above taker_fee"
    assert p.max_open_interest >= p.max_position_size, "markets: max_open_interest below max_position_size"
    assert p.max_open_interest <= MAX_UINT128, "markets: max_open_interest out of bounds"
