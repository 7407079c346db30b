# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title EngineLens
@notice Read-only views for integrators and keepers, derived from the
        engine's own valuation (`account_health`, `position_value`): equity,
        free collateral, leverage, liquidation and bankruptcy prices, entry
        price, the fee of a prospective trade, and health for many accounts
        in one call. Kept out of the engine so the engine stays under the
        EIP-170 code-size limit; it holds no state and no funds.
@custom:security Stateless; every figure comes from the engine, rounded
                 against the account as the engine rounds it.
"""

from .interfaces import IEngine
from .modules import fixed_point
from .modules import fees
from .modules import markets
from .modules import margin
from .modules import positions

WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
# @dev Bound on the accounts one batched health call takes.
MAX_BATCH: constant(uint256) = 500


struct AccountRef:
    owner: address
    subaccount: uint256


struct AccountStatus:
    equity: int256
    maintenance_margin: uint256
    notional: uint256
    liquidatable: bool


# @dev The engine this lens reads.
engine: public(immutable(IEngine))


@deploy
def __init__(engine_: IEngine):
    """
    @notice Deploys a lens over an engine.
    @param engine_ The engine.
    """
    engine = engine_


@external
@view
def equity(owner: address, subaccount: uint256 = 0) -> int256:
    """
    @notice Collateral + unrealized PnL - funding owed (18 decimals).
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return Equity.
    """
    return (staticcall engine.account_health(owner, subaccount)).equity


@external
@view
def free_collateral(owner: address, subaccount: uint256 = 0) -> uint256:
    """
    @notice What the account could withdraw now, in token units: collateral
            + min(0, unrealized PnL) - funding owed - initial margin, at most
            the collateral itself, valued as Engine.withdraw checks it (at the
            worse of index and mark, Engine.margin_health).
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return Withdrawable token units.
    """
    health: margin.AccountHealth = staticcall engine.margin_health(owner, subaccount)
    withdrawable: int256 = health.collateral + min(0, health.unrealized_pnl) - health.funding_owed
    # a withdrawal settles funding first, so the collateral it can take is net of what is owed
    free: int256 = min(withdrawable, health.collateral - health.funding_owed) - convert(health.initial_margin, int256)
    if free <= 0:
        return 0
    return convert(free, uint256) // staticcall engine.collateral_scale()


@external
@view
def leverage(owner: address, subaccount: uint256 = 0) -> uint256:
    """
    @notice Notional / equity (18 decimals); max uint256 when equity is not positive.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return Leverage.
    """
    health: margin.AccountHealth = staticcall engine.account_health(owner, subaccount)
    if health.notional == 0:
        return 0
    if health.equity <= 0:
        return max_value(uint256)
    return health.notional * WAD // convert(health.equity, uint256)


@external
@view
def health(owner: address, subaccount: uint256 = 0) -> uint256:
    """
    @notice Equity / maintenance margin (18 decimals): below 1 the account
            is liquidatable; max uint256 without positions, 0 at or below
            zero equity.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return Health ratio.
    """
    account: margin.AccountHealth = staticcall engine.account_health(owner, subaccount)
    if account.maintenance_margin == 0:
        return max_value(uint256)
    if account.equity <= 0:
        return 0
    return convert(account.equity, uint256) * WAD // account.maintenance_margin


@external
@view
def is_liquidatable(owner: address, subaccount: uint256 = 0) -> bool:
    """
    @notice True when the account holds a position and its equity is below
            maintenance margin: what Engine.liquidate accepts.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return Whether the account is liquidatable.
    """
    return self._is_liquidatable(staticcall engine.account_health(owner, subaccount))


@external
@view
def liquidation_price(owner: address, subaccount: uint256, market_id: uint256) -> uint256:
    """
    @notice Mark price of the market at which equity meets maintenance
            margin, the account's other positions held fixed (0: none).
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param market_id Market of the position.
    @return Price, 18 decimals.
    """
    return self._price_at_margin(owner, subaccount, market_id, True)


@external
@view
def bankruptcy_price(owner: address, subaccount: uint256, market_id: uint256) -> uint256:
    """
    @notice Mark price of the market at which equity is zero, the account's
            other positions held fixed (0: none).
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param market_id Market of the position.
    @return Price, 18 decimals.
    """
    return self._price_at_margin(owner, subaccount, market_id, False)


@external
@view
def entry_price(owner: address, subaccount: uint256, market_id: uint256) -> uint256:
    """
    @notice Average entry price (cost basis / size), 0 without a position.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param market_id Market.
    @return Price, 18 decimals.
    """
    position: positions.Position = staticcall engine.open_positions(owner, subaccount, market_id)
    if position.size == 0:
        return 0
    return convert(position.cost * SWAD // position.size, uint256)


@external
@view
def trade_fee(market_id: uint256, size_delta: int256) -> uint256:
    """
    @notice The fee a trade of size_delta would pay now (18 decimals).
    @param market_id Market.
    @param size_delta Signed size.
    @return Fee.
    """
    params: markets.MarketParams = staticcall engine.params(market_id)
    price: uint256 = staticcall engine.fill_price(market_id, size_delta)
    notional: uint256 = fixed_point._umul_up(convert(abs(size_delta), uint256), price)
    return fees._trade_fee(staticcall engine.skew(market_id), size_delta, notional, params.maker_fee, params.taker_fee)


@external
@view
def account_statuses(refs: DynArray[AccountRef, MAX_BATCH]) -> DynArray[AccountStatus, MAX_BATCH]:
    """
    @notice Equity, maintenance margin, notional and liquidatability of many
            accounts in one call, for keepers.
    @param refs The accounts.
    @return One status per account, in order.
    """
    statuses: DynArray[AccountStatus, MAX_BATCH] = []
    for ref: AccountRef in refs:
        health: margin.AccountHealth = staticcall engine.account_health(ref.owner, ref.subaccount)
        statuses.append(AccountStatus(
            equity=health.equity,
            maintenance_margin=health.maintenance_margin,
            notional=health.notional,
            liquidatable=self._is_liquidatable(health),
        ))
    return statuses


@internal
@pure
def _is_liquidatable(health: margin.AccountHealth) -> bool:
    return health.notional > 0 and health.equity < convert(health.maintenance_margin, int256)


@internal
@view
def _price_at_margin(owner: address, subaccount: uint256, market_id: uint256, at_maintenance: bool) -> uint256:
    """
    @dev Solves E0 + size * (P - M) = other_margin + |size| * P * ratio for P,
         with ratio = mmr and other_margin the other positions' maintenance
         margin for the liquidation price, and both zero for bankruptcy.
    """
    position: positions.Position = staticcall engine.open_positions(owner, subaccount, market_id)
    if position.size == 0:
        return 0
    health: margin.AccountHealth = staticcall engine.account_health(owner, subaccount)
    value: margin.PositionValue = staticcall engine.position_value(owner, subaccount, market_id)
    ratio: uint256 = 0
    other_margin: int256 = 0
    if at_maintenance:
        ratio = (staticcall engine.params(market_id)).mmr
        other_margin = convert(health.maintenance_margin - fixed_point._umul_up(value.notional, ratio), int256)
    size: int256 = position.size
    numerator: int256 = other_margin - health.equity + fixed_point._mul_floor(size, convert(value.mark_price, int256))
    denominator: int256 = size - fixed_point._mul_floor(abs(size), convert(ratio, int256))
    price: int256 = numerator * SWAD // denominator
    if price <= 0:
        return 0
    return convert(price, uint256)
