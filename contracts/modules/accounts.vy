# pragma version ~=0.4.3
"""
@title accounts
@notice Margin accounts: (owner, subaccount) -> collateral in 18 decimals.
        Subaccounts of one owner are isolated; the owner may approve
        operators that trade and withdraw for all its subaccounts (always to
        the owner). Account tiers can raise the initial margin an owner needs.
@custom:security Collateral is signed only so that a loss beyond it stays
                 visible as bad debt; it never leaves the engine below zero.
"""

from . import fixed_point

WAD: constant(uint256) = 10**18
MASK_128: constant(uint256) = 2**128 - 1
# @dev Number of account tiers (tier 0 is the default and has no extra limit).
MAX_TIERS: constant(uint256) = 8


event OperatorSet:
    owner: indexed(address)
    operator: indexed(address)
    approved: bool


event OrderBookSet:
    order_book: address


event TierSet:
    owner: indexed(address)
    tier: uint256


event TierLeverageSet:
    tier: indexed(uint256)
    max_leverage: uint256


# @dev Account word of (owner, subaccount), so a trade reads and writes one slot for
#      both: collateral (int128, 18 decimals, bits 0-127) and the open-market mask
#      (bit 128 + i set while it holds a position in market i).
_accounts: HashMap[address, HashMap[uint256, uint256]]
# @dev True when owner approved operator for all its subaccounts.
is_operator: public(HashMap[address, HashMap[address, bool]])
# @dev The order book, which trades for any account the orders its owner or operators committed.
order_book: public(address)
# @dev Tier of an owner; applies to all its subaccounts.
tier_of: public(HashMap[address, uint256])
# @dev Max leverage of a tier (18 decimals; 0: only the market's limit).
tier_max_leverage: public(HashMap[uint256, uint256])


@external
@view
def collateral(owner: address, subaccount: uint256) -> int256:
    """
    @notice Collateral of (owner, subaccount), 18 decimals (negative: bad debt).
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return The collateral.
    """
    return self._collateral(owner, subaccount)


@external
@view
def open_markets(owner: address, subaccount: uint256) -> uint256:
    """
    @notice The markets (owner, subaccount) holds a position in: bit i for market i.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return The mask.
    """
    return self._accounts[owner][subaccount] >> 128


@internal
@view
def _collateral(owner: address, subaccount: uint256) -> int256:
    return fixed_point._signed_field(self._accounts[owner][subaccount], 0, 128)


@internal
@view
def _open_markets(owner: address, subaccount: uint256) -> uint256:
    return self._accounts[owner][subaccount] >> 128


@internal
def _add_collateral(owner: address, subaccount: uint256, delta: int256):
    """
    @dev Reverts outside int128, far beyond any token supply.
    """
    word: uint256 = self._accounts[owner][subaccount]
    balance: int256 = fixed_point._signed_field(word, 0, 128) + delta
    self._accounts[owner][subaccount] = (word & ~MASK_128) | fixed_point._int128_bits(balance)


@internal
def _set_open_markets(owner: address, subaccount: uint256, mask: uint256):
    word: uint256 = self._accounts[owner][subaccount]
    self._accounts[owner][subaccount] = (word & MASK_128) | mask << 128


@internal
@view
def _check_authorized(owner: address, caller: address):
    assert caller == owner or self.is_operator[owner][caller], "accounts: not owner or operator"


@internal
@view
def _check_trader(owner: address, caller: address):
    """
    @dev Who may change a position: the owner, its operators and the order book.
         The owner is checked first, so its own trades never read the other two.
    """
    if caller != owner and caller != self.order_book:
        self._check_authorized(owner, caller)


@internal
def _set_order_book(order_book: address):
    self.order_book = order_book
    log OrderBookSet(order_book=order_book)


@internal
def _set_operator(owner: address, operator: address, approved: bool):
    assert operator != empty(address), "accounts: operator is zero"
    assert operator != owner, "accounts: owner is its own operator"
    self.is_operator[owner][operator] = approved
    log OperatorSet(owner=owner, operator=operator, approved=approved)


@internal
def _set_tier(owner: address, tier: uint256):
    assert tier < MAX_TIERS, "accounts: unknown tier"
    self.tier_of[owner] = tier
    log TierSet(owner=owner, tier=tier)


@internal
@pure
def _check_tier_leverage(tier: uint256, max_leverage: uint256):
    assert tier < MAX_TIERS, "accounts: unknown tier"
    assert max_leverage == 0 or (max_leverage >= WAD and max_leverage <= 100 * WAD), "accounts: leverage out of bounds"


@internal
def _set_tier_leverage(tier: uint256, max_leverage: uint256):
    self._check_tier_leverage(tier, max_leverage)
    self.tier_max_leverage[tier] = max_leverage
    log TierLeverageSet(tier=tier, max_leverage=max_leverage)


@internal
@view
def _initial_margin_ratio(owner: address, market_imr: uint256) -> uint256:
    """
    @dev The market's imr, raised to 1 / tier leverage where the tier is stricter.
    """
    max_leverage: uint256 = self.tier_max_leverage[self.tier_of[owner]]
    if max_leverage == 0:
        return market_imr
    return max(market_imr, (WAD * WAD + max_leverage - 1) // max_leverage)
