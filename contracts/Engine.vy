# pragma version ~=0.4.3
# pragma nonreentrancy off
# pragma optimize codesize
"""
@title Engine
@notice vyperp's perpetual-futures engine: margin accounts with subaccounts
        and operators, oracle-fed index and TWAP mark prices, a continuous
        funding accumulator, skew-priced fills with maker/taker fees, and the
        LP vault as counterparty to the net skew. Logic lives in the modules
        composed below; this contract orders them and holds the tokens.
@custom:security Every entry point that changes a size, open interest or
                 collateral first accrues funding in the markets it touches.
                 Token transfers come last (checks-effects-interactions),
                 nothing is sent to a trader but the collateral token, and
                 every state-changing entry point holds the reentrancy lock.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from snekmate.auth import access_control
from snekmate.utils import pausable

from .interfaces import IOrderBook

from .modules import fixed_point
from .modules import markets
from .modules import pricing
from .modules import funding
from .modules import positions
from .modules import fees
from .modules import accounts
from .modules import treasury
from .modules import margin
from .modules import accrual
from .modules import liquidation
from .modules import timelock
from .modules import refusals

initializes: access_control
initializes: pausable
initializes: markets
initializes: pricing[markets := markets]
initializes: funding[markets := markets]
initializes: accounts
initializes: positions[accounts := accounts]
initializes: treasury
initializes: margin[
    markets := markets,
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
]
initializes: accrual[
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
    treasury := treasury,
]
initializes: liquidation[
    markets := markets,
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
    treasury := treasury,
    margin := margin,
    accrual := accrual,
]
initializes: timelock

exports: (
    # roles
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    pausable.paused,
    # markets
    markets.market_count,
    markets.atomic_trading,
    # funding
    funding.funding_index,
    funding.funding_rate,
    funding.last_funding_time,
    # positions
    positions.open_positions,
    positions.long_open_interest,
    positions.short_open_interest,
    positions.cost_sum,
    positions.snapshot_sum,
    # accounts
    accounts.collateral,
    accounts.open_markets,
    accounts.is_operator,
    accounts.order_book,
    # treasury
    treasury.vault_balance,
    treasury.insurance_balance,
    treasury.vault,
    treasury.max_vault_utilization,
    treasury.vault_bad_debt,
)

# @dev Role that may pause, unpause and clear price breakers.
GUARDIAN_ROLE: public(constant(bytes32)) = keccak256("GUARDIAN_ROLE")
WAD: constant(uint256) = 10**18
# @dev Bound on the market ids one funding checkpoint call takes.
MAX_CHECKPOINT_MARKETS: constant(uint256) = 64
# @dev The EngineRisk entry points; every other selector goes to EngineAdmin (a test checks
#      that this list is EngineRisk's ABI and that no two contracts share a selector).
RISK_SELECTORS: constant(bytes4[5]) = [
    method_id("liquidate(address)", output_type=bytes4),
    method_id("liquidate(address,uint256)", output_type=bytes4),
    method_id("liquidate_many((address,uint256)[])", output_type=bytes4),
    method_id("deleverage(uint256,address,uint256,uint256)", output_type=bytes4),
    method_id("adl_eligible()", output_type=bytes4),
]
# @dev Bound on the return data of a facet entry point: liquidate_many's 64 flags.
MAX_FACET_RETURN: constant(uint256) = 2112

event Deposit:
    owner: indexed(address)
    subaccount: indexed(uint256)
    caller: address
    amount: uint256


event Withdrawal:
    owner: indexed(address)
    subaccount: indexed(uint256)
    caller: address
    amount: uint256


event PositionModified:
    owner: indexed(address)
    subaccount: indexed(uint256)
    market_id: indexed(uint256)
    size_delta: int256
    new_size: int256
    fill_price: uint256
    fee: uint256
    realized_pnl: int256
    funding_paid: int256


# @dev The collateral token (any ERC-20 stablecoin).
collateral_token: public(immutable(IERC20))
# @dev Multiplier from token units to 18 decimals.
collateral_scale: public(immutable(uint256))
# @dev EngineAdmin, whose code the fallback runs in this engine's storage.
admin_facet: public(immutable(address))
# @dev EngineRisk (liquidation, deleveraging), whose code the fallback runs in this engine's storage.
risk_facet: public(immutable(address))


@deploy
def __init__(collateral_token_: IERC20, admin_facet_: address, risk_facet_: address, admin: address, guardian: address):
    """
    @notice Deploys the engine over a collateral token.
    @param collateral_token_ ERC-20 collateral (at most 18 decimals).
    @param admin_facet_ The EngineAdmin contract (admin and guardian entry points).
    @param risk_facet_ The EngineRisk contract (liquidation and deleveraging).
    @param admin Receives the admin role (parameters, markets, roles).
    @param guardian Receives the guardian role (pause, breaker override).
    """
    decimals: uint256 = convert(staticcall IERC20Detailed(collateral_token_.address).decimals(), uint256)
    assert decimals <= 18, "engine: token decimals above 18"
    collateral_token = collateral_token_
    collateral_scale = 10 ** (18 - decimals)
    assert admin_facet_.is_contract, "engine: admin facet is not a contract"
    admin_facet = admin_facet_
    assert risk_facet_.is_contract, "engine: risk facet is not a contract"
    risk_facet = risk_facet_
    access_control.__init__()
    pausable.__init__()
    treasury.__init__()
    liquidation.__init__()
    pricing.halt_confirmations = pricing.DEFAULT_HALT_CONFIRMATIONS
    timelock.param_delay = timelock.DEFAULT_PARAM_DELAY
    if admin != msg.sender:
        access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin)
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    access_control._grant_role(GUARDIAN_ROLE, guardian)


# ---------------------------------------------------------------------------
# Collateral
# ---------------------------------------------------------------------------


@external
@nonreentrant
def deposit(amount: uint256, subaccount: uint256 = 0, owner: address = msg.sender):
    """
    @notice Deposits collateral into (owner, subaccount); anyone may fund any account.
    @dev Credits the amount the engine actually received.
    @param amount Token units to pull from the caller.
    @param subaccount Subaccount id.
    @param owner Account owner (default: the caller).
    """
    assert amount > 0, "engine: zero amount"
    assert owner != empty(address), "engine: owner is zero"
    before: uint256 = staticcall collateral_token.balanceOf(self)
    assert extcall collateral_token.transferFrom(msg.sender, self, amount, default_return_value=True), "engine: transfer failed"
    received: uint256 = staticcall collateral_token.balanceOf(self) - before
    accounts._add_collateral(owner, subaccount, convert(received * collateral_scale, int256))
    log Deposit(owner=owner, subaccount=subaccount, caller=msg.sender, amount=received)


@external
@nonreentrant
def withdraw(amount: uint256, subaccount: uint256 = 0, owner: address = msg.sender):
    """
    @notice Withdraws collateral to the owner after settling funding in every
            market it holds. Afterwards collateral + min(0, unrealized PnL) -
            funding owed must cover initial margin.
    @param amount Token units to send to the owner.
    @param subaccount Subaccount id.
    @param owner Account owner (default: the caller); operators may withdraw for it.
    """
    assert amount > 0, "engine: zero amount"
    accounts._check_authorized(owner, msg.sender)
    # the margin a pending market order needs stays until it executes or expires
    if accounts.order_book != empty(address):
        assert staticcall IOrderBook(accounts.order_book).pending_market_orders(owner, subaccount) == 0, "engine: market order pending"
    indexes: uint256[positions.MAX_OPEN_MARKETS] = accrual._settle_account(owner, subaccount)
    debit: int256 = convert(amount * collateral_scale, int256)
    assert accounts._collateral(owner, subaccount) >= debit, "engine: insufficient collateral"
    accounts._add_collateral(owner, subaccount, -debit)
    health: margin.AccountHealth = empty(margin.AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    # S5: valued at the worse of index and mark, so a lagging mark never frees collateral
    health, marks = margin._valuation(owner, subaccount, indexes, True, True)
    assert margin._withdrawable_equity(health) >= convert(health.initial_margin, int256), "engine: insufficient margin"
    assert extcall collateral_token.transfer(owner, amount, default_return_value=True), "engine: transfer failed"
    log Withdrawal(owner=owner, subaccount=subaccount, caller=msg.sender, amount=amount)


@external
def set_operator(operator: address, approved: bool):
    """
    @notice Approves or revokes an operator for all of the caller's subaccounts.
            Revoking also cancels the orders the operator committed (S8).
    @param operator Address that may trade and withdraw (to the owner) for the caller.
    @param approved True to approve, False to revoke.
    """
    accounts._set_operator(msg.sender, operator, approved)
    # S8: the order book ends the orders this operator committed, so re-approval revives none;
    # a failing order book never blocks a revocation
    if not approved and accounts.order_book != empty(address):
        reported: bool = raw_call(accounts.order_book, abi_encode(msg.sender, operator, method_id=method_id("operator_revoked(address,address)")), revert_on_failure=False)


# ---------------------------------------------------------------------------
# Trading
# ---------------------------------------------------------------------------


@external
@nonreentrant
def modify_position(
    market_id: uint256,
    size_delta: int256,
    acceptable_price: uint256,
    subaccount: uint256 = 0,
    owner: address = msg.sender,
    fill_index: uint256 = 0,
):
    """
    @notice Opens, increases, reduces, closes or flips a position.
    @param market_id Market to trade.
    @param size_delta Signed size to buy (> 0) or sell (< 0), 18 decimals.
    @param acceptable_price Worst fill price accepted: a ceiling for a buy,
           a floor for a sell (18 decimals).
    @param subaccount Subaccount id.
    @param owner Account owner (default: the caller); operators may trade for it.
    @param fill_index Order book only (ignored from anyone else): the index of the oracle
           round the order fills at (S8), 18 decimals; the skew impact applies to it. Margin,
           caps and funding still use the current index.
    """
    assert size_delta != 0, "engine: zero size"
    self._trade(owner, subaccount, market_id, size_delta, acceptable_price, fill_index)


@external
@nonreentrant
def close_position(market_id: uint256, acceptable_price: uint256, subaccount: uint256 = 0, owner: address = msg.sender):
    """
    @notice Closes the whole position in a market.
    @param market_id Market to close in.
    @param acceptable_price Worst fill price accepted (see modify_position).
    @param subaccount Subaccount id.
    @param owner Account owner (default: the caller).
    """
    markets._check_exists(market_id)
    size: int256 = positions._load(owner, subaccount, market_id).size
    assert size != 0, "engine: no position"
    self._trade(owner, subaccount, market_id, -size, acceptable_price, 0)


@external
@nonreentrant
def checkpoint_funding(market_ids: DynArray[uint256, MAX_CHECKPOINT_MARKETS]):
    """
    @notice Accrues funding in each listed market (permissionless).
    @param market_ids Markets to checkpoint.
    """
    for market_id: uint256 in market_ids:
        markets._check_exists(market_id)
        accrual._refresh(market_id)


# ---------------------------------------------------------------------------
# Facets: EngineRisk (liquidation, deleveraging) and EngineAdmin (the rest), in this engine's storage
# ---------------------------------------------------------------------------


@external
@raw_return
def __default__() -> Bytes[MAX_FACET_RETURN]:
    """
    @notice Runs the entry points of EngineRisk (liquidate, liquidate_many,
            deleverage, adl_eligible) and of EngineAdmin (admin, guardian,
            LP-vault hooks) in this engine's storage; their return data and
            reverts come back unchanged.
    """
    selector: bytes4 = convert(slice(msg.data, 0, 4), bytes4)
    facet: address = admin_facet
    if selector in RISK_SELECTORS:
        facet = risk_facet
    return raw_call(facet, msg.data, max_outsize=MAX_FACET_RETURN, is_delegate_call=True)


# ---------------------------------------------------------------------------
# Views for integrators
# ---------------------------------------------------------------------------


@external
@view
def account_health(owner: address, subaccount: uint256 = 0) -> margin.AccountHealth:
    """
    @notice Collateral, unrealized PnL, funding owed, equity, initial and
            maintenance margin and notional of an account, all 18 decimals,
            at mark prices: the figures liquidation checks.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return The account's health.
    """
    return margin._health(owner, subaccount, False)


@external
@view
def margin_health(owner: address, subaccount: uint256 = 0) -> margin.AccountHealth:
    """
    @notice The account valued as opening, increasing and withdrawing check it
            (S5): each position's PnL at the worse of index and mark for the
            account, notional at the higher of the two, 18 decimals.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return The account's health at conservative prices.
    """
    return margin._health(owner, subaccount, True)


@external
@view
def position_value(owner: address, subaccount: uint256, market_id: uint256) -> margin.PositionValue:
    """
    @notice Unrealized PnL, funding owed, notional and mark price of one position.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param market_id Market.
    @return The position's value.
    """
    return margin._position_value(market_id, positions._load(owner, subaccount, market_id))


@external
@view
def price_feed(market_id: uint256) -> (address, uint256):
    """
    @notice A market's oracle and the multiplier that turns its answers into
            18 decimals (one storage read, unlike params()).
    @param market_id Market.
    @return (oracle, multiplier).
    """
    oracle: address = empty(address)
    max_price_age: uint256 = 0
    window: uint256 = 0
    scale: uint256 = 0
    oracle, max_price_age, window, scale = markets._feed(market_id)
    return oracle, scale


@external
@view
def index_price(market_id: uint256) -> uint256:
    """
    @notice The oracle's index price (18 decimals); reverts if unusable.
    @param market_id Market.
    @return Index price.
    """
    return pricing._index_price(market_id)


@external
@view
def mark_price(market_id: uint256) -> uint256:
    """
    @notice The mark price: TWAP of the index over the mark window; reverts
            while the market is halted (S4), as nothing may be priced then.
    @param market_id Market.
    @return Mark price, 18 decimals.
    """
    return pricing._mark_price(market_id, pricing._accepted_index_price(market_id))


@external
@view
def skew(market_id: uint256) -> int256:
    """
    @notice Long minus short open interest.
    @param market_id Market.
    @return Skew, 18 decimals.
    """
    return positions._skew(market_id)


@external
@view
def fill_price(market_id: uint256, size_delta: int256) -> uint256:
    """
    @notice The price a trade of size_delta would fill at now; reverts while
            the market is halted (S4), as no trade fills then.
    @param market_id Market.
    @param size_delta Signed size.
    @return Fill price, 18 decimals.
    """
    return pricing._fill_price(market_id, pricing._accepted_index_price(market_id), positions._skew(market_id), size_delta)


@external
@view
def current_funding(market_id: uint256) -> (int256, int256):
    """
    @notice The funding index and the rate per 8 hours as if accrued now.
    @param market_id Market.
    @return (funding index, funding rate), 18 decimals.
    """
    return funding._pending(market_id, pricing._index_price(market_id), positions._skew(market_id))


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


@internal
def _trade(owner: address, subaccount: uint256, market_id: uint256, size_delta: int256, acceptable_price: uint256, fill_index: uint256):
    accounts._check_trader(owner, msg.sender)
    markets._check_exists(market_id)
    # a trader who sees the next oracle price before it lands must not trade at the current one
    assert markets._atomic_trading(market_id) or msg.sender == accounts.order_book, "engine: atomic trades disabled"
    index: uint256 = accrual._refresh(market_id)
    old: positions.Position = positions._load(owner, subaccount, market_id)
    # only the traded market settles its funding, in the same write as the fill: the
    # margin check below counts the other markets' pending funding exactly, and settling
    # them all would cost ~50k gas each. PositionModified reports it (no FundingSettled).
    funding_index: int256 = funding._index(market_id)
    funding_paid: int256 = funding._owed(old.size, old.funding_snapshot, funding_index)
    skew_before: int256 = positions._skew(market_id)
    # S8: an order fills at the index of the round its commitment fixed, not at the latest
    fill_at: uint256 = index
    if fill_index != 0 and msg.sender == accounts.order_book:
        fill_at = fill_index
    price: uint256 = pricing._fill_price(market_id, fill_at, skew_before, size_delta)
    if size_delta > 0:
        assert price <= acceptable_price, refusals.FILL_ABOVE_LIMIT
    else:
        assert price >= acceptable_price, refusals.FILL_BELOW_LIMIT

    new: positions.Position = empty(positions.Position)
    realized: int256 = 0
    new, realized = positions._apply_fill(old, size_delta, price)
    # S2: profit beyond the counterparty cap, in this market or in total, is paid pro rata
    realized = liquidation._capped_profit(market_id, realized, price)
    # settled to now; a position opened from flat starts owing funding from now
    new.funding_snapshot = funding_index
    adds_risk: bool = abs(new.size) > abs(old.size) or (old.size != 0 and new.size != 0 and fixed_point._sign(new.size) != fixed_point._sign(old.size))
    if adds_risk:
        self._check_new_risk(market_id)

    notional: uint256 = fixed_point._umul_up(convert(abs(size_delta), uint256), price)
    imr: uint256 = 0
    mmr: uint256 = 0
    maker_fee: uint256 = 0
    taker_fee: uint256 = 0
    imr, mmr, maker_fee, taker_fee = markets._margin_params(market_id)
    fee: uint256 = fees._trade_fee(skew_before, size_delta, notional, maker_fee, taker_fee)
    # the vault is counterparty to the realized PnL and to the funding, and pays at most its balance (S1)
    realized -= treasury._book_trade(funding_paid - realized, fee)
    accounts._add_collateral(owner, subaccount, realized - convert(fee, int256) - funding_paid)
    exposure: uint256 = positions._store(owner, subaccount, market_id, old, new)

    if adds_risk:
        self._check_open_interest(market_id, new.size, index, exposure)
    # the traded market's index is the one just read (at its place in the mask); the others read theirs
    indexes: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    mask: uint256 = accounts._open_markets(owner, subaccount)
    if new.size != 0:
        indexes[positions._count_bits(mask & ((1 << market_id) - 1))] = index
    health: margin.AccountHealth = empty(margin.AccountHealth)
    marks: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    # S5: new risk is checked at the worse of index and mark for the account
    health, marks = margin._valuation(owner, subaccount, indexes, adds_risk, adds_risk)
    # realized losses are paid from collateral, never from unrealized profit elsewhere (S1)
    assert health.collateral >= 0, "engine: realized loss above collateral"
    if adds_risk:
        assert health.equity >= convert(health.initial_margin, int256), "engine: insufficient margin"
    else:
        assert health.equity >= convert(health.maintenance_margin, int256), "engine: below maintenance margin"
    log PositionModified(
        owner=owner,
        subaccount=subaccount,
        market_id=market_id,
        size_delta=size_delta,
        new_size=new.size,
        fill_price=price,
        fee=fee,
        realized_pnl=realized,
        funding_paid=funding_paid,
    )


@internal
@view
def _check_new_risk(market_id: uint256):
    assert not pausable.paused, refusals.PAUSED
    assert not pricing._is_reduce_only(market_id), refusals.REDUCE_ONLY


@internal
@view
def _check_open_interest(market_id: uint256, new_size: int256, index: uint256, owner_exposure: uint256):
    longs: uint256 = 0
    shorts: uint256 = 0
    longs, shorts = positions._interest(market_id)
    side_interest: uint256 = shorts
    if new_size > 0:
        side_interest = longs
    max_position_size: uint256 = 0
    max_open_interest: uint256 = 0
    ratio: uint256 = 0
    max_position_size, max_open_interest, ratio = markets._limits(market_id)
    # S3: the size cap holds across the owner's subaccounts (sum of their abs sizes)
    assert owner_exposure <= max_position_size, "engine: position above size limit"
    assert side_interest <= max_open_interest, refusals.OPEN_INTEREST_CAP
    if ratio != 0:
        vault_capacity: int256 = fixed_point._mul_floor(max(treasury._vault_balance(), 0), convert(ratio, int256))
        assert convert(fixed_point._umul_up(side_interest, index), int256) <= vault_capacity, refusals.VAULT_CAPACITY
