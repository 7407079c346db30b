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
MIN_ADL_RATIO: constant(uint256) = WAD // 10
MAX_ADL_RATIO: constant(uint256) = 10 * WAD
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
#      0-63), buffer (64-127) and partial_notional (128-255); min_reward (0-79),
#      max_reward (80-159) and adl_ratio (160-223). _set_params' bounds keep each in its bits.
_params: uint256[2]


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
    assert p.partial_notional <= MAX_PARTIAL_NOTIONAL, "liquidation: partial_notional out of bounds"
    self._params = [
        p.fee | p.buffer << 64 | p.partial_notional << 128,
        p.min_reward | p.max_reward << 80 | p.adl_ratio << 160,
    ]
    log LiquidationParamsSet(params=p)


@external
@view
def liquidation_params() -> LiquidationParams:
    """
    @notice The fee, reward bounds, partial-liquidation and deleveraging settings.
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
        adl_ratio=words[1] >> 160,
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
    health, marks = margin._valuation(owner, subaccount, indexes, False)
    if health.notional == 0 or health.equity >= convert(health.maintenance_margin, int256):
        return False, 0
    p: LiquidationParams = self._load_params()
    fraction: uint256 = self._close_fraction(health, p)
    closed_notional: uint256 = self._close_positions(owner, subaccount, fraction, marks)

    fee: uint256 = fixed_point._umul_up(closed_notional, p.fee)
    reward: uint256 = min(max(fee, p.min_reward), p.max_reward)
    insurance_fee: uint256 = fee - min(fee, reward)
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
def _close_positions(owner: address, subaccount: uint256, fraction: uint256, marks: uint256[positions.MAX_OPEN_MARKETS]) -> uint256:
    """
    @dev Closes the given share of every position at its market's mark price
         (in open-market mask order, as the health check valued it; sizes
         rounded up, toward closing more); returns the closed notional.
    """
    closed_notional: uint256 = 0
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
            mark: uint256 = marks[held]
            held += 1
            closed_notional += fixed_point._umul_up(closed, mark)
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
    return closed_notional


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
    accounts._add_collateral(owner, subaccount, realized - funding_paid)
    treasury._move(funding_paid - realized, 0)
    positions._store(owner, subaccount, market_id, old, new)
    return new, realized, funding_paid


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
    return self._traders_net_pnl() > fixed_point._mul_floor(vault_assets, convert(self._params[1] >> 160, int256))


@internal
def _deleverage(owner: address, subaccount: uint256, market_id: uint256, size: uint256):
    """
    @dev Closes size of a profitable position at the mark price, without fee.
    """
    markets._check_exists(market_id)
    index: uint256 = accrual._refresh(market_id)
    assert self._adl_eligible(), "liquidation: deleveraging not allowed"
    treasury._repay_vault_bad_debt()
    old: positions.Position = positions._load(owner, subaccount, market_id)
    assert size > 0 and size <= convert(abs(old.size), uint256), "liquidation: size out of range"
    mark: uint256 = pricing._mark_price(market_id, index)
    assert fixed_point._mul_floor(old.size, convert(mark, int256)) > old.cost, "liquidation: position not in profit"
    size_delta: int256 = -fixed_point._sign(old.size) * convert(size, int256)
    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    funding_paid: int256 = 0
    new, realized, funding_paid = self._close_at(owner, subaccount, market_id, old, size_delta, mark)
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
