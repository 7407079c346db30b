# pragma version ~=0.4.3
"""
@title liquidation
@notice Liquidation of accounts below maintenance margin, the bad-debt
        waterfall and auto-deleveraging. A liquidation closes positions at
        the mark price and charges a fee on the closed notional: the
        liquidator's reward (clamped to [min_reward, max_reward]) first, the
        rest to the insurance fund, both capped at what the account has.
        Large accounts are closed partially, just enough to reach
        maintenance margin times (1 + buffer), when a partial close can.
        A loss beyond the account's collateral is covered by the insurance
        fund, then the LP vault. When traders' net unrealized profit crosses
        max_pnl_factor of the vault's balance (S2), anyone may close
        profitable positions of healthy accounts (S11) at the mark price
        until it is back under adl_target.
@custom:security A liquidation never reverts for lack of funds: charges are
                 capped at the account's collateral and nothing is
                 transferred (the reward is credited as collateral in the
                 engine). Loops are bounded by the open-market cap. The
                 reward never exceeds what the liquidated account pays, so
                 liquidating oneself from a second account never gains.
"""

from . import fixed_point
from . import markets
from . import pricing
from . import funding
from . import positions
from . import accounts
from . import treasury
from . import margin
from . import accrual

uses: markets
uses: pricing
uses: funding
uses: positions
uses: accounts
uses: treasury
uses: margin
uses: accrual

WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
# @dev Hard bounds of the liquidation parameters, inclusive.
MAX_LIQUIDATION_FEE: constant(uint256) = WAD // 20
MAX_REWARD_BOUND: constant(uint256) = 10**6 * WAD
MAX_BUFFER: constant(uint256) = WAD
MAX_PARTIAL_NOTIONAL: constant(uint256) = 2**128 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_80: constant(uint256) = 2**80 - 1


struct LiquidationParams:
    # share of the closed notional charged (18 decimals)
    fee: uint256
    # bounds of the liquidator's reward, in quote (18 decimals)
    min_reward: uint256
    max_reward: uint256
    # a partial liquidation targets maintenance margin * (1 + buffer)
    buffer: uint256
    # accounts with at least this notional (quote, 18 decimals) are closed partially when that suffices
    partial_notional: uint256


event Liquidation:
    owner: indexed(address)
    subaccount: indexed(uint256)
    liquidator: indexed(address)
    closed_notional: uint256
    fee: uint256
    reward: uint256
    insurance_fee: uint256
    full: bool


event PositionLiquidated:
    owner: indexed(address)
    subaccount: indexed(uint256)
    market_id: indexed(uint256)
    size_delta: int256
    new_size: int256
    price: uint256
    realized_pnl: int256
    funding_paid: int256


event BadDebt:
    owner: indexed(address)
    subaccount: indexed(uint256)
    shortfall: uint256


event Deleveraged:
    owner: indexed(address)
    subaccount: indexed(uint256)
    market_id: indexed(uint256)
    size_delta: int256
    new_size: int256
    price: uint256
    realized_pnl: int256
    funding_paid: int256
    caller: address


event LiquidationParamsSet:
    params: LiquidationParams


# @dev The LiquidationParams in two words, so a liquidation reads two slots: fee (bits
#      0-63), buffer (64-127) and partial_notional (128-255); min_reward (0-79) and
#      max_reward (80-159). _set_params' bounds keep each in its bits.
_params: uint256[2]


@deploy
def __init__():
    self._set_params(LiquidationParams(
        fee=5 * WAD // 1000,
        min_reward=5 * WAD,
        max_reward=1000 * WAD,
        buffer=WAD // 4,
        partial_notional=100_000 * WAD,
    ))


@internal
def _set_params(p: LiquidationParams):
    assert p.fee <= MAX_LIQUIDATION_FEE, "liquidation: fee out of bounds"
    assert p.min_reward <= p.max_reward, "liquidation: min_reward above max_reward"
    assert p.max_reward <= MAX_REWARD_BOUND, "liquidation: max_reward out of bounds"
    assert p.buffer <= MAX_BUFFER, "liquidation: buffer out of bounds"
    assert p.partial_notional <= MAX_PARTIAL_NOTIONAL, "liquidation: partial_notional out of bounds"
    self._params = [
        p.fee | p.buffer << 64 | p.partial_notional << 128,
        p.min_reward | p.max_reward << 80,
    ]
    log LiquidationParamsSet(params=p)


@external
@view
def liquidation_params() -> LiquidationParams:
    """
    @notice The fee, reward bounds and partial-liquidation settings.
    @return The parameters.
    """
    return self._load_params()


@internal
@view
def _load_params() -> LiquidationParams:
    words: uint256[2] = self._params
    return LiquidationParams(
        fee=words[0] & MASK_64,
        min_reward=words[1] & MASK_80,
        max_reward=(words[1] >> 80) & MASK_80,
        buffer=(words[0] >> 64) & MASK_64,
        partial_notional=words[0] >> 128,
    )


# ---------------------------------------------------------------------------
# Liquidation
# ---------------------------------------------------------------------------


@internal
def _liquidate(owner: address, subaccount: uint256) -> (bool, uint256):
    """
    @dev Accrues the account's markets, then liquidates the account if it is
         below maintenance margin (the valuation counts pending funding; each
         closed position settles its own). Returns whether it did and the
         liquidator's reward; the caller credits the reward.
    """
    indexes: uint256[positions.MAX_OPEN_MARKETS] = accrual._refresh_account(owner, subaccount)
    health: margin.AccountHealth = empty(margin.AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    health, marks = margin._valuation(owner, subaccount, indexes, False, False)
    if health.notional == 0 or health.equity >= convert(health.maintenance_margin, int256):
        return False, 0
    # S6: positions close at the worse of index and mark for the account, and the partial
    # close is sized at those prices, so being liquidated never beats closing
    health, marks = margin._valuation(owner, subaccount, indexes, False, True)
    p: LiquidationParams = self._load_params()
    fraction: uint256 = self._close_fraction(health, p)
    closed_notional: uint256 = 0
    closing_fee: uint256 = 0
    closed_notional, closing_fee = self._close_positions(owner, subaccount, fraction, marks)

    fee: uint256 = fixed_point._umul_up(closed_notional, p.fee)
    # the account is charged the fee, or the minimum reward when that is more; S6: the
    # insurance fund keeps at least the taker fee closing would have paid, so a trader who
    # liquidates itself from a second account never ends with more than closing gives
    charge: uint256 = max(fee, p.min_reward)
    reward: uint256 = min(min(charge, p.max_reward), charge - min(closing_fee, charge))
    insurance_fee: uint256 = charge - reward
    collateral: int256 = accounts._collateral(owner, subaccount)
    # the equity left after a partial close covers the whole charge (see _close_fraction);
    # after a full close the account pays what its collateral holds
    if fraction == WAD:
        available: uint256 = convert(max(collateral, 0), uint256)
        reward = min(reward, available)
        insurance_fee = min(insurance_fee, available - reward)
    left: int256 = collateral - convert(reward + insurance_fee, int256)
    if fraction == WAD and left < 0:
        shortfall: uint256 = convert(-left, uint256)
        accounts._add_collateral(owner, subaccount, -collateral)
        log BadDebt(owner=owner, subaccount=subaccount, shortfall=shortfall)
        treasury._cover_shortfall(owner, subaccount, shortfall)
    else:
        accounts._add_collateral(owner, subaccount, left - collateral)
    if insurance_fee > 0:
        treasury._move(0, convert(insurance_fee, int256))
    log Liquidation(
        owner=owner,
        subaccount=subaccount,
        liquidator=msg.sender,
        closed_notional=closed_notional,
        fee=fee,
        reward=reward,
        insurance_fee=insurance_fee,
        full=fraction == WAD,
    )
    return True, reward


@internal
@view
def _close_fraction(health: margin.AccountHealth, p: LiquidationParams) -> uint256:
    """
    @dev The share of every position to close (WAD: all). Closing a share f
         at mark keeps equity but for the charge, which is at most
         f * fee_full + min_reward, and scales margin by (1 - f); so
         f = (target - E + min_reward) / (target - fee_full) leaves
         E' >= (1 - f) * target with target = MM * (1 + buffer).
    """
    if health.notional < p.partial_notional:
        return WAD
    target: uint256 = fixed_point._umul_up(health.maintenance_margin, WAD + p.buffer)
    full_fee: uint256 = fixed_point._umul_up(health.notional, p.fee)
    if target <= full_fee:
        return WAD
    shortfall: int256 = convert(target + p.min_reward, int256) - health.equity
    fraction: uint256 = convert(fixed_point._ceil_div(shortfall * SWAD, convert(target - full_fee, int256)), uint256)
    return min(fraction, WAD)


@internal
def _close_positions(owner: address, subaccount: uint256, fraction: uint256, prices: uint256[positions.MAX_OPEN_MARKETS]) -> (uint256, uint256):
    """
    @dev Closes the given share of every position at the price the
         conservative valuation gave it (in open-market mask order; sizes
         rounded up, toward closing more); returns the closed notional and
         the taker fee closing it by trade would have cost.
    """
    closed_notional: uint256 = 0
    closing_fee: uint256 = 0
    mask: uint256 = accounts._open_markets(owner, subaccount)
    held: uint256 = 0
    for market_id: uint256 in range(positions.MASK_BITS):
        if mask == 0:
            break
        if mask & 1 == 1:
            old: positions.Position = positions._load(owner, subaccount, market_id)
            size: uint256 = convert(abs(old.size), uint256)
            closed: uint256 = size
            if fraction < WAD:
                closed = min(fixed_point._umul_up(size, fraction), size)
            size_delta: int256 = -fixed_point._sign(old.size) * convert(closed, int256)
            mark: uint256 = prices[held]
            held += 1
            notional: uint256 = fixed_point._umul_up(closed, mark)
            closed_notional += notional
            closing_fee += fixed_point._umul_up(notional, markets._margin_params(market_id)[3])
            new: positions.Position = empty(positions.Position)
            realized: int256 = 0
            funding_paid: int256 = 0
            new, realized, funding_paid = self._close_at(owner, subaccount, market_id, old, size_delta, mark)
            log PositionLiquidated(
                owner=owner,
                subaccount=subaccount,
                market_id=market_id,
                size_delta=size_delta,
                new_size=new.size,
                price=mark,
                realized_pnl=realized,
                funding_paid=funding_paid,
            )
        mask >>= 1
    return closed_notional, closing_fee


@internal
def _close_at(owner: address, subaccount: uint256, market_id: uint256, old: positions.Position, size_delta: int256, price: uint256) -> (positions.Position, int256, int256):
    """
    @dev Reduces a position by size_delta at price without fee and settles its
         funding in the same write; the vault, as counterparty, pays or
         receives the realized PnL and the funding. Returns the new position,
         the realized PnL and the funding paid.
    """
    funding_index: int256 = funding._index(market_id)
    funding_paid: int256 = funding._owed(old.size, old.funding_snapshot, funding_index)
    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    new, realized = positions._apply_fill(old, size_delta, price)
    new.funding_snapshot = funding_index
    # the same counterparty cap (S2) and vault-balance limit (S1) as a close by the trader
    realized = self._capped_profit(market_id, realized, price)
    realized -= treasury._book_trade(funding_paid - realized, 0)
    accounts._add_collateral(owner, subaccount, realized - funding_paid)
    positions._store(owner, subaccount, market_id, old, new)
    return new, realized, funding_paid


@internal
def _capped_profit(market_id: uint256, realized: int256, price: uint256) -> int256:
    """
    @dev S2, per market and in total: a realized profit is paid times
         min(1, cap / max(P_m, P_total)), where P_m is traders' net PnL in the
         market at the close price and P_total adds every other market's at its
         last accepted index (its latest refresh: reading every oracle on every
         close would cost a feed call per market). Both before the close.
    """
    if realized <= 0:
        return realized
    market_pnl: int256 = fixed_point._mul_floor(positions._skew(market_id), convert(price, int256)) - positions._cost_sum(market_id)
    total: int256 = market_pnl
    for other: uint256 in range(markets.MAX_MARKETS):
        if other >= markets.market_count:
            break
        if other != market_id:
            total += fixed_point._mul_floor(positions._skew(other), convert(pricing._accepted_index[other], int256)) - positions._cost_sum(other)
    return treasury._capped_profit(market_id, realized, max(market_pnl, total))


# ---------------------------------------------------------------------------
# Auto-deleveraging
# ---------------------------------------------------------------------------


@internal
@view
def _traders_net_pnl() -> int256:
    """
    @dev Traders' unrealized PnL over all markets at mark, from the market
         aggregates (sum of sizes is the skew): what the vault owes them.
    """
    total: int256 = 0
    for market_id: uint256 in range(markets.MAX_MARKETS):
        if market_id >= markets.market_count:
            break
        skew: int256 = positions._skew(market_id)
        cost_sum: int256 = positions._cost_sum(market_id)
        if skew == 0 and cost_sum == 0:
            continue
        mark: uint256 = pricing._mark_price(market_id, pricing._index_price(market_id))
        total += fixed_point._mul_floor(skew, convert(mark, int256)) - cost_sum
    return total


@internal
@view
def _adl_threshold() -> uint256:
    """
    @dev The profit-to-vault ratio deleveraging needs (S2): max_pnl_factor to
         open, then adl_target while it runs (hysteresis).
    """
    if treasury._adl_active():
        return treasury._adl_target()
    return treasury._max_pnl_factor()


@internal
@view
def _vault_assets() -> int256:
    """
    @dev The vault's settled balance; insurance that still owes the vault its
         bad debt counts as the vault's (deleverage repays it first).
    """
    repayable: int256 = min(convert(treasury.vault_bad_debt, int256), max(treasury._insurance_balance(), 0))
    return max(treasury._vault_balance() + repayable, 0)


@internal
@view
def _adl_eligible() -> bool:
    """
    @dev Traders' net unrealized profit at mark exceeds the threshold share of
         the vault's assets. The insurance fund's balance does not hold it off.
    """
    return self._traders_net_pnl() > fixed_point._mul_floor(self._vault_assets(), convert(self._adl_threshold(), int256))


@internal
def _deleverage(owner: address, subaccount: uint256, market_id: uint256, size: uint256):
    """
    @dev Closes size of a profitable position of a healthy account (S11) at
         the mark price, without fee, after settling the funding the account
         owes in every market it holds. Opens deleveraging when traders'
         profit crosses max_pnl_factor, and ends it once the close brings the
         ratio to adl_target or below.
    """
    markets._check_exists(market_id)
    traders_pnl: int256 = self._traders_net_pnl()
    assert traders_pnl > fixed_point._mul_floor(self._vault_assets(), convert(self._adl_threshold(), int256)), "liquidation: deleveraging not allowed"
    indexes: uint256[positions.MAX_OPEN_MARKETS] = accrual._settle_account(owner, subaccount)
    treasury._repay_vault_bad_debt()
    old: positions.Position = positions._load(owner, subaccount, market_id)
    assert size > 0 and size <= convert(abs(old.size), uint256), "liquidation: size out of range"
    health: margin.AccountHealth = empty(margin.AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    health, marks = margin._valuation(owner, subaccount, indexes, False, False)
    assert health.equity >= convert(health.maintenance_margin, int256), "liquidation: account not healthy"
    mark: uint256 = marks[positions._count_bits(accounts._open_markets(owner, subaccount) & ((1 << market_id) - 1))]
    closed_pnl: int256 = fixed_point._mul_floor(old.size, convert(mark, int256)) - old.cost
    assert closed_pnl > 0, "liquidation: position not in profit"
    size_delta: int256 = -fixed_point._sign(old.size) * convert(size, int256)
    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    funding_paid: int256 = 0
    new, realized, funding_paid = self._close_at(owner, subaccount, market_id, old, size_delta, mark)
    # traders' profit falls by the closed share of this position's, the vault by what it paid
    closed_pnl = closed_pnl * convert(size, int256) // abs(old.size)
    treasury._set_adl_active(traders_pnl - closed_pnl > fixed_point._mul_floor(self._vault_assets(), convert(treasury._adl_target(), int256)))
    log Deleveraged(
        owner=owner,
        subaccount=subaccount,
        market_id=market_id,
        size_delta=size_delta,
        new_size=new.size,
        price=mark,
        realized_pnl=realized,
        funding_paid=funding_paid,
        caller=msg.sender,
    )
