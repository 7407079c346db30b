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
        fund, then the LP vault. When the insurance fund is empty and
        traders' net unrealized profit outgrows a share of the vault's
        assets, anyone may close profitable positions at the mark price.
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
from . import positions
from . import accounts
from . import treasury
from . import margin
from . import accrual

uses: markets
uses: pricing
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
MIN_ADL_RATIO: constant(uint256) = WAD // 10
MAX_ADL_RATIO: constant(uint256) = 10 * WAD


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
    # deleveraging opens when traders' net unrealized profit exceeds this share of vault assets
    adl_ratio: uint256


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
    caller: address


event LiquidationParamsSet:
    params: LiquidationParams


# @dev Fee, reward bounds, partial-liquidation and deleveraging settings.
liquidation_params: public(LiquidationParams)


@deploy
def __init__():
    self._set_params(LiquidationParams(
        fee=5 * WAD // 1000,
        min_reward=5 * WAD,
        max_reward=1000 * WAD,
        buffer=WAD // 4,
        partial_notional=100_000 * WAD,
        adl_ratio=WAD // 2,
    ))


@internal
def _set_params(p: LiquidationParams):
    assert p.fee <= MAX_LIQUIDATION_FEE, "liquidation: fee out of bounds"
    assert p.min_reward <= p.max_reward, "liquidation: min_reward above max_reward"
    assert p.max_reward <= MAX_REWARD_BOUND, "liquidation: max_reward out of bounds"
    assert p.buffer <= MAX_BUFFER, "liquidation: buffer out of bounds"
    assert p.adl_ratio >= MIN_ADL_RATIO and p.adl_ratio <= MAX_ADL_RATIO, "liquidation: adl_ratio out of bounds"
    self.liquidation_params = p
    log LiquidationParamsSet(params=p)


# ---------------------------------------------------------------------------
# Liquidation
# ---------------------------------------------------------------------------


@internal
def _liquidate(owner: address, subaccount: uint256) -> (bool, uint256):
    """
    @dev Settles funding, then liquidates the account if it is below
         maintenance margin. Returns whether it did and the liquidator's
         reward; the caller credits the reward.
    """
    accrual._settle_account(owner, subaccount)
    health: margin.AccountHealth = margin._health(owner, subaccount)
    if health.notional == 0 or health.equity >= convert(health.maintenance_margin, int256):
        return False, 0
    p: LiquidationParams = self.liquidation_params
    fraction: uint256 = self._close_fraction(health, p)
    closed_notional: uint256 = self._close_positions(owner, subaccount, fraction)

    fee: uint256 = fixed_point._umul_up(closed_notional, p.fee)
    reward: uint256 = min(max(fee, p.min_reward), p.max_reward)
    insurance_fee: uint256 = fee - min(fee, reward)
    collateral: int256 = accounts._collateral(owner, subaccount)
    if fraction < WAD:
        # the equity left after a partial close covers the whole charge (see _close_fraction)
        accounts._set_collateral(owner, subaccount, collateral - convert(reward + insurance_fee, int256))
    else:
        available: uint256 = convert(max(collateral, 0), uint256)
        reward = min(reward, available)
        insurance_fee = min(insurance_fee, available - reward)
        left: int256 = collateral - convert(reward + insurance_fee, int256)
        if left < 0:
            shortfall: uint256 = convert(-left, uint256)
            accounts._set_collateral(owner, subaccount, 0)
            log BadDebt(owner=owner, subaccount=subaccount, shortfall=shortfall)
            treasury._cover_shortfall(owner, subaccount, shortfall)
        else:
            accounts._set_collateral(owner, subaccount, left)
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
def _close_positions(owner: address, subaccount: uint256, fraction: uint256) -> uint256:
    """
    @dev Closes the given share of every position at the mark price (sizes
         rounded up, toward closing more); returns the closed notional.
    """
    closed_notional: uint256 = 0
    mask: uint256 = accounts._open_markets(owner, subaccount)
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
            mark: uint256 = pricing._mark_price(market_id, pricing._index_price(market_id))
            closed_notional += fixed_point._umul_up(closed, mark)
            new: positions.Position = empty(positions.Position)
            realized: int256 = 0
            new, realized = self._close_at(owner, subaccount, market_id, old, size_delta, mark)
            log PositionLiquidated(
                owner=owner,
                subaccount=subaccount,
                market_id=market_id,
                size_delta=size_delta,
                new_size=new.size,
                price=mark,
                realized_pnl=realized,
            )
        mask >>= 1
    return closed_notional


@internal
def _close_at(owner: address, subaccount: uint256, market_id: uint256, old: positions.Position, size_delta: int256, price: uint256) -> (positions.Position, int256):
    """
    @dev Reduces a position by size_delta at price without fee; the vault, as
         counterparty, pays or receives the realized PnL.
    """
    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    new, realized = positions._apply_fill(old, size_delta, price)
    accounts._add_collateral(owner, subaccount, realized)
    treasury._move(-realized, 0)
    positions._store(owner, subaccount, market_id, old, new)
    return new, realized


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
        if skew == 0 and positions.cost_sum[market_id] == 0:
            continue
        mark: uint256 = pricing._mark_price(market_id, pricing._index_price(market_id))
        total += fixed_point._mul_floor(skew, convert(mark, int256)) - positions.cost_sum[market_id]
    return total


@internal
@view
def _adl_eligible() -> bool:
    """
    @dev The insurance fund is empty and traders' net profit exceeds
         adl_ratio of the vault's settled assets. Insurance that still owes
         the vault its bad debt counts as the vault's (deleverage repays it
         first), so fee dust cannot hold deleveraging off.
    """
    repayable: int256 = min(convert(treasury.vault_bad_debt, int256), max(treasury._insurance_balance(), 0))
    if treasury._insurance_balance() - repayable > 0:
        return False
    vault_assets: int256 = max(treasury._vault_balance() + repayable, 0)
    return self._traders_net_pnl() > fixed_point._mul_floor(vault_assets, convert(self.liquidation_params.adl_ratio, int256))


@internal
def _deleverage(owner: address, subaccount: uint256, market_id: uint256, size: uint256):
    """
    @dev Closes size of a profitable position at the mark price, without fee.
    """
    markets._check_exists(market_id)
    accrual._refresh(market_id)
    assert self._adl_eligible(), "liquidation: deleveraging not allowed"
    treasury._repay_vault_bad_debt()
    accrual._settle_funding(owner, subaccount, market_id)
    old: positions.Position = positions._load(owner, subaccount, market_id)
    assert size > 0 and size <= convert(abs(old.size), uint256), "liquidation: size out of range"
    mark: uint256 = pricing._mark_price(market_id, pricing._index_price(market_id))
    assert fixed_point._mul_floor(old.size, convert(mark, int256)) > old.cost, "liquidation: position not in profit"
    size_delta: int256 = -fixed_point._sign(old.size) * convert(size, int256)
    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    new, realized = self._close_at(owner, subaccount, market_id, old, size_delta, mark)
    log Deleveraged(
        owner=owner,
        subaccount=subaccount,
        market_id=market_id,
        size_delta=size_delta,
        new_size=new.size,
        price=mark,
        realized_pnl=realized,
        caller=msg.sender,
    )
