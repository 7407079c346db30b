# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title LiquidityVault
@notice ERC-4626 vault over the engine's collateral token. LP assets sit in
        the engine as the vault's balance there; the vault is counterparty
        to the net skew, so its share price counts its unrealized PnL, the
        funding it is owed and its share of fees, valued here from the
        engine's per-market aggregates. Withdrawals keep enough equity to
        back net open notional (`reserve`).

        Share price (PROTOCOL.md S7). The vault keeps two valuations and
        prices every entry and exit at the one least favourable to the LP
        entering or leaving:
        - exit valuation (`equity`, `totalAssets`; redeem, withdraw and their
          previews and maxima): traders' PnL in each market at the price
          their net position would close at (`fill_price(m, -skew)`, so the
          refundable skew premium is not a vault gain) or at the mark,
          whichever is higher; a market where traders are net losing counts
          0, not their loss, because those accounts may not be able to pay
          it (the vault then books only what liquidation or a close
          actually collects);
        - entry valuation (`entry_equity`; deposit, mint and their previews):
          traders' PnL at the mark or at the exit price, whichever is lower,
          their net losses counted in full.
        Traders' unsettled funding counts in both. Each rounds against the
        LP moving: the entry valuation up, the exit valuation down.

        Redemptions are requested, then claimed. `request_redeem` moves
        shares into escrow in the vault; they become claimable
        `withdrawal_delay` seconds later (default 1 h, owner-set between
        1 min and 7 days). `redeem` and `withdraw` spend only claimable
        escrowed shares, priced at claim time at the exit valuation and
        still under the utilization limit. One request per owner: a new
        request adds to the pending one and restarts its clock. A request
        is claimable for `CLAIM_WINDOW` (1 day) after its delay, then
        lapses: `cancel_redeem` returns all escrowed shares. Escrowed shares stay
        in `totalSupply`, so they bear gains and losses until claimed.
        Just-in-time liquidity therefore cannot leave in the block it
        entered, and no one can redeem a trade's refundable premium.
@dev ERC-4626 previews: `previewRedeem`/`previewWithdraw` are exact for a
     claim in the same transaction (exit valuation now); like the
     standard asks, they ignore whether the caller holds a claimable
     request. They do not promise the price a request gets when it
     becomes claimable: that is the exit valuation at claim time.
     `maxRedeem`/`maxWithdraw` are 0 until the owner's request is
     claimable, then the claimable shares (or their assets) capped by
     the utilization limit. `convertToShares`/`convertToAssets` use the
     exit valuation (`totalAssets`).
@custom:security Total assets come from engine accounting, not from a token
                 balance, so tokens donated to the vault or the engine do not
                 move the share price; virtual shares (a decimals offset)
                 make a first-depositor inflation attack cost the attacker
                 far more than it can take. Shares mint before tokens move
                 (checks-effects-interactions); fee-on-transfer tokens are refused.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626
from snekmate.auth import ownable
from snekmate.tokens import erc20
from snekmate.utils import math

from .interfaces import IEngine
from .modules import fixed_point

implements: IERC4626

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    ownable.owner,
    ownable.transfer_ownership,
)


WAD: constant(uint256) = 10**18
# @dev Bound on the markets the vault values (the engine lists at most 64).
MAX_MARKETS: constant(uint256) = 64
# @dev Virtual shares: share decimals are the asset's plus this offset.
DECIMALS_OFFSET: public(constant(uint8)) = 6
# @dev withdrawal_delay at deployment, seconds.
DEFAULT_WITHDRAWAL_DELAY: public(constant(uint256)) = 3600
# @dev Bounds of withdrawal_delay, seconds: a minimum above zero keeps a request
#      from being claimed in the block it was made; at most 7 days.
MIN_WITHDRAWAL_DELAY: public(constant(uint256)) = 60
MAX_WITHDRAWAL_DELAY: public(constant(uint256)) = 7 * 86400
# @dev How long a request stays claimable once its delay has passed, seconds. A request
#      claimable forever would be a standing option: request once, earn as an LP, and leave
#      the moment a loss is seen coming. After the window the shares stay escrowed until
#      cancel_redeem returns them or a new request restarts the delay.
CLAIM_WINDOW: public(constant(uint256)) = 86400
# @dev A redemption request word: escrowed shares in bits 0-215, claimable_at above.
REQUEST_SHARES_BITS: constant(uint256) = 216
REQUEST_SHARES_MASK: constant(uint256) = (1 << REQUEST_SHARES_BITS) - 1


event RedeemRequested:
    owner: indexed(address)
    shares: uint256
    claimable_at: uint256


event RedeemCancelled:
    owner: indexed(address)
    shares: uint256


event WithdrawalDelaySet:
    withdrawal_delay: uint256


# @dev The engine this vault is counterparty in.
engine: public(immutable(IEngine))
# @dev The collateral token (ERC-4626 `asset`).
_ASSET: immutable(IERC20)
# @dev Multiplier from token units to 18 decimals.
_SCALE: immutable(uint256)

# @dev Seconds from a redemption request until it is claimable (owner-set,
#      MIN_WITHDRAWAL_DELAY to MAX_WITHDRAWAL_DELAY). A change applies to requests
#      made after it; pending requests keep their claimable_at.
withdrawal_delay: public(uint256)
# @dev Per owner, its one pending redemption request: the shares it escrowed in
#      this contract (bits 0-215) and the timestamp they become claimable (bits
#      216-255); 0 when none. Σ escrowed shares ≤ balanceOf(self).
_requests: HashMap[address, uint256]


@deploy
def __init__(engine_: IEngine, name_: String[25], symbol_: String[5]):
    """
    @notice Deploys the vault over an engine; the admin then calls Engine.set_vault.
    @param engine_ The engine.
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    """
    engine = engine_
    _ASSET = IERC20(staticcall engine_.collateral_token())
    _SCALE = staticcall engine_.collateral_scale()
    decimals: uint8 = staticcall IERC20Detailed(_ASSET.address).decimals()
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals + DECIMALS_OFFSET, name_, "1")
    # Shares come only from deposits: the deployer gives up snekmate's minter role.
    erc20.is_minter[msg.sender] = False
    self.withdrawal_delay = DEFAULT_WITHDRAWAL_DELAY


# ---------------------------------------------------------------------------
# ERC-4626 views
# ---------------------------------------------------------------------------


@external
@view
def asset() -> address:
    """
    @notice The collateral token.
    @return Its address.
    """
    return _ASSET.address


@external
@view
def totalAssets() -> uint256:
    """
    @notice Vault equity at the exit valuation (`equity`), token units,
            rounded down: what all shares together would be claimed for now.
    @return Total assets.
    """
    return self._exit_assets(self._valuation(False))


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares for assets at the exit valuation (`totalAssets`), rounded down.
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, self._exit_assets(self._valuation(False)), False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Assets for shares at the exit valuation (`totalAssets`), rounded down.
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, self._exit_assets(self._valuation(False)), False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @notice No deposit limit.
    @param receiver Unused.
    @return max uint256.
    """
    return max_value(uint256)


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @notice No mint limit.
    @param receiver Unused.
    @return max uint256.
    """
    return max_value(uint256)


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @notice 0 until the owner's redemption request is claimable; then what its
            escrowed shares are worth at the exit valuation, capped by what the
            utilization limit frees.
    @param owner Share owner.
    @return Token units.
    """
    pending: uint256 = self._claimable_shares(owner)
    if pending == 0:
        return 0
    equity: int256 = self._valuation(False)
    return min(self._to_assets(pending, self._exit_assets(equity), False), self._available_assets(equity))


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @notice 0 until the owner's redemption request is claimable; then its
            escrowed shares, capped by the shares the utilization limit frees.
    @param owner Share owner.
    @return Shares.
    """
    pending: uint256 = self._claimable_shares(owner)
    if pending == 0:
        return 0
    equity: int256 = self._valuation(False)
    return min(pending, self._to_shares(self._available_assets(equity), self._exit_assets(equity), False))


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of assets mints now: entry valuation, rounded down.
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, self._entry_assets(self._valuation(True)), False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets a mint of shares costs now: entry valuation, rounded up.
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, self._entry_assets(self._valuation(True)), True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares a withdrawal of assets claimed in this transaction burns:
            exit valuation, rounded up. Exact for a claim now, whether or not
            the caller holds a claimable request (ERC-4626 previews ignore
            limits); a request claimed later prices then.
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, self._exit_assets(self._valuation(False)), True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Assets a redemption of shares claimed in this transaction pays:
            exit valuation, rounded down. Exact for a claim now, whether or
            not the caller holds a claimable request (ERC-4626 previews
            ignore limits); a request claimed later prices then.
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, self._exit_assets(self._valuation(False)), False)


@external
@view
def equity() -> int256:
    """
    @notice The exit valuation (18 decimals), which redemptions price at: the
            vault's settled balance in the engine and the bad debt insurance
            can repay now, plus traders' unsettled funding, minus per market
            max(0, traders' PnL at the higher of mark and exit price),
            rounded down.
    @return Vault equity.
    """
    return self._valuation(False)


@external
@view
def entry_equity() -> int256:
    """
    @notice The entry valuation (18 decimals), which deposits and mints price
            at: as `equity`, but traders' PnL at the lower of mark and exit
            price with their net losses counted in full, rounded up.
            Never below `equity`.
    @return Vault equity for entries.
    """
    return self._valuation(True)


@external
@view
def reserve() -> int256:
    """
    @notice Equity that must stay to back net open notional: the sum over
            markets of |skew| * mark, divided by the engine's max utilization.
    @return Reserve, 18 decimals.
    """
    return self._reserve()


@external
@view
def redeem_request(owner: address) -> (uint256, uint256):
    """
    @notice The owner's pending redemption request.
    @param owner Share owner.
    @return (escrowed shares, timestamp from which they are claimable); (0, 0) when none.
    """
    word: uint256 = self._requests[owner]
    return word & REQUEST_SHARES_MASK, word >> REQUEST_SHARES_BITS


# ---------------------------------------------------------------------------
# ERC-4626 actions
# ---------------------------------------------------------------------------


@external
@nonreentrant
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposits assets and mints shares to receiver at the entry valuation.
    @param assets Token units pulled from the caller.
    @param receiver Share recipient.
    @return Shares minted (rounded down).
    """
    shares: uint256 = self._to_shares(assets, self._entry_assets(self._valuation(True)), False)
    self._deposit(receiver, assets, shares)
    return shares


@external
@nonreentrant
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mints exactly shares to receiver for what they cost at the entry valuation.
    @param shares Shares to mint.
    @param receiver Share recipient.
    @return Token units pulled from the caller (rounded up).
    """
    assets: uint256 = self._to_assets(shares, self._entry_assets(self._valuation(True)), True)
    self._deposit(receiver, assets, shares)
    return assets


@external
@nonreentrant
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Claims exactly assets from owner's claimable redemption request,
            sent to receiver, burning the escrowed shares they are worth at
            the exit valuation now.
    @param assets Token units to pay out.
    @param receiver Token recipient.
    @param owner Share owner (the caller or one that approved it for the shares).
    @return Shares burned (rounded up).
    """
    equity: int256 = self._valuation(False)
    shares: uint256 = self._to_shares(assets, self._exit_assets(equity), True)
    self._withdraw(receiver, owner, assets, shares, equity)
    return shares


@external
@nonreentrant
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Claims exactly shares of owner's claimable redemption request for
            what they are worth at the exit valuation now, sent to receiver.
    @param shares Escrowed shares to burn.
    @param receiver Token recipient.
    @param owner Share owner (the caller or one that approved it for the shares).
    @return Token units paid out (rounded down).
    """
    equity: int256 = self._valuation(False)
    assets: uint256 = self._to_assets(shares, self._exit_assets(equity), False)
    self._withdraw(receiver, owner, assets, shares, equity)
    return assets


# ---------------------------------------------------------------------------
# Requested redemptions
# ---------------------------------------------------------------------------


@external
@nonreentrant
def request_redeem(shares: uint256) -> uint256:
    """
    @notice Moves shares of the caller into escrow in the vault, to be claimed
            with `redeem` or `withdraw` once `withdrawal_delay` has passed, at
            the price then. A pending request grows by shares and its clock
            restarts. Escrowed shares stay in totalSupply and keep bearing
            gains and losses.
    @param shares Shares to escrow.
    @return The timestamp from which the whole request is claimable.
    """
    assert shares > 0, "vault: zero request"
    pending: uint256 = (self._requests[msg.sender] & REQUEST_SHARES_MASK) + shares
    assert pending <= REQUEST_SHARES_MASK, "vault: request above bound"
    claimable_at: uint256 = block.timestamp + self.withdrawal_delay
    erc20._transfer(msg.sender, self, shares)
    self._requests[msg.sender] = pending | claimable_at << REQUEST_SHARES_BITS
    log RedeemRequested(owner=msg.sender, shares=shares, claimable_at=claimable_at)
    return claimable_at


@external
@nonreentrant
def cancel_redeem() -> uint256:
    """
    @notice Returns all the caller's escrowed shares to it and drops its request.
    @return Shares returned.
    """
    shares: uint256 = self._requests[msg.sender] & REQUEST_SHARES_MASK
    assert shares > 0, "vault: no pending request"
    self._requests[msg.sender] = 0
    erc20._transfer(self, msg.sender, shares)
    log RedeemCancelled(owner=msg.sender, shares=shares)
    return shares


@external
def set_withdrawal_delay(withdrawal_delay: uint256):
    """
    @notice Sets the delay from a redemption request to its claim (owner only).
            Requests already made keep their claimable time.
    @param withdrawal_delay Seconds, MIN_WITHDRAWAL_DELAY (60) to MAX_WITHDRAWAL_DELAY (7 days).
    """
    ownable._check_owner()
    assert withdrawal_delay >= MIN_WITHDRAWAL_DELAY and withdrawal_delay <= MAX_WITHDRAWAL_DELAY, "vault: delay out of bounds"
    self.withdrawal_delay = withdrawal_delay
    log WithdrawalDelaySet(withdrawal_delay=withdrawal_delay)


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


@internal
@view
def _valuation(entry: bool) -> int256:
    """
    @dev Each market valued from the engine's aggregates, S = skew. Traders'
         PnL is S * price - cost_sum at the mark M and at the exit price
         X = fill_price(m, -S) (what closing the net position would fill at:
         the skew premium it paid is refunded on the way out, so it is no
         vault gain). Exit (entry = False): max(0, PnL at M, PnL at X), the
         products rounded up; a market where traders net lose adds nothing,
         as those accounts may not pay their loss. Entry: min(PnL at M,
         PnL at X), products rounded down, losses in full. Traders' unsettled
         funding F * S - snapshot_sum counts in both, rounded down on exit and
         up on entry. The bad debt the vault absorbed counts as far as the
         insurance fund can repay it now, so the (permissionless) repayment
         cannot be sandwiched by a deposit. On entry, traders' profit counts
         only up to the counterparty cap of S2 (max_pnl_factor of the vault
         balance) in each market and in total, as closes will pay it: counting
         the part a close leaves with the vault would sell shares cheap to a
         depositor who enters before that close. On exit it counts in full.
    """
    repayable: int256 = min(convert(staticcall engine.vault_bad_debt(), int256), max(staticcall engine.insurance_balance(), 0))
    balance: int256 = staticcall engine.vault_balance()
    total: int256 = balance + repayable
    cap: int256 = max_value(int256)
    if entry:
        cap = fixed_point._mul_floor(max(balance, 0), convert(staticcall engine.max_pnl_factor(), int256))
    traders_profit: int256 = 0
    market_count: uint256 = staticcall engine.market_count()
    for market_id: uint256 in range(MAX_MARKETS):
        if market_id >= market_count:
            break
        longs: uint256 = staticcall engine.long_open_interest(market_id)
        shorts: uint256 = staticcall engine.short_open_interest(market_id)
        if longs == 0 and shorts == 0:
            continue
        skew: int256 = convert(longs, int256) - convert(shorts, int256)
        funding_index: int256 = 0
        rate: int256 = 0
        funding_index, rate = staticcall engine.current_funding(market_id)
        traders_pnl: int256 = -staticcall engine.cost_sum(market_id)
        traders_owed: int256 = -staticcall engine.snapshot_sum(market_id)
        if entry:
            traders_owed += fixed_point._mul_ceil(funding_index, skew)
        else:
            traders_owed += fixed_point._mul_floor(funding_index, skew)
        if skew != 0:
            mark: int256 = convert(staticcall engine.mark_price(market_id), int256)
            exit_price: int256 = convert(staticcall engine.fill_price(market_id, -skew), int256)
            if entry:
                traders_pnl += min(fixed_point._mul_floor(skew, mark), fixed_point._mul_floor(skew, exit_price))
            else:
                traders_pnl += max(fixed_point._mul_ceil(skew, mark), fixed_point._mul_ceil(skew, exit_price))
        if entry:
            traders_pnl = min(traders_pnl, cap)
        else:
            traders_pnl = max(traders_pnl, 0)
        total += traders_owed
        traders_profit += traders_pnl
    return total - min(traders_profit, cap)


@internal
@view
def _reserve() -> int256:
    exposure: uint256 = 0
    market_count: uint256 = staticcall engine.market_count()
    for market_id: uint256 in range(MAX_MARKETS):
        if market_id >= market_count:
            break
        longs: uint256 = staticcall engine.long_open_interest(market_id)
        shorts: uint256 = staticcall engine.short_open_interest(market_id)
        if longs == shorts:
            continue
        mark: uint256 = staticcall engine.mark_price(market_id)
        exposure += fixed_point._umul_up(max(longs, shorts) - min(longs, shorts), mark)
    return convert(exposure * WAD // staticcall engine.max_vault_utilization(), int256)


@internal
@view
def _exit_assets(equity: int256) -> uint256:
    """
    @dev Token units of an exit valuation, rounded down (against the one leaving).
    """
    if equity <= 0:
        return 0
    return convert(equity, uint256) // _SCALE


@internal
@view
def _entry_assets(equity: int256) -> uint256:
    """
    @dev Token units of an entry valuation, rounded up (against the one entering).
    """
    if equity <= 0:
        return 0
    return math._ceil_div(convert(equity, uint256), _SCALE)


@internal
@view
def _available_assets(equity: int256) -> uint256:
    """
    @dev Assets the utilization limit lets leave now, from the exit valuation.
    """
    free: int256 = min(equity - self._reserve(), staticcall engine.vault_balance())
    if free <= 0:
        return 0
    return convert(free, uint256) // _SCALE


@internal
@view
def _claimable_shares(owner: address) -> uint256:
    """
    @dev The owner's escrowed shares when its request is claimable now, else 0.
    """
    word: uint256 = self._requests[owner]
    if not self._in_claim_window(word):
        return 0
    return word & REQUEST_SHARES_MASK


@internal
@view
def _in_claim_window(word: uint256) -> bool:
    claimable_at: uint256 = word >> REQUEST_SHARES_BITS
    return block.timestamp >= claimable_at and block.timestamp < claimable_at + CLAIM_WINDOW


@internal
@view
def _to_shares(assets: uint256, total_assets: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, erc20.totalSupply + 10 ** convert(DECIMALS_OFFSET, uint256), total_assets + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, total_assets: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, total_assets + 1, erc20.totalSupply + 10 ** convert(DECIMALS_OFFSET, uint256), roundup)


@internal
def _deposit(receiver: address, assets: uint256, shares: uint256):
    assert assets > 0 and shares > 0, "vault: zero deposit"
    assert receiver != empty(address), "vault: receiver is zero"
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)
    before: uint256 = staticcall _ASSET.balanceOf(engine.address)
    assert extcall _ASSET.transferFrom(msg.sender, engine.address, assets, default_return_value=True), "vault: transfer failed"
    assert staticcall _ASSET.balanceOf(engine.address) - before == assets, "vault: fee-on-transfer token"
    extcall engine.credit_vault(assets)


@internal
def _withdraw(receiver: address, owner: address, assets: uint256, shares: uint256, equity: int256):
    """
    @dev Pays a claim out of owner's request: its escrowed shares are burned
         from this contract's balance. equity is the exit valuation the
         amounts were priced at.
    """
    assert assets > 0 and shares > 0, "vault: zero withdrawal"
    assert receiver != empty(address), "vault: receiver is zero"
    word: uint256 = self._requests[owner]
    pending: uint256 = word & REQUEST_SHARES_MASK
    assert pending > 0 and self._in_claim_window(word), "vault: redemption not claimable"
    assert shares <= pending, "vault: shares above request"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    assert equity - convert(assets * _SCALE, int256) >= self._reserve(), "vault: utilization limit"
    if shares == pending:
        self._requests[owner] = 0
    else:
        self._requests[owner] = word - shares
    erc20._burn(self, shares)
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)
    extcall engine.withdraw_for_vault(receiver, assets)
