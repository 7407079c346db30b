# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title LiquidityVault
@notice ERC-4626 vault over the engine's collateral token. LP assets sit in
        the engine as the vault's balance there; the vault is counterparty
        to the net skew, so its share price counts its unrealized PnL, the
        funding it is owed and its share of fees, valued here from the
        engine's per-market aggregates (`equity`). Withdrawals keep enough
        equity to back net open notional (`reserve`).
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
)


interface IEngine:
    def collateral_token() -> address: view
    def collateral_scale() -> uint256: view
    def vault_balance() -> int256: view
    def vault_bad_debt() -> uint256: view
    def insurance_balance() -> int256: view
    def max_vault_utilization() -> uint256: view
    def market_count() -> uint256: view
    def long_open_interest(market_id: uint256) -> uint256: view
    def short_open_interest(market_id: uint256) -> uint256: view
    def cost_sum(market_id: uint256) -> int256: view
    def snapshot_sum(market_id: uint256) -> int256: view
    def mark_price(market_id: uint256) -> uint256: view
    def current_funding(market_id: uint256) -> (int256, int256): view
    def credit_vault(amount: uint256): nonpayable
    def withdraw_for_vault(receiver: address, amount: uint256): nonpayable


WAD: constant(uint256) = 10**18
# @dev Bound on the markets the vault values (the engine lists at most 64).
MAX_MARKETS: constant(uint256) = 64
# @dev Virtual shares: share decimals are the asset's plus this offset.
DECIMALS_OFFSET: public(constant(uint8)) = 6

# @dev The engine this vault is counterparty in.
engine: public(immutable(IEngine))
# @dev The collateral token (ERC-4626 `asset`).
_ASSET: immutable(IERC20)
# @dev Multiplier from token units to 18 decimals.
_SCALE: immutable(uint256)


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
    @notice Vault equity in the engine, token units, rounded down.
    @return Total assets.
    """
    return self._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares for assets at the current price, rounded down.
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Assets for shares at the current price, rounded down.
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, False)


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
    @notice The owner's assets, capped by what the utilization limit frees.
    @param owner Share owner.
    @return Token units.
    """
    return min(self._to_assets(erc20.balanceOf[owner], False), self._available_assets())


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @notice The owner's shares, capped by what the utilization limit frees.
    @param owner Share owner.
    @return Shares.
    """
    return min(erc20.balanceOf[owner], self._to_shares(self._available_assets(), False))


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of assets mints now (rounded down).
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, False)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets a mint of shares costs now (rounded up).
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, True)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares a withdrawal of assets burns now (rounded up).
    @param assets Token units.
    @return Shares.
    """
    return self._to_shares(assets, True)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Assets a redemption of shares pays now (rounded down).
    @param shares Shares.
    @return Token units.
    """
    return self._to_assets(shares, False)


@external
@view
def equity() -> int256:
    """
    @notice The vault's settled balance in the engine, minus traders'
            unrealized PnL, plus traders' unsettled funding (18 decimals),
            each rounded against the vault.
    @return Vault equity.
    """
    return self._equity()


@external
@view
def reserve() -> int256:
    """
    @notice Equity that must stay to back net open notional: the sum over
            markets of |skew| * mark, divided by the engine's max utilization.
    @return Reserve, 18 decimals.
    """
    return self._reserve()


# ---------------------------------------------------------------------------
# ERC-4626 actions
# ---------------------------------------------------------------------------


@external
@nonreentrant
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposits assets and mints shares to receiver.
    @param assets Token units pulled from the caller.
    @param receiver Share recipient.
    @return Shares minted.
    """
    shares: uint256 = self._to_shares(assets, False)
    self._deposit(receiver, assets, shares)
    return shares


@external
@nonreentrant
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mints exactly shares to receiver for the assets they cost.
    @param shares Shares to mint.
    @param receiver Share recipient.
    @return Token units pulled from the caller.
    """
    assets: uint256 = self._to_assets(shares, True)
    self._deposit(receiver, assets, shares)
    return assets


@external
@nonreentrant
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Burns owner's shares for exactly assets, sent to receiver.
    @param assets Token units to pay out.
    @param receiver Token recipient.
    @param owner Share owner (the caller or one that approved it).
    @return Shares burned.
    """
    shares: uint256 = self._to_shares(assets, True)
    self._withdraw(receiver, owner, assets, shares)
    return shares


@external
@nonreentrant
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Burns exactly shares of owner for their assets, sent to receiver.
    @param shares Shares to burn.
    @param receiver Token recipient.
    @param owner Share owner (the caller or one that approved it).
    @return Token units paid out.
    """
    assets: uint256 = self._to_assets(shares, False)
    self._withdraw(receiver, owner, assets, shares)
    return assets


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


@internal
@view
def _equity() -> int256:
    """
    @dev Each market valued from the engine's aggregates: traders' PnL is
         skew * mark - sum of cost bases (rounded up), their unsettled funding
         floor(index * skew) - sum of ceil(size * snapshot) (rounded down). The bad debt the
         vault absorbed counts as far as the insurance fund can repay it now,
         so the (permissionless) repayment cannot be sandwiched by a deposit.
    """
    repayable: int256 = min(convert(staticcall engine.vault_bad_debt(), int256), max(staticcall engine.insurance_balance(), 0))
    total: int256 = staticcall engine.vault_balance() + repayable
    market_count: uint256 = staticcall engine.market_count()
    for market_id: uint256 in range(MAX_MARKETS):
        if market_id >= market_count:
            break
        longs: uint256 = staticcall engine.long_open_interest(market_id)
        shorts: uint256 = staticcall engine.short_open_interest(market_id)
        if longs == 0 and shorts == 0:
            continue
        skew: int256 = convert(longs, int256) - convert(shorts, int256)
        mark: int256 = convert(staticcall engine.mark_price(market_id), int256)
        funding_index: int256 = 0
        rate: int256 = 0
        funding_index, rate = staticcall engine.current_funding(market_id)
        traders_pnl: int256 = fixed_point._mul_ceil(skew, mark) - staticcall engine.cost_sum(market_id)
        traders_owed: int256 = fixed_point._mul_floor(funding_index, skew) - staticcall engine.snapshot_sum(market_id)
        total += traders_owed - traders_pnl
    return total


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
def _total_assets() -> uint256:
    equity: int256 = self._equity()
    if equity <= 0:
        return 0
    return convert(equity, uint256) // _SCALE


@internal
@view
def _available_assets() -> uint256:
    """
    @dev Assets the utilization limit lets leave now.
    """
    free: int256 = min(self._equity() - self._reserve(), staticcall engine.vault_balance())
    if free <= 0:
        return 0
    return convert(free, uint256) // _SCALE


@internal
@view
def _to_shares(assets: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, erc20.totalSupply + 10 ** convert(DECIMALS_OFFSET, uint256), self._total_assets() + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, self._total_assets() + 1, erc20.totalSupply + 10 ** convert(DECIMALS_OFFSET, uint256), roundup)


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
def _withdraw(receiver: address, owner: address, assets: uint256, shares: uint256):
    assert assets > 0 and shares > 0, "vault: zero withdrawal"
    assert receiver != empty(address), "vault: receiver is zero"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    assert self._equity() - convert(assets * _SCALE, int256) >= self._reserve(), "vault: utilization limit"
    erc20._burn(owner, shares)
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)
    extcall engine.withdraw_for_vault(receiver, assets)
