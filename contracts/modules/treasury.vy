# pragma version ~=0.4.3
"""
@title treasury
@notice Where the protocol's own money sits inside the engine: the LP
        vault's settled claim (its deposits plus the PnL, funding and fees it
        settled as counterparty) and the insurance fund's balance, plus the
        split of trading fees between them, and the counterparty cap (S2):
        traders' profit is paid up to max_pnl_factor of the vault balance.
@custom:security Balances are accounting entries over tokens the engine
                 holds; they move only with an equal and opposite entry. The
                 vault balance never goes below zero (S1): a payment to a
                 trader that the balance cannot make is not made (the
                 trader's credit is cut by the same amount), so no trader is
                 ever paid from another's collateral or the insurance fund.
"""

from . import fixed_point

WAD: constant(uint256) = 10**18
SHARE_SHIFT: constant(uint256) = 208
MASK_34: constant(uint256) = 2**34 - 1
ADL_TARGET_SHIFT: constant(uint256) = 34
ADL_ACTIVE_BIT: constant(uint256) = 1 << 68
MASK_68: constant(uint256) = 2**68 - 1
ADL_SINCE_SHIFT: constant(uint256) = 69
# @dev A deleveraging episode ends this long after its last deleverage: the hysteresis must not
#      let a later rise to between adl_target and max_pnl_factor deleverage winners when the
#      cap was never crossed again (the flag is only cleared by a deleverage that ends at or
#      under adl_target, and none runs once the ratio falls there by itself).
ADL_EPISODE: constant(uint256) = 3600
BALANCES_MASK: constant(uint256) = 2**208 - 1
# @dev Waterfall steps, as ShortfallCovered.source.
FROM_INSURANCE: constant(uint256) = 1
FROM_VAULT: constant(uint256) = 2


event FeeSplitSet:
    vault_fee_share: uint256


event VaultSet:
    vault: address


event VaultUtilizationSet:
    max_vault_utilization: uint256


event ShortfallCovered:
    owner: indexed(address)
    subaccount: indexed(uint256)
    source: indexed(uint256)
    amount: uint256


event VaultBadDebtRepaid:
    amount: uint256


event InsuranceFloorSet:
    insurance_floor: uint256


event InsuranceWithdrawn:
    receiver: indexed(address)
    amount: uint256


event PnlCapsSet:
    max_pnl_factor: uint256
    adl_target: uint256


event ProfitCapped:
    market_id: indexed(uint256)
    realized_pnl: uint256
    paid: uint256


# @dev The two balances and the fee split in one word, since a trade reads all three and
#      moves both balances: the LP vault's settled claim on the engine (int104, bits 0-103)
#      and the insurance fund (int104, 104-207, the sink of rounding dust), 18 decimals;
#      the vault's share of trading fees in steps of 1e-10 (208-241; the rest insures).
_balances: uint256
# @dev The LP vault, counterparty to the net skew; set once.
vault: public(address)
# @dev Largest share of vault equity that net open notional may use (18 decimals).
max_vault_utilization: public(uint256)
# @dev Shortfall the LP vault absorbed and the insurance fund has not repaid yet, 18 decimals.
vault_bad_debt: public(uint256)
# @dev Insurance balance the admin may never withdraw below, 18 decimals.
insurance_floor: public(uint256)
# @dev The counterparty cap (S2) in one word, steps of 1e-10: max_pnl_factor (bits 0-33),
#      the share of the vault balance traders' profit may reach, and adl_target (34-67),
#      the ratio deleveraging brings it back under; bit 68 is set while deleveraging runs,
#      bits 69-108 hold the time of the deleverage that set it (an episode lasts ADL_EPISODE).
_pnl_caps: uint256


@external
@view
def vault_balance() -> int256:
    """
    @notice The LP vault's settled claim on the engine, 18 decimals.
    @return The balance.
    """
    return self._vault_balance()


@external
@view
def insurance_balance() -> int256:
    """
    @notice The insurance fund's balance, 18 decimals.
    @return The balance.
    """
    return self._insurance_balance()


@external
@view
def vault_fee_share() -> uint256:
    """
    @notice Share of trading fees credited to the vault (18 decimals); the rest insures.
    @return The share.
    """
    return self._vault_fee_share(self._balances)


@external
@view
def max_pnl_factor() -> uint256:
    """
    @notice Share of the vault balance traders' profit in a market may reach
            before closes are paid pro rata and deleveraging opens (18 decimals).
    @return The factor.
    """
    return self._max_pnl_factor()


@external
@view
def adl_target() -> uint256:
    """
    @notice Profit-to-vault ratio that deleveraging brings traders back under (18 decimals).
    @return The target.
    """
    return self._adl_target()


@internal
@pure
def _vault_fee_share(word: uint256) -> uint256:
    return unsafe_mul((word >> SHARE_SHIFT) & MASK_34, fixed_point.FRACTION_STEP)


@internal
@view
def _vault_balance() -> int256:
    return fixed_point._signed_field(self._balances, 0, 104)


@internal
@view
def _insurance_balance() -> int256:
    return fixed_point._signed_field(self._balances, 104, 104)


@internal
def _move(to_vault: int256, to_insurance: int256):
    """
    @dev Adds to the two balances (negative: takes); reverts outside int104.
    """
    word: uint256 = self._balances
    vault_balance: int256 = fixed_point._signed_field(word, 0, 104) + to_vault
    insurance_balance: int256 = fixed_point._signed_field(word, 104, 104) + to_insurance
    self._balances = fixed_point._int104_bits(vault_balance) | fixed_point._int104_bits(insurance_balance) << 104 | (word & ~BALANCES_MASK)


@deploy
def __init__():
    self._balances = (8 * WAD // 10 // fixed_point.FRACTION_STEP) << SHARE_SHIFT
    self.max_vault_utilization = 8 * WAD // 10
    self._set_pnl_caps(WAD // 2, 45 * WAD // 100)


@internal
def _set_fee_split(vault_fee_share: uint256):
    assert vault_fee_share <= WAD, "treasury: fee share above 100%"
    assert vault_fee_share % fixed_point.FRACTION_STEP == 0, "treasury: fee share not a multiple of 1e-10"
    word: uint256 = self._balances
    self._balances = (word & BALANCES_MASK) | (vault_fee_share // fixed_point.FRACTION_STEP) << SHARE_SHIFT
    log FeeSplitSet(vault_fee_share=vault_fee_share)


@internal
def _set_vault(vault: address):
    assert self.vault == empty(address), "treasury: vault already set"
    assert vault != empty(address), "treasury: vault is zero"
    self.vault = vault
    log VaultSet(vault=vault)


@internal
@pure
def _check_max_vault_utilization(max_vault_utilization: uint256):
    assert max_vault_utilization >= WAD // 10 and max_vault_utilization <= WAD, "treasury: utilization out of bounds"


@internal
def _set_max_vault_utilization(max_vault_utilization: uint256):
    self._check_max_vault_utilization(max_vault_utilization)
    self.max_vault_utilization = max_vault_utilization
    log VaultUtilizationSet(max_vault_utilization=max_vault_utilization)


@internal
@view
def _check_vault(caller: address):
    assert caller == self.vault, "treasury: caller is not the vault"


@internal
def _book_trade(to_vault: int256, fee: uint256) -> int256:
    """
    @dev Books a trade in one write: to_vault (the vault's side of the PnL and
         funding; negative: the vault pays) plus the vault's share of the fee,
         rounded down; the insurance fund takes the rest of the fee. The vault
         pays at most its balance (S1): returns the part of its payment it
         could not make, which the caller takes off the trader's credit.
    """
    word: uint256 = self._balances
    fee_to_vault: uint256 = fee * self._vault_fee_share(word) // WAD
    vault_side: int256 = to_vault + convert(fee_to_vault, int256)
    vault_balance: int256 = fixed_point._signed_field(word, 0, 104)
    unpaid: int256 = 0
    if vault_side < 0:
        unpaid = max(min(-vault_side - vault_balance, -vault_side), 0)
    self._move(vault_side + unpaid, convert(fee - fee_to_vault, int256))
    return unpaid


@internal
def _capped_profit(market_id: uint256, realized: int256, market_pnl: int256) -> int256:
    """
    @dev S2: a realized profit is paid times min(1, cap / market_pnl), rounded
         down, where market_pnl is traders' net PnL in the market at the close
         price (before the close) and cap = max_pnl_factor * vault balance.
         Losses pass unchanged.
    """
    if realized <= 0:
        return realized
    cap: int256 = fixed_point._mul_floor(max(self._vault_balance(), 0), convert(self._max_pnl_factor(), int256))
    if market_pnl <= cap:
        return realized
    paid: int256 = realized * cap // market_pnl
    log ProfitCapped(market_id=market_id, realized_pnl=convert(realized, uint256), paid=convert(paid, uint256))
    return paid


@internal
@view
def _max_pnl_factor() -> uint256:
    return unsafe_mul(self._pnl_caps & MASK_34, fixed_point.FRACTION_STEP)


@internal
@view
def _adl_target() -> uint256:
    return unsafe_mul((self._pnl_caps >> ADL_TARGET_SHIFT) & MASK_34, fixed_point.FRACTION_STEP)


@internal
@pure
def _check_pnl_caps(max_pnl_factor: uint256, adl_target: uint256):
    assert max_pnl_factor >= WAD // 100 and max_pnl_factor <= WAD, "treasury: max_pnl_factor out of bounds"
    assert adl_target <= max_pnl_factor, "treasury: adl_target above max_pnl_factor"
    assert max_pnl_factor % fixed_point.FRACTION_STEP == 0 and adl_target % fixed_point.FRACTION_STEP == 0, "treasury: pnl caps not a multiple of 1e-10"


@internal
def _set_pnl_caps(max_pnl_factor: uint256, adl_target: uint256):
    self._check_pnl_caps(max_pnl_factor, adl_target)
    self._pnl_caps = (self._pnl_caps & ~MASK_68) | adl_target // fixed_point.FRACTION_STEP << ADL_TARGET_SHIFT | max_pnl_factor // fixed_point.FRACTION_STEP
    log PnlCapsSet(max_pnl_factor=max_pnl_factor, adl_target=adl_target)


@internal
def _set_adl_active(active: bool):
    word: uint256 = self._pnl_caps & MASK_68
    if active:
        word |= ADL_ACTIVE_BIT | block.timestamp << ADL_SINCE_SHIFT
    self._pnl_caps = word


@internal
@view
def _adl_active() -> bool:
    """
    @dev Deleveraging runs: the last deleverage left the ratio above adl_target
         and was at most ADL_EPISODE ago.
    """
    word: uint256 = self._pnl_caps
    return word & ADL_ACTIVE_BIT != 0 and block.timestamp <= (word >> ADL_SINCE_SHIFT) + ADL_EPISODE


@internal
def _cover_shortfall(owner: address, subaccount: uint256, shortfall: uint256):
    """
    @dev The waterfall after an account's collateral is spent: the insurance
         fund pays what it holds, the LP vault the rest (recorded as its bad
         debt, which later insurance income repays first).
    """
    from_insurance: uint256 = min(shortfall, convert(max(self._insurance_balance(), 0), uint256))
    if from_insurance > 0:
        self._move(0, -convert(from_insurance, int256))
        log ShortfallCovered(owner=owner, subaccount=subaccount, source=FROM_INSURANCE, amount=from_insurance)
    from_vault: uint256 = shortfall - from_insurance
    if from_vault > 0:
        self._move(-convert(from_vault, int256), 0)
        self.vault_bad_debt += from_vault
        log ShortfallCovered(owner=owner, subaccount=subaccount, source=FROM_VAULT, amount=from_vault)


@internal
def _repay_vault_bad_debt():
    """
    @dev Moves insurance to the vault until the vault's bad debt is repaid.
    """
    amount: uint256 = min(self.vault_bad_debt, convert(max(self._insurance_balance(), 0), uint256))
    if amount > 0:
        self._move(convert(amount, int256), -convert(amount, int256))
        self.vault_bad_debt -= amount
        log VaultBadDebtRepaid(amount=amount)


@internal
def _set_insurance_floor(insurance_floor: uint256):
    self.insurance_floor = insurance_floor
    log InsuranceFloorSet(insurance_floor=insurance_floor)


@internal
def _debit_insurance(amount: uint256):
    """
    @dev An admin withdrawal: never while the vault carries bad debt, never below the floor.
    """
    assert self.vault_bad_debt == 0, "treasury: bad debt pending"
    assert self._insurance_balance() >= convert(self.insurance_floor + amount, int256), "treasury: insurance below floor"
    self._move(0, -convert(amount, int256))
