"""Liquidation, the bad-debt waterfall, insurance and auto-deleveraging (contracts/modules/
liquidation.vy, treasury.vy; Engine, EngineRisk and EngineAdmin entry points), on titanoboa
(tests/boa_protocol.py): every test runs in-process inside its own anchor.

Markets here have no fees, premium or funding unless a test is about them, so the expected
figures follow from PROTOCOL.md's definitions alone. Defaults: fee 0.5 %, reward in [5, 1,000],
buffer 25 %, partial liquidation from 100,000 of notional; the counterparty cap (S2): profit
in a market above 50 % of the vault balance is paid pro rata, and ADL runs from there to 45 %.
"""

from decimal import Decimal

import boa
import pytest
from boa_protocol import contract, deploy_engine_stack, events, reverts, single

from vyperp.units import WAD, from_wad, to_wad

BUY_LIMIT = to_wad(10_000_000)
NOT_LIQUIDATABLE = "engine: account not liquidatable"
MISSING_ROLE = "access_control: account is missing role"
ZERO = "0x0000000000000000000000000000000000000000"
INSURANCE, VAULT = 1, 2


@pytest.fixture
def plain_config(market_config):
    """No fees, no premium, no funding: fills at the index; a breaker that never trips."""
    return market_config.with_(
        maker_fee=0, taker_fee=0, max_premium=0, interest_rate=0, max_funding_rate=0, breaker_move=WAD
    )


@pytest.fixture
def plain_market(add_market, plain_config, seeded_vault):
    return add_market(plain_config, atomic_trading=True)


@pytest.fixture
def btc_long(engine, plain_market, deposit, trader):
    """V1..V3's account: long 10 at 150,000 with 300,000 of collateral (5x)."""
    deposit(trader, 300_000)
    engine.modify_position(plain_market, to_wad(10), BUY_LIMIT, sender=trader)
    return plain_market


def books(engine, accounts):
    """Collateral of the given accounts plus the vault's and insurance balances (18 decimals)."""
    collateral = sum(engine.collateral(a, 0) for a in accounts)
    return collateral + engine.vault_balance() + engine.insurance_balance()


def assert_solvent(engine, token, accounts):
    """Every claim on the engine is backed by tokens it holds, exactly (no position left open)."""
    assert token.balanceOf(engine) * engine.collateral_scale() == books(engine, accounts)


# ---------------------------------------------------------------------------
# Vectors through real liquidations
# ---------------------------------------------------------------------------


def test_v2_liquidation_at_the_bankruptcy_price_closes_everything_and_leaves_nothing(
    engine, engine_risk, token, btc_long, trader, keeper, oracle, set_price
):
    set_price(oracle, 120_000)
    assert engine.account_health(trader, 0).equity == 0
    vault_before = engine.vault_balance()
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert (log.owner, log.liquidator, log.full) == (trader, keeper, True)
    assert log.closed_notional == to_wad(1_200_000)
    assert log.fee == to_wad(6_000)
    # equity 0 pays nothing: no reward, no insurance fee, no bad debt
    assert (log.reward, log.insurance_fee) == (0, 0)
    assert not events(engine_risk, "BadDebt")
    closed = single(engine_risk, "PositionLiquidated")
    assert (closed.size_delta, closed.new_size, closed.price) == (-to_wad(10), 0, to_wad(120_000))
    assert closed.realized_pnl == -to_wad(300_000)
    assert engine.open_positions(trader, 0, btc_long).size == 0
    assert engine.open_markets(trader, 0) == 0
    assert engine.collateral(trader, 0) == 0
    assert engine.vault_balance() - vault_before == to_wad(300_000)
    assert_solvent(engine, token, [trader, keeper])


def test_v3_liquidation_starts_exactly_below_the_liquidation_price_and_is_partial(
    engine, engine_risk, lens, btc_long, trader, keeper, oracle, set_price
):
    set_price(oracle, "126315.80")
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(trader, 0, sender=keeper)
    set_price(oracle, "126315.78")
    before = engine.account_health(trader, 0)
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert not log.full
    # f = (1.25 MM + min_reward - E) / (1.25 MM - 0.5 % N): about 21.7 % of the position
    target = Decimal(before.maintenance_margin) * Decimal("1.25")
    full_fee = Decimal(before.notional) * Decimal("0.005")
    fraction = (target + Decimal(5 * WAD) - Decimal(before.equity)) / (target - full_fee)
    left = engine.open_positions(trader, 0, btc_long).size
    assert abs(Decimal(to_wad(10) - left) / to_wad(10) - fraction) < Decimal("1e-15")
    assert log.reward == to_wad(1_000)  # the fee, ~1,373, is above max_reward
    assert log.insurance_fee == log.fee - log.reward
    after = engine.account_health(trader, 0)
    assert after.equity >= after.maintenance_margin * 5 // 4
    assert not lens.is_liquidatable(trader, 0)
    assert engine.collateral(keeper, 0) == log.reward
    # what the account lost is the charge: closing at mark moves no equity (but wei of rounding)
    assert abs(before.equity - after.equity - log.fee) <= 2


def test_v5_short_is_liquidated_just_above_its_exact_liquidation_price(
    lens, engine, engine_risk, plain_market, deposit, trader, keeper, oracle, set_price
):
    deposit(trader, 150_000)
    engine.modify_position(plain_market, -to_wad(5), 0, sender=trader)
    set_price(oracle, "171428.56")
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(trader, 0, sender=keeper)
    set_price(oracle, "171428.58")
    engine_risk.liquidate(trader, 0, sender=keeper)
    closed = single(engine_risk, "PositionLiquidated")
    assert closed.size_delta > 0 and closed.price == to_wad("171428.58")
    assert not lens.is_liquidatable(trader, 0)


def test_v12_account_at_six_point_four_percent_is_liquidated(
    lens, engine, engine_risk, add_market, plain_config, seeded_vault, deposit, trader, keeper, oracle,
    set_price,
):
    set_price(oracle, 100_000)
    market_id = add_market(plain_config.with_(imr=WAD // 10, mmr=65 * WAD // 1000), atomic_trading=True)
    deposit(trader, 100_000)
    engine.modify_position(market_id, to_wad(10), BUY_LIMIT, sender=trader)
    set_price(oracle, 96_300)
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(trader, 0, sender=keeper)
    set_price(oracle, 96_140)
    health = engine.account_health(trader, 0)
    assert Decimal(health.equity) / health.notional < Decimal("0.064")
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert not lens.is_liquidatable(trader, 0)


# ---------------------------------------------------------------------------
# Fees and rewards
# ---------------------------------------------------------------------------


def test_small_account_is_closed_in_full_and_pays_the_minimum_reward(
    engine, engine_risk, token, plain_market, deposit, trader, keeper, oracle, set_price
):
    deposit(trader, 1_000)
    engine.modify_position(plain_market, to_wad("0.05"), BUY_LIMIT, sender=trader)  # 7,500 notional
    set_price(oracle, 131_000)  # equity 50, MM 327.5
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert log.full and log.closed_notional == to_wad(6_550)
    assert log.fee == to_wad("32.75")
    assert (log.reward, log.insurance_fee) == (to_wad("32.75"), 0)
    assert engine.collateral(trader, 0) == to_wad(50) - to_wad("32.75")
    assert_solvent(engine, token, [trader, keeper])


def test_fee_below_the_minimum_reward_pays_the_minimum(
    engine, engine_risk, plain_market, deposit, trader, keeper, oracle, set_price
):
    deposit(trader, 100)
    engine.modify_position(plain_market, to_wad("0.005"), BUY_LIMIT, sender=trader)  # 750 notional
    set_price(oracle, 136_000)  # equity 30 < MM 34; fee 3.4 < the 5 minimum
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert log.fee == to_wad("3.4")
    assert (log.reward, log.insurance_fee) == (to_wad(5), 0)
    assert engine.collateral(trader, 0) == to_wad(25)


def test_reward_is_capped_at_what_the_account_has(
    engine, engine_risk, plain_market, deposit, trader, keeper, oracle, set_price, token
):
    deposit(trader, 100)
    engine.modify_position(plain_market, to_wad("0.005"), BUY_LIMIT, sender=trader)  # 750 notional
    set_price(oracle, 130_000)  # equity 0 exactly; fee 3.25 < min 5, but nothing to pay it with
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert (log.reward, log.insurance_fee) == (0, 0)
    assert engine.collateral(keeper, 0) == 0
    assert_solvent(engine, token, [trader, keeper])


def test_large_fee_pays_max_reward_and_insurance_up_to_what_is_left(
    engine, engine_risk, plain_market, deposit, trader, keeper, oracle, set_price
):
    deposit(trader, 300_000)
    engine.modify_position(plain_market, to_wad(10), BUY_LIMIT, sender=trader)
    set_price(oracle, 120_600)  # equity 6,000: no partial close can reach the target
    insurance_before = engine.insurance_balance()
    engine_risk.liquidate(trader, 0, sender=keeper)
    log = single(engine_risk, "Liquidation")
    assert log.full and log.fee == to_wad(6_030)
    # the reward (capped at 1,000) first, then insurance with what remains of the 6,000
    assert (log.reward, log.insurance_fee) == (to_wad(1_000), to_wad(5_000))
    assert engine.insurance_balance() - insurance_before == to_wad(5_000)
    assert engine.collateral(trader, 0) == 0
    assert not events(engine_risk, "BadDebt")


# ---------------------------------------------------------------------------
# Bad debt and the waterfall
# ---------------------------------------------------------------------------


def test_ninety_percent_gap_with_empty_insurance_reaches_the_vault(
    engine, engine_risk, token, btc_long, trader, keeper, oracle, set_price
):
    assert engine.insurance_balance() == 0
    set_price(oracle, 15_000)  # loss 1,350,000 on 300,000 of collateral
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert single(engine_risk, "BadDebt").shortfall == to_wad(1_050_000)
    covered = events(engine_risk, "ShortfallCovered")
    assert [(c.source, c.amount) for c in covered] == [(VAULT, to_wad(1_050_000))]
    assert engine.vault_bad_debt() == to_wad(1_050_000)
    assert engine.collateral(trader, 0) == 0
    log = single(engine_risk, "Liquidation")
    assert log.full and (log.reward, log.insurance_fee) == (0, 0)
    assert_solvent(engine, token, [trader, keeper])


def test_gap_is_covered_by_insurance_first_then_the_vault(
    engine, engine_risk, token, market, plain_market, deposit, trader, other_trader, keeper, oracle, set_price
):
    # trading fees fill the insurance fund (20 % of them)
    deposit(other_trader, 2_000_000)
    engine.modify_position(market, to_wad(100), BUY_LIMIT, sender=other_trader)
    engine.close_position(market, 0, sender=other_trader)
    insurance = engine.insurance_balance()
    assert insurance > 0
    deposit(trader, 300_000)
    engine.modify_position(plain_market, to_wad(10), BUY_LIMIT, sender=trader)
    set_price(oracle, 15_000)
    engine_risk.liquidate(trader, 0, sender=keeper)
    covered = [(c.source, c.amount) for c in events(engine_risk, "ShortfallCovered")]
    assert covered == [(INSURANCE, insurance), (VAULT, to_wad(1_050_000) - insurance)]
    assert engine.insurance_balance() == 0
    assert engine.vault_bad_debt() == to_wad(1_050_000) - insurance
    assert_solvent(engine, token, [trader, other_trader, keeper])


def test_owed_funding_beyond_collateral_still_liquidates(
    engine, engine_risk, add_market, plain_config, seeded_vault, deposit, trader, keeper, oracle, set_price,
    token,
):
    # dynamic funding at full velocity reaches the 5 % per 8 h cap within half a day
    config = plain_config.with_(
        dynamic_funding=True, skew_scale=WAD, max_funding_velocity=WAD // 10, max_funding_rate=WAD // 20
    )
    market_id = add_market(config, atomic_trading=True)
    deposit(trader, 30_000)
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)  # 5x
    boa.env.time_travel(seconds=6 * 86400)
    set_price(oracle, 150_000)
    health = engine.account_health(trader, 0)
    assert health.funding_owed > to_wad(30_000) and health.equity < 0
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert single(engine_risk, "BadDebt").shortfall > 0
    assert engine.open_positions(trader, 0, market_id).size == 0
    assert engine.collateral(trader, 0) == 0
    assert_solvent(engine, token, [trader, keeper])


# ---------------------------------------------------------------------------
# Batches, races and who may liquidate
# ---------------------------------------------------------------------------


def test_batch_liquidates_the_liquidatable_and_skips_the_rest(
    engine, engine_risk, plain_market, deposit, trader, other_trader, stranger, keeper, lp, oracle, set_price
):
    for account in (trader, other_trader, stranger):
        deposit(account, 300_000)
    engine.modify_position(plain_market, to_wad(10), BUY_LIMIT, sender=trader)
    engine.modify_position(plain_market, to_wad(10), BUY_LIMIT, sender=other_trader)
    engine.modify_position(plain_market, to_wad(1), BUY_LIMIT, sender=stranger)  # 1x: healthy
    set_price(oracle, 125_000)
    refs = [(a, 0) for a in (trader, stranger, other_trader, lp, trader)]
    assert engine_risk.liquidate_many(refs, sender=keeper) == [True, False, True, False, False]
    logs = events(engine_risk, "Liquidation")
    assert [log.owner for log in logs] == [trader, other_trader]
    assert engine.collateral(keeper, 0) == sum(log.reward for log in logs) > 0
    assert engine.open_positions(stranger, 0, plain_market).size == to_wad(1)


def test_two_liquidations_in_one_block_pay_one_reward(
    engine, engine_risk, btc_long, trader, keeper, stranger, oracle, set_price
):
    # boa runs consecutive calls in the same block until the clock moves
    set_price(oracle, 123_000)
    block = boa.env.evm.patch.block_number
    engine_risk.liquidate(trader, 0, sender=keeper)
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(trader, 0, sender=stranger)
    assert boa.env.evm.patch.block_number == block
    assert engine.collateral(keeper, 0) > 0 and engine.collateral(stranger, 0) == 0


def test_healthy_and_flat_accounts_are_not_liquidatable(engine_risk, btc_long, trader, other_trader, keeper):
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(trader, 0, sender=keeper)
    with reverts(NOT_LIQUIDATABLE):
        engine_risk.liquidate(other_trader, 0, sender=keeper)


def test_liquidation_works_while_paused(
    engine, engine_admin, engine_risk, btc_long, trader, keeper, guardian, oracle, set_price
):
    engine_admin.pause(sender=guardian)
    set_price(oracle, 120_000)
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert engine.open_positions(trader, 0, btc_long).size == 0


@pytest.mark.parametrize("price", [126_000, 121_000, 100_000])
def test_self_liquidation_from_a_second_account_never_gains(
    engine, engine_risk, btc_long, trader, other_trader, oracle, set_price, price
):
    """The pair's claim (an account cannot lose more than its collateral) never grows."""
    set_price(oracle, price)
    before = max(engine.account_health(trader, 0).equity, 0) + engine.collateral(other_trader, 0)
    engine_risk.liquidate(trader, 0, sender=other_trader)
    after = max(engine.account_health(trader, 0).equity, 0) + engine.collateral(other_trader, 0)
    assert after <= before


def test_right_after_an_open_or_a_withdrawal_the_account_is_not_liquidatable(
    lens, engine, plain_market, deposit, trader
):
    deposit(trader, 15_000)
    engine.modify_position(plain_market, to_wad(1), BUY_LIMIT, sender=trader)  # exactly 10x
    assert not lens.is_liquidatable(trader, 0)
    deposit(trader, 15_000)
    engine.withdraw(15_000 * 10**6, sender=trader)
    assert not lens.is_liquidatable(trader, 0)


# ---------------------------------------------------------------------------
# Auto-deleveraging
# ---------------------------------------------------------------------------


@pytest.fixture
def deploy(admin, guardian):
    """Factory: a fresh engine (no market), vault and lens over `token`, by default a new
    6-decimal DevnetUSD that admin mints."""

    def build(token=None):
        return deploy_engine_stack(admin, guardian, token=token)

    return build


@pytest.fixture
def small_vault_market(deploy, admin, lp, plain_config):
    """A protocol whose vault holds 100,000 and one plain market."""
    small = deploy()
    fund_small(small, lp, 100_000, small.vault, admin)
    small.vault.deposit(100_000 * 10**6, lp, sender=lp)
    return small, small.add_market(plain_config, atomic_trading=True)


def fund_small(small, account, amount, spender, admin):
    units = amount * 10**6
    small.token.mint(account, units, sender=admin)
    small.token.approve(spender, units, sender=account)
    return units


def test_deleveraging_opens_when_traders_profit_outgrows_the_vault(
    small_vault_market, trader, keeper, admin, oracle, set_price
):
    small, market_id = small_vault_market
    engine, engine_risk = small.engine, small.engine_risk
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.modify_position(market_id, to_wad(2), BUY_LIMIT, sender=trader)  # 300,000 long
    set_price(oracle, 165_000)  # profit 30,000: 30 % of the vault
    assert not engine_risk.adl_eligible()
    with reverts("liquidation: deleveraging not allowed"):
        engine_risk.deleverage(market_id, trader, 0, to_wad(1), sender=keeper)
    set_price(oracle, 180_000)  # profit 60,000 > 50 % of 100,000
    assert engine_risk.adl_eligible()
    with reverts("liquidation: size out of range"):
        engine_risk.deleverage(market_id, trader, 0, to_wad(3), sender=keeper)
    with reverts("liquidation: size out of range"):
        engine_risk.deleverage(market_id, trader, 0, 0, sender=keeper)
    engine_risk.deleverage(market_id, trader, 0, to_wad(1), sender=keeper)
    log = single(engine_risk, "Deleveraged")
    assert (log.size_delta, log.new_size, log.price) == (-to_wad(1), to_wad(1), to_wad(180_000))
    # S2: the market's profit (60,000) is above the cap (50,000): paid 30,000 * 50,000 / 60,000
    assert log.realized_pnl == to_wad(25_000) and log.caller == keeper
    capped = single(engine_risk, "ProfitCapped")
    assert (capped.market_id, capped.realized_pnl, capped.paid) == (market_id, to_wad(30_000), to_wad(25_000))
    assert engine.collateral(trader, 0) == to_wad(125_000)
    assert not engine_risk.adl_eligible()  # profit 30,000 of a vault now at 75,000: 40 % < 45 %


def test_deleveraging_refuses_a_losing_position(
    small_vault_market, trader, other_trader, keeper, admin, oracle, set_price
):
    small, market_id = small_vault_market
    engine, engine_risk = small.engine, small.engine_risk
    for account, size in ((trader, 2), (other_trader, -1)):
        engine.deposit(fund_small(small, account, 100_000, engine, admin), sender=account)
        engine.modify_position(market_id, to_wad(size), BUY_LIMIT if size > 0 else 0, sender=account)
    set_price(oracle, 210_000)  # traders' net profit 60,000 > 50 % of 100,000
    assert engine_risk.adl_eligible()
    with reverts("liquidation: position not in profit"):
        engine_risk.deleverage(market_id, other_trader, 0, to_wad(1), sender=keeper)
    with reverts("markets: unknown market"):
        engine_risk.deleverage(market_id + 1, trader, 0, to_wad(1), sender=keeper)


def test_fee_dust_in_an_insurance_fund_that_owes_the_vault_does_not_hold_deleveraging_off(
    small_vault_market, market_config, trader, other_trader, stranger, keeper, admin, oracle, set_price
):
    small, market_id = small_vault_market
    engine, engine_risk = small.engine, small.engine_risk
    fee_market = small.add_market(market_config.with_(breaker_move=WAD), atomic_trading=True)
    engine.deposit(fund_small(small, trader, 20_000, engine, admin), sender=trader)
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    set_price(oracle, 125_000)
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert engine.vault_bad_debt() == to_wad(5_000)
    # a little trading refills the insurance fund with dust
    engine.deposit(fund_small(small, other_trader, 10_000, engine, admin), sender=other_trader)
    engine.modify_position(fee_market, to_wad("0.1"), BUY_LIMIT, sender=other_trader)
    engine.close_position(fee_market, 0, sender=other_trader)
    dust = engine.insurance_balance()
    assert 0 < dust < to_wad(10)
    # traders' profit then outgrows half the vault
    engine.deposit(fund_small(small, stranger, 60_000, engine, admin), sender=stranger)
    engine.modify_position(market_id, to_wad(4), BUY_LIMIT, sender=stranger)
    set_price(oracle, 145_000)
    assert engine_risk.adl_eligible()
    engine_risk.deleverage(market_id, stranger, 0, to_wad(1), sender=keeper)
    capped = single(engine_risk, "ProfitCapped")
    assert capped.realized_pnl == to_wad(20_000)
    assert single(engine_risk, "Deleveraged").realized_pnl == capped.paid < to_wad(20_000)
    assert engine.insurance_balance() == 0
    assert engine.vault_bad_debt() == to_wad(5_000) - dust


def test_deleveraging_opens_by_the_ratio_whatever_the_insurance_holds(
    small_vault_market, market_config, trader, other_trader, keeper, admin, oracle, set_price
):
    """S2: ADL eligibility follows the profit-to-vault ratio; it used to wait for an empty insurance fund."""
    small, market_id = small_vault_market
    engine, engine_risk = small.engine, small.engine_risk
    fee_market = small.add_market(market_config.with_(breaker_move=WAD), atomic_trading=True)
    engine.deposit(fund_small(small, other_trader, 100_000, engine, admin), sender=other_trader)
    engine.modify_position(fee_market, to_wad(1), BUY_LIMIT, sender=other_trader)
    engine.close_position(fee_market, 0, sender=other_trader)
    assert engine.insurance_balance() > 0 and engine.vault_bad_debt() == 0
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.modify_position(market_id, to_wad(2), BUY_LIMIT, sender=trader)
    set_price(oracle, 180_000)  # profit 60,000 > 50 % of the vault
    assert engine_risk.adl_eligible()
    engine_risk.deleverage(market_id, trader, 0, to_wad("0.25"), sender=keeper)


def test_deleveraging_runs_down_to_adl_target_once_open(
    small_vault_market, trader, keeper, admin, oracle, set_price
):
    """Hysteresis: opened above max_pnl_factor (50 %), deleveraging goes on while the ratio is above
    adl_target (45 %), then stops; it opens again only above 50 %."""
    small, market_id = small_vault_market
    engine, engine_risk = small.engine, small.engine_risk
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.modify_position(market_id, to_wad(4), BUY_LIMIT, sender=trader)
    set_price(oracle, 165_000)  # profit 60,000 of a 100,000 vault
    assert engine_risk.adl_eligible()
    # a small close leaves the ratio above 45 %, under 50 %: still eligible
    engine_risk.deleverage(market_id, trader, 0, to_wad("0.1"), sender=keeper)
    ratio = Decimal(4 - Decimal("0.1")) * 15_000 / (from_wad(engine.vault_balance()))
    assert Decimal("0.45") < ratio < Decimal("0.6")
    assert engine_risk.adl_eligible()
    engine_risk.deleverage(market_id, trader, 0, to_wad(2), sender=keeper)  # 28,500 of 73,430: 39 %
    assert not engine_risk.adl_eligible()
    with reverts("liquidation: deleveraging not allowed"):
        engine_risk.deleverage(market_id, trader, 0, to_wad("0.1"), sender=keeper)


@pytest.fixture
def eth_market(small_vault_market, plain_config, new_oracle):
    """A second plain market (ETH at 3,000) on the small vault's protocol, with its own oracle."""
    small, _ = small_vault_market
    eth_oracle = new_oracle(3_000, description="ETH / USD")
    return small.add_market(plain_config.with_(oracle=eth_oracle.address), atomic_trading=True), eth_oracle


def test_deleveraging_refuses_an_account_below_maintenance(
    small_vault_market, eth_market, trader, other_trader, keeper, admin, oracle, set_price
):
    """S11: a winner in one market whose account is underwater in another is liquidated, not
    deleveraged: closing its winner at mark would hand the vault's money to an insolvent account."""
    small, btc = small_vault_market
    eth, eth_oracle = eth_market
    engine, engine_risk = small.engine, small.engine_risk
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.modify_position(btc, to_wad(2), BUY_LIMIT, sender=trader)
    engine.modify_position(eth, to_wad(200), BUY_LIMIT, sender=trader)
    # the other side of ETH, so traders' net profit is BTC's
    engine.deposit(fund_small(small, other_trader, 100_000, engine, admin), sender=other_trader)
    engine.modify_position(eth, -to_wad(200), 0, sender=other_trader)
    set_price(oracle, 180_000)  # BTC profit 60,000 > 50 % of the vault
    set_price(eth_oracle, 2_400)  # ETH loss 120,000: equity 40,000 < maintenance
    health = engine.account_health(trader, 0)
    assert health.equity < health.maintenance_margin
    assert engine_risk.adl_eligible()
    with reverts("liquidation: account not healthy"):
        engine_risk.deleverage(btc, trader, 0, to_wad(1), sender=keeper)


def test_a_profitable_close_above_the_cap_is_paid_pro_rata(
    small_vault_market, trader, admin, oracle, set_price
):
    """S2: with the market's profit (60,000) above max_pnl_factor (50 %) of the vault (100,000), a
    close pays its profit times 50,000 / 60,000; under the cap it is paid in full."""
    small, market_id = small_vault_market
    engine = small.engine
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.modify_position(market_id, to_wad(2), BUY_LIMIT, sender=trader)
    set_price(oracle, 165_000)
    engine.modify_position(market_id, -to_wad(1), 0, sender=trader)
    assert single(engine, "PositionModified").realized_pnl == to_wad(15_000)
    assert not events(engine, "ProfitCapped")
    set_price(oracle, 195_000)  # the last unit: profit 45,000 > 50 % of 85,000
    engine.close_position(market_id, 0, sender=trader)
    paid = 45_000 * Decimal(42_500) / 45_000
    assert single(engine, "PositionModified").realized_pnl == to_wad(paid)
    # the Engine's ABI decodes ProfitCapped: its absence above is not a decoding gap
    assert single(engine, "ProfitCapped").paid == to_wad(paid)
    assert engine.vault_balance() == to_wad(85_000 - paid)
    assert engine.collateral(trader, 0) == to_wad(115_000 + paid)


def test_a_close_is_paid_at_most_the_vault_balance(
    small_vault_market, trader, other_trader, stranger, admin, oracle, set_price
):
    """S1: a winner whose profit is backed only by another trader's unrealized loss is paid what
    the vault holds, never the other traders' deposits; the loser's close then refills the vault."""
    small, market_id = small_vault_market
    engine, token = small.engine, small.token
    engine.deposit(fund_small(small, trader, 100_000, engine, admin), sender=trader)
    engine.deposit(fund_small(small, other_trader, 300_000, engine, admin), sender=other_trader)
    idle = fund_small(small, stranger, 1_000_000, engine, admin)
    engine.deposit(idle, sender=stranger)
    engine.modify_position(market_id, to_wad(5), BUY_LIMIT, sender=trader)
    engine.modify_position(market_id, -to_wad(5), 0, sender=other_trader)
    set_price(oracle, 180_000)  # long +150,000, short -150,000: traders' net profit 0
    engine.close_position(market_id, 0, sender=trader)
    assert single(engine, "PositionModified").realized_pnl == to_wad(100_000)
    assert engine.vault_balance() == 0
    engine.withdraw(idle, sender=stranger)
    assert token.balanceOf(stranger) == idle
    engine.close_position(market_id, BUY_LIMIT, sender=other_trader)
    assert engine.vault_balance() == to_wad(150_000)
    assert_solvent(engine, token, [trader, other_trader, stranger])


def test_a_realized_loss_is_paid_from_collateral_not_from_unrealized_profit(
    small_vault_market, eth_market, trader, admin, oracle, set_price
):
    """S1: closing a loser whose loss exceeds the collateral, while a winner in another market
    keeps the account above maintenance, would leave negative collateral: a claim of the vault
    backed by no token. The trade is refused; closing the winner first realizes its profit."""
    small, btc = small_vault_market
    eth, eth_oracle = eth_market
    engine = small.engine
    engine.deposit(fund_small(small, trader, 40_000, engine, admin), sender=trader)
    engine.modify_position(btc, to_wad(1), BUY_LIMIT, sender=trader)
    engine.modify_position(eth, -to_wad(50), 0, sender=trader)
    set_price(oracle, 195_000)  # BTC +45,000
    set_price(eth_oracle, 3_900)  # ETH -45,000: equity 40,000 above maintenance
    with reverts("engine: realized loss above collateral"):
        engine.close_position(eth, BUY_LIMIT, sender=trader)
    engine.close_position(btc, 0, sender=trader)
    engine.close_position(eth, BUY_LIMIT, sender=trader)
    assert engine.collateral(trader, 0) == to_wad(40_000)


def test_pnl_caps_default_set_and_bounds(engine_admin, admin, stranger):
    assert (engine_admin.max_pnl_factor(), engine_admin.adl_target()) == (WAD // 2, 45 * WAD // 100)
    engine_admin.set_pnl_caps(WAD, WAD // 100, sender=admin)
    log = single(engine_admin, "PnlCapsSet")  # events of engine_admin's last call: before its views
    assert (engine_admin.max_pnl_factor(), engine_admin.adl_target()) == (WAD, WAD // 100)
    assert (log.max_pnl_factor, log.adl_target) == (WAD, WAD // 100)
    for factor, target, reason in (
        (WAD // 100 - 1, 0, "treasury: max_pnl_factor out of bounds"),
        (WAD + 1, 0, "treasury: max_pnl_factor out of bounds"),
        (WAD // 2, WAD // 2 + 1, "treasury: adl_target above max_pnl_factor"),
        (WAD // 2 + 1, 0, "treasury: pnl caps not a multiple of 1e-10"),
    ):
        with reverts(reason):
            engine_admin.set_pnl_caps(factor, target, sender=admin)
    with reverts(MISSING_ROLE):
        engine_admin.set_pnl_caps(WAD // 2, 0, sender=stranger)


# ---------------------------------------------------------------------------
# Insurance fund and parameters (EngineAdmin)
# ---------------------------------------------------------------------------


def fill_insurance(engine, market, deposit, account):
    deposit(account, 2_000_000)
    engine.modify_position(market, to_wad(100), BUY_LIMIT, sender=account)
    engine.close_position(market, 0, sender=account)
    return engine.insurance_balance()


def test_admin_withdraws_insurance_above_the_floor_only(
    engine, engine_admin, token, market, deposit, other_trader, admin, stranger
):
    insurance = fill_insurance(engine, market, deposit, other_trader)
    scale = engine.collateral_scale()
    floor = insurance // 2 // scale * scale
    engine_admin.set_insurance_floor(floor, sender=admin)
    assert single(engine_admin, "InsuranceFloorSet").insurance_floor == floor
    assert engine_admin.insurance_floor() == floor
    room = (insurance - floor) // scale
    with reverts("treasury: insurance below floor"):
        engine_admin.withdraw_insurance(room + 1, stranger, sender=admin)
    with reverts(MISSING_ROLE):
        engine_admin.withdraw_insurance(1, stranger, sender=stranger)
    with reverts(MISSING_ROLE):
        engine_admin.set_insurance_floor(0, sender=stranger)
    engine_admin.withdraw_insurance(room, stranger, sender=admin)
    assert token.balanceOf(stranger) == room
    assert engine.insurance_balance() == insurance - room * scale
    assert single(engine_admin, "InsuranceWithdrawn").amount == room


def test_no_insurance_withdrawal_while_the_vault_carries_bad_debt_until_repaid(
    engine, engine_admin, engine_risk, vault, add_market, market_config, btc_long, deposit, trader,
    other_trader, keeper, admin, stranger, oracle, set_price,
):
    set_price(oracle, 15_000)
    engine_risk.liquidate(trader, 0, sender=keeper)
    debt = engine.vault_bad_debt()
    assert debt > 0
    fee_market = add_market(market_config.with_(breaker_move=WAD), atomic_trading=True)
    insurance = fill_insurance(engine, fee_market, deposit, other_trader)
    with reverts("treasury: bad debt pending"):
        engine_admin.withdraw_insurance(1, stranger, sender=admin)
    vault_before = engine.vault_balance()
    assets_before = vault.totalAssets()
    engine_admin.repay_vault_bad_debt(sender=stranger)
    # the vault already counted what insurance could repay: no jump for a depositor to catch
    assert vault.totalAssets() == assets_before
    assert single(engine_admin, "VaultBadDebtRepaid").amount == insurance
    assert engine.vault_bad_debt() == debt - insurance
    assert engine.vault_balance() - vault_before == insurance
    assert engine.insurance_balance() == 0


def test_insurance_withdrawal_reverts_when_the_token_transfer_fails_hostile_token(
    deploy, admin, lp, trader, stranger, market_config
):
    with boa.env.prank(admin):
        token = contract("test/HostileToken").deploy(6)
    hostile = deploy(token)
    market_id = hostile.add_market(market_config, atomic_trading=True)
    for account, spender, amount in ((lp, hostile.vault, 10**13), (trader, hostile.engine, 10**12)):
        token.mint(account, amount, sender=account)
        token.approve(spender, amount, sender=account)
    hostile.vault.deposit(10**13, lp, sender=lp)
    hostile.engine.deposit(10**12, sender=trader)
    hostile.engine.modify_position(market_id, to_wad(10), BUY_LIMIT, sender=trader)
    assert hostile.engine.insurance_balance() > 10**12
    token.configure(0, True, ZERO, sender=stranger)
    with reverts("engine_admin: transfer failed"):
        hostile.engine_admin.withdraw_insurance(1, stranger, sender=admin)


@pytest.fixture
def admin_facet(admin):
    """A bare EngineAdmin, called directly rather than through an engine."""
    with boa.env.prank(admin):
        return contract("EngineAdmin").deploy()


def test_repay_with_no_bad_debt_moves_nothing(
    engine, engine_admin, market, deposit, other_trader, stranger, admin_facet
):
    insurance = fill_insurance(engine, market, deposit, other_trader)
    engine_admin.repay_vault_bad_debt(sender=stranger)
    assert not events(engine_admin, "VaultBadDebtRepaid")
    assert engine.insurance_balance() == insurance
    with reverts("engine_admin: call through the engine"):
        admin_facet.repay_vault_bad_debt(sender=stranger)


DEFAULTS = dict(
    fee=5 * WAD // 1000, min_reward=5 * WAD, max_reward=1000 * WAD, buffer=WAD // 4,
    partial_notional=100_000 * WAD,
)


def params(**changes):
    values = {**DEFAULTS, **changes}
    return tuple(values[k] for k in DEFAULTS)


def test_liquidation_params_default_and_can_be_set(engine_admin, admin):
    assert tuple(engine_admin.liquidation_params()) == params()
    new = params(fee=WAD // 100, min_reward=0, max_reward=10**6 * WAD, buffer=WAD, partial_notional=0)
    engine_admin.set_liquidation_params(new, sender=admin)
    logged = tuple(single(engine_admin, "LiquidationParamsSet").params)
    assert tuple(engine_admin.liquidation_params()) == new
    # every field at its upper bound survives the packing
    widest = params(
        fee=WAD // 20, min_reward=10**6 * WAD, max_reward=10**6 * WAD, buffer=WAD, partial_notional=2**128 - 1
    )
    engine_admin.set_liquidation_params(widest, sender=admin)
    assert tuple(engine_admin.liquidation_params()) == widest
    assert logged == new


@pytest.mark.parametrize("changes, reason", [
    (dict(fee=WAD // 20 + 1), "liquidation: fee out of bounds"),
    (dict(min_reward=1001 * WAD), "liquidation: min_reward above max_reward"),
    (dict(max_reward=10**6 * WAD + 1), "liquidation: max_reward out of bounds"),
    (dict(buffer=WAD + 1), "liquidation: buffer out of bounds"),
    (dict(partial_notional=2**128), "liquidation: partial_notional out of bounds"),
])
def test_liquidation_params_outside_bounds_revert(engine_admin, admin, changes, reason):
    with reverts(reason):
        engine_admin.set_liquidation_params(params(**changes), sender=admin)


def test_only_admin_sets_liquidation_params(engine_admin, stranger, guardian):
    for who in (stranger, guardian):
        with reverts(MISSING_ROLE):
            engine_admin.set_liquidation_params(params(), sender=who)


def test_partial_liquidation_can_be_turned_off(
    engine, engine_admin, engine_risk, btc_long, trader, keeper, admin, oracle, set_price
):
    engine_admin.set_liquidation_params(params(partial_notional=2**128 - 1), sender=admin)
    set_price(oracle, "126315.78")
    engine_risk.liquidate(trader, 0, sender=keeper)
    assert single(engine_risk, "Liquidation").full
    assert engine.open_markets(trader, 0) == 0
