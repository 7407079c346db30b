# pragma version ~=0.4.3
# pragma nonreentrancy off
# pragma optimize codesize
"""
@title EngineAdmin
@notice The cold entry points of the Engine: market listing and
        parameters, fee split, vault connection and hooks, tiers, roles,
        pause and breaker override. The Engine runs this code by delegatecall from its
        fallback, in its own storage, so that its hot paths keep the code
        space under EIP-170. Call these functions at the engine's address
        (this contract's ABI over the engine); called directly, they refuse.
@custom:security Its storage layout must equal the Engine's: both compose the
                 same modules in the same order and declare no storage of
                 their own (a test compares the compiler's layouts). Every
                 function checks its role in the engine's storage. Calls go
                 through the engine's fallback, which returns their data.
"""

from ethereum.ercs import IERC20
from snekmate.auth import access_control
from snekmate.utils import pausable

from .interfaces import IEngine

from .modules import fixed_point
from .modules import markets
from .modules import pricing
from .modules import funding
from .modules import positions
from .modules import accounts
from .modules import treasury
from .modules import margin
from .modules import accrual
from .modules import liquidation
from .modules import timelock

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
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    # views the Engine leaves to this facet for room (integrators read them through the Engine)
    markets.params,
    pricing.breaker,
    pricing.halt_confirmations,
    liquidation.liquidation_params,
    positions.owner_exposure,
    access_control.getRoleAdmin,
    accounts.tier_of,
    accounts.tier_max_leverage,
    treasury.vault_fee_share,
    treasury.insurance_floor,
    treasury.max_pnl_factor,
    treasury.adl_target,
    # S10: the tightening queue
    timelock.param_delay,
    timelock.pending_change,
    timelock.pending_market_params,
)

event VaultFunded:
    amount: uint256


event VaultWithdrawn:
    receiver: indexed(address)
    amount: uint256


# @dev Role that may pause, unpause and clear price breakers.
GUARDIAN_ROLE: constant(bytes32) = keccak256("GUARDIAN_ROLE")
# @dev This contract's own address: code running at any other address runs for an engine.
SELF: immutable(address)


@deploy
def __init__():
    """
    @notice Deploys the facet; an Engine is then deployed over its address.
    """
    SELF = self
    access_control.__init__()
    pausable.__init__()
    treasury.__init__()
    liquidation.__init__()


# ---------------------------------------------------------------------------
# Markets
# ---------------------------------------------------------------------------


@external
def add_market(params: markets.MarketParams):
    """
    @notice Lists a market; its id (the engine's market_count before the call)
            is in the MarketParamsSet event.
    @param params Its parameters (checked against hard bounds).
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    funding._start(markets._add(params))
    self._check_taker_fee(params.taker_fee)


@external
@nonreentrant
def set_market_params(market_id: uint256, params: markets.MarketParams):
    """
    @notice Replaces a market's parameters. S10: a change that could hurt an
            open position (see _tightens) is queued for param_delay instead
            (MarketParamsQueued) while the market has open interest; apply_change
            applies it once due. Otherwise it applies at once and drops a queued
            change; funding accrues under the old parameters first. Replacing
            the oracle skips that accrual, so a dead feed can be swapped out:
            the elapsed time then accrues at the new feed's first price.
    @param market_id Market to change.
    @param params New parameters (checked against hard bounds).
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    markets._check_exists(market_id)
    markets._validate(params)
    self._check_taker_fee(params.taker_fee)
    if positions._open_interest[market_id] != 0 and self._tightens(markets.params[market_id], params):
        timelock._queue_market(market_id, params)
    else:
        self._set_market(market_id, params)


@external
def set_atomic_trading(market_id: uint256, allowed: bool):
    """
    @notice Allows or forbids direct trades at the current oracle price in a
            market; when forbidden, only the order book's two-step orders trade.
    @param market_id Market.
    @param allowed True on devnets and where the feed cannot be front-run.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    markets._set_atomic_trading(market_id, allowed)


@external
def set_order_book(order_book: address):
    """
    @notice Sets the order book that trades for accounts the orders they committed.
    @param order_book The OrderBook contract; zero disconnects it.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    accounts._set_order_book(order_book)


# ---------------------------------------------------------------------------
# Vault, fees and tiers
# ---------------------------------------------------------------------------


@external
def set_vault(vault: address):
    """
    @notice Connects the LP vault; only once.
    @param vault The LiquidityVault deployed over this engine.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    treasury._set_vault(vault)


@external
def set_fee_split(vault_fee_share: uint256):
    """
    @notice Sets the vault's share of trading fees; the insurance fund gets the rest.
    @param vault_fee_share 18-decimal fraction, at most 1, in steps of 1e-10.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    treasury._set_fee_split(vault_fee_share)


@external
def set_max_vault_utilization(max_vault_utilization: uint256):
    """
    @notice Sets how much of vault equity net open notional may use. S10:
            lowering it while any market has open interest is queued
            (ChangeQueued under KEY_VAULT_UTILIZATION).
    @param max_vault_utilization 18-decimal fraction in [0.1, 1].
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    treasury._check_max_vault_utilization(max_vault_utilization)
    if not self._deferred(timelock.KEY_VAULT_UTILIZATION, max_vault_utilization, max_vault_utilization < treasury.max_vault_utilization, empty(address)):
        treasury._set_max_vault_utilization(max_vault_utilization)


@external
def set_tier(owner: address, tier: uint256):
    """
    @notice Puts an owner (all its subaccounts) in an account tier. S10:
            moving an owner who holds a position to a stricter tier is queued
            (ChangeQueued under KEY_OWNER | owner).
    @param owner Account owner.
    @param tier Tier id (0 is the default).
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    accounts._check_tier_leverage(tier, 0)
    stricter: bool = self._stricter(accounts.tier_max_leverage[accounts.tier_of[owner]], accounts.tier_max_leverage[tier])
    if not self._deferred(timelock.KEY_OWNER | convert(owner, uint256), tier, stricter, owner):
        accounts._set_tier(owner, tier)


@external
def set_tier_leverage(tier: uint256, max_leverage: uint256):
    """
    @notice Caps the leverage of a tier below the markets' own limits. S10:
            a stricter cap while any market has open interest is queued
            (ChangeQueued under KEY_TIER + tier).
    @param tier Tier id.
    @param max_leverage 18 decimals in [1, 100]; 0 removes the cap.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    accounts._check_tier_leverage(tier, max_leverage)
    stricter: bool = self._stricter(accounts.tier_max_leverage[tier], max_leverage)
    if not self._deferred(timelock.KEY_TIER + tier, max_leverage, stricter, empty(address)):
        accounts._set_tier_leverage(tier, max_leverage)


# ---------------------------------------------------------------------------
# LP vault hooks
# ---------------------------------------------------------------------------


@external
@nonreentrant
def credit_vault(amount: uint256):
    """
    @notice Books tokens the vault moved into the engine as vault assets.
    @dev Only the vault; it measures what the engine received.
    @param amount Token units received.
    """
    treasury._check_vault(msg.sender)
    treasury._move(convert(amount * staticcall IEngine(self).collateral_scale(), int256), 0)
    log VaultFunded(amount=amount)


@external
@nonreentrant
def withdraw_for_vault(receiver: address, amount: uint256):
    """
    @notice Pays vault assets out to an LP.
    @dev Only the vault, which keeps its own utilization limit first.
    @param receiver Token recipient.
    @param amount Token units.
    """
    treasury._check_vault(msg.sender)
    debit: int256 = convert(amount * staticcall IEngine(self).collateral_scale(), int256)
    assert debit <= treasury._vault_balance(), "engine: vault balance too low"
    treasury._move(-debit, 0)
    token: IERC20 = IERC20(staticcall IEngine(self).collateral_token())
    assert extcall token.transfer(receiver, amount, default_return_value=True), "engine: transfer failed"
    log VaultWithdrawn(receiver=receiver, amount=amount)


# ---------------------------------------------------------------------------
# Liquidation and insurance
# ---------------------------------------------------------------------------


@external
def set_liquidation_params(params: liquidation.LiquidationParams):
    """
    @notice Sets the liquidation fee, reward bounds, partial-liquidation and
            deleveraging settings (checked against hard bounds).
    @param params The new settings.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    for market_id: uint256 in range(markets.MAX_MARKETS):
        if market_id >= markets.market_count:
            break
        taker_fee: uint256 = markets._margin_params(market_id)[3]
        assert taker_fee <= params.fee, "engine_admin: liquidation fee below a taker fee"
    liquidation._set_params(params)


@external
def set_pnl_caps(max_pnl_factor: uint256, adl_target: uint256):
    """
    @notice Sets the counterparty cap (S2): traders' profit in a market above
            max_pnl_factor of the vault balance is paid pro rata at close, and
            deleveraging runs from that ratio down to adl_target. S10: lowering
            either while any market has open interest is queued (ChangeQueued
            under KEY_PNL_CAPS, value adl_target << 128 | max_pnl_factor).
    @param max_pnl_factor 18 decimals, in [0.01, 1], a multiple of 1e-10.
    @param adl_target 18 decimals, at most max_pnl_factor, a multiple of 1e-10.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    treasury._check_pnl_caps(max_pnl_factor, adl_target)
    lowered: bool = max_pnl_factor < treasury._max_pnl_factor() or adl_target < treasury._adl_target()
    if not self._deferred(timelock.KEY_PNL_CAPS, adl_target << 128 | max_pnl_factor, lowered, empty(address)):
        treasury._set_pnl_caps(max_pnl_factor, adl_target)


@external
def set_insurance_floor(insurance_floor: uint256):
    """
    @notice Sets the insurance balance an admin withdrawal may not go below.
    @param insurance_floor 18 decimals.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    treasury._set_insurance_floor(insurance_floor)


@external
@nonreentrant
def withdraw_insurance(amount: uint256, receiver: address):
    """
    @notice Withdraws insurance above the floor; never while the vault
            carries bad debt.
    @param amount Token units.
    @param receiver Token recipient.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    token: IERC20 = IERC20(staticcall IEngine(self).collateral_token())
    treasury._debit_insurance(amount * staticcall IEngine(self).collateral_scale())
    assert extcall token.transfer(receiver, amount, default_return_value=True), "engine_admin: transfer failed"
    log treasury.InsuranceWithdrawn(receiver=receiver, amount=amount)


@external
@nonreentrant
def repay_vault_bad_debt():
    """
    @notice Moves insurance to the LP vault until the bad debt it absorbed
            is repaid (permissionless); the amount is in VaultBadDebtRepaid.
    """
    self._check_engine()
    treasury._repay_vault_bad_debt()


# ---------------------------------------------------------------------------
# Guardian
# ---------------------------------------------------------------------------


@external
def pause():
    """
    @notice Stops new risk; closing, withdrawing free collateral, funding and
            liquidation go on.
    """
    self._check_role(GUARDIAN_ROLE)
    pausable._pause()


@external
def unpause():
    """
    @notice Lifts the pause.
    """
    self._check_role(GUARDIAN_ROLE)
    pausable._unpause()


@external
@nonreentrant
def clear_breaker(market_id: uint256):
    """
    @notice Lifts a market's reduce-only state after a price-move breaker trip.
    @param market_id Market to clear.
    """
    self._check_role(GUARDIAN_ROLE)
    markets._check_exists(market_id)
    pricing._clear_breaker(market_id, pricing._index_price(market_id))


@external
@view
def is_reduce_only(market_id: uint256) -> bool:
    """
    @notice True while the market's price-move breaker holds it reduce-only.
    @param market_id Market.
    @return Whether only risk-reducing trades pass.
    """
    return pricing._is_reduce_only(market_id)


@external
@view
def accepted_index(market_id: uint256) -> uint256:
    """
    @notice The last index price the market accepted (S4 compares each new
            index with it).
    @param market_id Market.
    @return The price, 18 decimals (0 before the market's first trade or checkpoint).
    """
    return pricing._accepted_index[market_id]


@external
@view
def is_halted(market_id: uint256) -> bool:
    """
    @notice True while the feed's index is an outlier (beyond breaker_move
            of the last accepted index): no trade, close, withdrawal,
            liquidation or checkpoint runs in the market until confirm_price
            or the guardian's resume_market accepts the new price.
    @param market_id Market.
    @return Whether the market is halted.
    """
    return pricing._is_halted(market_id, pricing._index_price(market_id))


@external
@nonreentrant
def confirm_price(market_id: uint256):
    """
    @notice Ends a halt once the feed's last halt_confirmations rounds all
            agree with the new index within breaker_move (permissionless:
            a real move needs no guardian). The market then resumes
            reduce-only for a breaker window.
    @param market_id Halted market.
    """
    self._check_engine()
    markets._check_exists(market_id)
    index: uint256 = pricing._index_price(market_id)
    assert pricing._is_halted(market_id, index), "engine_admin: market not halted"
    move: uint256 = 0
    window: uint256 = 0
    move, window = markets._breaker_params(market_id)
    assert pricing._confirmed(market_id, index, move), "engine_admin: price not confirmed"
    pricing._resume(market_id, index, False)


@external
@nonreentrant
def resume_market(market_id: uint256):
    """
    @notice Guardian override of a halt: accepts the feed's current index.
            The market then resumes reduce-only for a breaker window.
    @param market_id Halted market.
    """
    self._check_role(GUARDIAN_ROLE)
    markets._check_exists(market_id)
    index: uint256 = pricing._index_price(market_id)
    assert pricing._is_halted(market_id, index), "engine_admin: market not halted"
    pricing._resume(market_id, index, True)


@external
def set_halt_confirmations(rounds: uint256):
    """
    @notice Sets how many consecutive feed rounds (the latest included) must
            agree with an outlier before confirm_price accepts it.
    @param rounds 2..16.
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    pricing._set_halt_confirmations(rounds)


# ---------------------------------------------------------------------------
# S10: tightening delays
# ---------------------------------------------------------------------------


@external
def set_param_delay(delay: uint256):
    """
    @notice Sets how long a tightening change waits. Raising it is immediate;
            shortening it is itself queued under the current delay
            (ChangeQueued under KEY_PARAM_DELAY).
    @param delay Seconds, in [1 h, 30 days].
    """
    self._check_role(access_control.DEFAULT_ADMIN_ROLE)
    timelock._check_param_delay(delay)
    if delay < timelock.param_delay:
        timelock._queue(timelock.KEY_PARAM_DELAY, delay)
    else:
        timelock._drop(timelock.KEY_PARAM_DELAY)
        timelock._set_param_delay(delay)


@external
@nonreentrant
def apply_change(key: uint256):
    """
    @notice Applies a queued change once due (permissionless). Market
            parameters accrue funding first, as set_market_params does.
    @param key Queue key: a market id, or KEY_PNL_CAPS (64), KEY_VAULT_UTILIZATION
           (65), KEY_PARAM_DELAY (66), KEY_TIER + tier (128 + tier), KEY_OWNER | owner
           (1 << 160 | owner).
    """
    queued: uint256 = timelock._take(key)
    if key < markets.MAX_MARKETS:
        params: markets.MarketParams = timelock._pending_params[key]
        self._check_taker_fee(params.taker_fee)
        self._set_market(key, params)
    elif key == timelock.KEY_PNL_CAPS:
        treasury._set_pnl_caps(queued & 2**128 - 1, queued >> 128)
    elif key == timelock.KEY_VAULT_UTILIZATION:
        treasury._set_max_vault_utilization(queued)
    elif key == timelock.KEY_PARAM_DELAY:
        timelock._set_param_delay(queued)
    elif key < timelock.KEY_OWNER:
        accounts._set_tier_leverage(key - timelock.KEY_TIER, queued)
    else:
        accounts._set_tier(convert(key & 2**160 - 1, address), queued)


@internal
def _set_market(market_id: uint256, params: markets.MarketParams):
    timelock._drop(market_id)
    if params.oracle == markets.params[market_id].oracle:
        accrual._refresh(market_id)
    markets._set(market_id, params)


@internal
@view
def _tightens(old: markets.MarketParams, new: markets.MarketParams) -> bool:
    """
    @dev S10: whether a change could hurt an open position. Margins and fees
         may fall and caps rise at once; every other field moves prices,
         funding, staleness or the breaker, which can hurt either side, so any
         change of it waits.
    """
    return (
        new.imr > old.imr
        or new.mmr > old.mmr
        or new.maker_fee > old.maker_fee
        or new.taker_fee > old.taker_fee
        or new.max_position_size < old.max_position_size
        or new.max_open_interest < old.max_open_interest
        or self._stricter(old.max_oi_vault_ratio, new.max_oi_vault_ratio)
        or new.oracle != old.oracle
        or new.max_price_age != old.max_price_age
        or new.mark_window != old.mark_window
        or new.skew_scale != old.skew_scale
        or new.max_premium != old.max_premium
        or new.interest_rate != old.interest_rate
        or new.max_funding_rate != old.max_funding_rate
        or new.dynamic_funding != old.dynamic_funding
        or new.max_funding_velocity != old.max_funding_velocity
        or new.breaker_move != old.breaker_move
        or new.breaker_window != old.breaker_window
    )


@internal
def _deferred(key: uint256, new_value: uint256, tightens: bool, owner: address) -> bool:
    """
    @dev S10: queues a scalar change under key when it tightens while someone
         (the owner, or anyone when owner is zero) holds a position, and
         returns True; otherwise drops what was queued under key (the caller
         applies the change at once) and returns False.
    """
    if tightens and not self._idle(owner):
        timelock._queue(key, new_value)
        return True
    timelock._drop(key)
    return False


@internal
@pure
def _stricter(old: uint256, new: uint256) -> bool:
    """
    @dev Whether a limit where 0 means none gets stricter.
    """
    return new != 0 and (old == 0 or new < old)


@internal
@view
def _idle(owner: address) -> bool:
    """
    @dev S10: whether nobody (owner zero) or the owner holds a position in any
         market, so a tightening hurts no one and needs no delay.
    """
    for market_id: uint256 in range(markets.MAX_MARKETS):
        if market_id >= markets.market_count:
            break
        if owner == empty(address):
            if positions._open_interest[market_id] != 0:
                return False
        elif positions.owner_exposure[owner][market_id] != 0:
            return False
    return True


@internal
@view
def _check_taker_fee(taker_fee: uint256):
    """
    @dev S6: liquidation charges at least what closing would, so being
         liquidated from a second account never beats closing.
    """
    assert taker_fee <= liquidation._load_params().fee, "engine_admin: taker fee above liquidation fee"


@internal
@view
def _check_role(role: bytes32):
    self._check_engine()
    access_control._check_role(role, msg.sender)


@internal
@view
def _check_engine():
    assert self != SELF, "engine_admin: call through the engine"
