"""Collateral: deposits, withdrawals, operators and subaccount isolation.

The contracts run in-process on titanoboa (tests/unit/conftest.py); every test rolls back.
"""

import boa
import pytest
from boa_protocol import contract, deploy_engine_stack, events, reverts

from vyperp.units import to_wad

SCALE = 10**12  # 6-decimal token to 18 decimals


def test_deposit_credits_collateral_in_18_decimals_and_logs(engine, fund, trader):
    units = fund(trader, 1_000, engine)
    engine.deposit(units, sender=trader)
    [event] = events(engine, "Deposit")
    assert engine.collateral(trader, 0) == units * SCALE
    assert (event.owner, event.subaccount, event.caller, event.amount) == (trader, 0, trader, units)


def test_anyone_may_fund_another_owners_subaccount(engine, fund, trader, other_trader):
    units = fund(other_trader, 50, engine)
    engine.deposit(units, 3, trader, sender=other_trader)
    assert engine.collateral(trader, 3) == units * SCALE
    assert engine.collateral(other_trader, 3) == 0


def test_deposit_rejects_zero_amount_and_zero_owner(engine, trader):
    with reverts("engine: zero amount"):
        engine.deposit(0, sender=trader)
    with reverts("engine: owner is zero"):
        engine.deposit(1, 0, "0x0000000000000000000000000000000000000000", sender=trader)


def test_withdraw_sends_tokens_to_owner_and_logs(engine, token, deposit, trader):
    units = deposit(trader, 1_000)
    engine.withdraw(units // 4, sender=trader)
    assert events(engine, "Withdrawal")[0].amount == units // 4
    assert token.balanceOf(trader) == units // 4
    assert engine.collateral(trader, 0) == (units - units // 4) * SCALE


def test_withdraw_reverts_on_zero_amount_stranger_and_overdraw(engine, deposit, trader, stranger):
    units = deposit(trader, 100)
    with reverts("engine: zero amount"):
        engine.withdraw(0, sender=trader)
    with reverts("accounts: not owner or operator"):
        engine.withdraw(1, 0, trader, sender=stranger)
    with reverts("engine: insufficient collateral"):
        engine.withdraw(units + 1, sender=trader)


def test_operator_withdraws_only_to_the_owner(engine, token, deposit, trader, keeper):
    units = deposit(trader, 100)
    engine.set_operator(keeper, True, sender=trader)
    assert events(engine, "OperatorSet")[0].approved
    engine.withdraw(units, 0, trader, sender=keeper)
    assert token.balanceOf(trader) == units
    assert token.balanceOf(keeper) == 0
    engine.set_operator(keeper, False, sender=trader)
    assert not engine.is_operator(trader, keeper)


def test_operator_trades_for_owner(engine, market, seeded_vault, deposit, trader, keeper):
    deposit(trader, 100_000)
    engine.set_operator(keeper, True, sender=trader)
    engine.modify_position(market, to_wad(1), to_wad(200_000), 0, trader, sender=keeper)
    assert engine.open_positions(trader, 0, market).size == to_wad(1)
    assert engine.open_positions(keeper, 0, market).size == 0


def test_subaccounts_are_isolated(engine, market, seeded_vault, deposit, trader):
    deposit(trader, 20_000, subaccount=1)
    deposit(trader, 1_000, subaccount=2)
    engine.modify_position(market, to_wad(1), to_wad(200_000), 1, sender=trader)
    assert engine.account_health(trader, 2).notional == 0
    with reverts("engine: insufficient margin"):
        engine.modify_position(market, to_wad(1), to_wad(200_000), 2, sender=trader)


def test_withdrawal_keeps_initial_margin(
    engine, lens, add_market, market_config, seeded_vault, deposit, trader
):
    # without funding, free collateral does not drift between the view and the withdrawal
    market = add_market(market_config.with_(interest_rate=0, max_funding_rate=0), atomic_trading=True)
    deposit(trader, 30_000)
    engine.modify_position(market, to_wad(1), to_wad(200_000), sender=trader)
    free = lens.free_collateral(trader, 0)
    assert free > 0
    with reverts("engine: insufficient margin"):
        engine.withdraw(free + 1, sender=trader)
    engine.withdraw(free, sender=trader)
    health = engine.account_health(trader, 0)
    assert health.collateral + min(0, health.unrealized_pnl) - health.funding_owed >= health.initial_margin


def test_unrealized_profit_is_not_withdrawable(
    engine, lens, market, seeded_vault, deposit, trader, oracle, set_price
):
    units = deposit(trader, 30_000)
    engine.modify_position(market, to_wad(1), to_wad(200_000), sender=trader)
    # +30 % in two steps inside the breaker move (one step beyond it halts the market, S4)
    set_price(oracle, 170_000)
    engine.checkpoint_funding([market], sender=trader)
    set_price(oracle, 195_000)
    assert engine.account_health(trader, 0).unrealized_pnl > to_wad(40_000)
    assert lens.free_collateral(trader, 0) < units
    with reverts("engine: insufficient collateral"):
        engine.withdraw(units + 1, sender=trader)


ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def arm(token, account, spender, fee_bps=0, return_false=False, reenter=ZERO_ADDRESS, amount=10_000):
    """Funds an account with the hostile token, approves a spender, then sets the misbehaviour."""
    token.mint(account, amount, sender=account)
    token.approve(spender, amount, sender=account)
    token.configure(fee_bps, return_false, reenter, sender=account)


@pytest.fixture
def hostile_protocol(admin, guardian):
    """An engine and vault over a HostileToken with 6 decimals, deployed as the protocol is."""
    with boa.env.prank(admin):
        token = contract("test/HostileToken").deploy(6)
    return deploy_engine_stack(admin, guardian, token=token)


def test_fee_on_transfer_token_deposit_credits_what_arrived_hostile_token(hostile_protocol, trader):
    token, engine = hostile_protocol.token, hostile_protocol.engine
    arm(token, trader, engine, fee_bps=100)
    engine.deposit(10_000, sender=trader)
    assert engine.collateral(trader, 0) == 9_900 * SCALE


def test_token_returning_false_reverts_deposit_and_withdraw_hostile_token(hostile_protocol, trader):
    token, engine = hostile_protocol.token, hostile_protocol.engine
    arm(token, trader, engine)
    engine.deposit(10_000, sender=trader)
    token.configure(0, True, ZERO_ADDRESS, sender=trader)
    with reverts("engine: transfer failed"):
        engine.deposit(1, sender=trader)
    with reverts("engine: transfer failed"):
        engine.withdraw(1, sender=trader)
    assert engine.collateral(trader, 0) == 10_000 * SCALE


def test_reentrant_token_cannot_reenter_the_engine_hostile_token(hostile_protocol, trader):
    token, engine = hostile_protocol.token, hostile_protocol.engine
    arm(token, trader, engine)
    engine.deposit(5_000, sender=trader)
    token.configure(0, False, engine.address, sender=trader)
    with reverts():
        engine.deposit(5_000, sender=trader)
    assert engine.collateral(trader, 0) == 5_000 * SCALE
    assert token.balanceOf(engine) == 5_000


def test_vault_refuses_fee_on_transfer_token_hostile_token(hostile_protocol, lp):
    token, vault = hostile_protocol.token, hostile_protocol.vault
    arm(token, lp, vault, fee_bps=100)
    with reverts("vault: fee-on-transfer token"):
        vault.deposit(10_000, lp, sender=lp)
    assert vault.balanceOf(lp) == 0


def test_vault_deposit_reverts_when_token_returns_false_hostile_token(hostile_protocol, lp):
    token, vault = hostile_protocol.token, hostile_protocol.vault
    arm(token, lp, vault, return_false=True)
    with reverts("vault: transfer failed"):
        vault.deposit(10_000, lp, sender=lp)
    assert vault.totalSupply() == 0
