# pragma version ~=0.4.3
"""
@title margin
@notice Cross-margin valuation of an account over all its open markets:
        equity E = collateral + sum of unrealized PnL - funding owed, initial
        and maintenance margin on mark notional, and the liquidation and
        bankruptcy price of one position with the others held fixed.
@custom:security Every figure rounds against the account: PnL down, funding
                 owed and margin requirements up.
"""

from . import fixed_point
from . import markets
from . import pricing
from . import funding
from . import positions
from . import accounts

uses: markets
uses: pricing
uses: funding
uses: positions
uses: accounts


struct AccountHealth:
    collateral: int256
    unrealized_pnl: int256
    funding_owed: int256
    equity: int256
    initial_margin: uint256
    maintenance_margin: uint256
    notional: uint256


struct PositionValue:
    unrealized_pnl: int256
    funding_owed: int256
    notional: uint256
    mark_price: uint256


@internal
@view
def _position_value(market_id: uint256, position: positions.Position) -> PositionValue:
    """
    @dev A position valued at the market's mark price and pending funding index.
    """
    index_price: uint256 = pricing._index_price(market_id)
    return self._value_at(market_id, position, index_price, pricing._mark_price(market_id, index_price))


@internal
@view
def _value_at(market_id: uint256, position: positions.Position, index_price: uint256, mark: uint256) -> PositionValue:
    funding_index: int256 = 0
    _: int256 = 0
    funding_index, _ = funding._pending(market_id, index_price, positions._skew(market_id))
    return PositionValue(
        unrealized_pnl=fixed_point._mul_floor(position.size, convert(mark, int256)) - position.cost,
        funding_owed=funding._owed(position.size, position.funding_snapshot, funding_index),
        notional=fixed_point._umul_up(convert(abs(position.size), uint256), mark),
        mark_price=mark,
    )


@internal
@view
def _health(owner: address, subaccount: uint256, conservative: bool) -> AccountHealth:
    """
    @dev The account valued over every market it holds, with initial margin;
         conservative as in _valuation.
    """
    health: AccountHealth = empty(AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    health, marks = self._valuation(owner, subaccount, empty(uint256[positions.MAX_OPEN_MARKETS]), True, conservative)
    return health


@internal
@view
def _valuation(
    owner: address,
    subaccount: uint256,
    indexes: uint256[positions.MAX_OPEN_MARKETS],
    with_initial_margin: bool,
    conservative: bool,
) -> (AccountHealth, uint256[positions.MAX_OPEN_MARKETS]):
    """
    @dev The account valued over every market it holds, and the price each
         position was valued at, in the order of the open-market mask (lowest
         market id first). indexes holds, in the same order, the index prices
         the caller read in this call (0: not read), so no feed is asked twice.
         Without with_initial_margin, initial_margin is left 0 and the tier
         tables are not read: a maintenance check needs neither.
         Plainly, every position is valued at its market's mark. Conservative
         (S5, S6): PnL at the worse of index and mark for the account (the
         lower for a long, the higher for a short) and notional at the higher,
         so a mark that lags the index never creates margin.
    """
    health: AccountHealth = empty(AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    health.collateral = accounts._collateral(owner, subaccount)
    mask: uint256 = accounts._open_markets(owner, subaccount)
    held: uint256 = 0
    for market_id: uint256 in range(positions.MASK_BITS):
        if mask == 0:
            break
        if mask & 1 == 1:
            index_price: uint256 = indexes[held]
            if index_price == 0:
                index_price = pricing._index_price(market_id)
            mark: uint256 = pricing._mark_price(market_id, index_price)
            position: positions.Position = positions._load(owner, subaccount, market_id)
            price: uint256 = mark
            if conservative and (position.size > 0) == (index_price < mark):
                price = index_price
            marks[held] = price
            value: PositionValue = self._value_at(market_id, position, index_price, price)
            if conservative:
                value.notional = fixed_point._umul_up(convert(abs(position.size), uint256), max(index_price, mark))
            held += 1
            health.unrealized_pnl += value.unrealized_pnl
            health.funding_owed += value.funding_owed
            health.notional += value.notional
            market_imr: uint256 = 0
            mmr: uint256 = 0
            maker_fee: uint256 = 0
            taker_fee: uint256 = 0
            market_imr, mmr, maker_fee, taker_fee = markets._margin_params(market_id)
            if with_initial_margin:
                imr: uint256 = accounts._initial_margin_ratio(owner, market_imr)
                health.initial_margin += fixed_point._umul_up(value.notional, imr)
            health.maintenance_margin += fixed_point._umul_up(value.notional, mmr)
        mask >>= 1
    health.equity = health.collateral + health.unrealized_pnl - health.funding_owed
    return health, marks


@internal
@view
def _withdrawable_equity(health: AccountHealth) -> int256:
    """
    @dev Collateral + min(0, unrealized PnL) - funding owed: unrealized
         profit is never margin for a withdrawal.
    """
    return health.collateral + min(0, health.unrealized_pnl) - health.funding_owed
