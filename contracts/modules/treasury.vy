# pragma version ~=0.4.3
"""
@title treasury
@notice Where the protocol's own money sits inside the engine: the LP
        vault's settled claim (its deposits plus the PnL, funding and fees it
        settled as counterparty) and the insurance fund's balance, plus the
        split of trading fees between them.
@custom:security Balances are accounting entries over tokens the engine
                 holds; they move only with an equal and opposite entry.
"""

WAD: constant(uint256) = 10**18


event FeeSplitSet:
    vault_fee_share: uint256


event VaultSet:
    vault: address


event VaultUtilizationSet:
    max_vault_utilization: uint256


# @dev The LP vault's settled claim on the engine, 18 decimals.
vault_balance: public(int256)
# @dev Insurance fund balance, 18 decimals; the sink of rounding dust.
insurance_balance: public(int256)
# @dev Share of trading fees credited to the vault (18 decimals); the rest insures.
vault_fee_share: public(uint256)
# @dev The LP vault, counterparty to the net skew; set once.
vault: public(address)
# @dev Largest share of vault equity that net open notional may use (18 decimals).
max_vault_utilization: public(uint256)


@deploy
def __init__():
    self.vault_fee_share = 8 * WAD // 10
    self.max_vault_utilization = 8 * WAD // 10


@internal
def _set_fee_split(vault_fee_share: uint256):
    assert vault_fee_share <= WAD, "treasury: fee share above 100%"
    self.vault_fee_share = vault_fee_share
    log FeeSplitSet(vault_fee_share=vault_fee_share)


@internal
def _set_vault(vault: address):
    assert self.vault == empty(address), "treasury: vault already set"
    assert vault != empty(address), "treasury: vault is zero"
    self.vault = vault
    log VaultSet(vault=vault)


@internal
def _set_max_vault_utilization(max_vault_utilization: uint256):
    assert max_vault_utilization >= WAD // 10 and max_vault_utilization <= WAD, "treasury: utilization out of bounds"
    self.max_vault_utilization = max_vault_utilization
    log VaultUtilizationSet(max_vault_utilization=max_vault_utilization)


@internal
@view
def _check_vault(caller: address):
    assert caller == self.vault, "treasury: caller is not the vault"


@internal
def _route_fee(fee: uint256):
    """
    @dev Credits the vault its share, rounded down; the insurance fund takes the rest.
    """
    to_vault: uint256 = fee * self.vault_fee_share // WAD
    self.vault_balance += convert(to_vault, int256)
    self.insurance_balance += convert(fee - to_vault, int256)
