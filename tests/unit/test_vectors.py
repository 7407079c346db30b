"""The worked examples of the product brief (PROTOCOL.md, V1..V12) as exact tests.

Each market here isolates the mechanism a vector is about: fees, premium and
funding are zero unless the vector concerns them, so the expected figures are
the brief's own. The contracts run in-process on titanoboa (tests/unit/conftest.py); every
test rolls back.
"""

from decimal import Decimal

import boa
import pytest
from boa_protocol import advance_to, events, reverts

from vyperp.units import WAD, from_wad, to_wad

EIGHT_HOURS = 8 * 3600
DAY = 86400


@pytest.fixture
def plain_config(market_config):
    """No fees, no premium, no funding: fills at the index."""
    return market_config.with_(maker_fee=0, taker_fee=0, max_premium=0, interest_rate=0, max_funding_rate=0)


@pytest.fixture
def plain_market(add_market, plain_config, seeded_vault):
    return add_market(plain_config, atomic_trading=True)


def open_position(engine, market_id, account, size, limit):
    return engine.modify_position(market_id, to_wad(size), to_wad(limit), sender=account)


def test_v1_long_gains_fifty_percent_on_ten_percent_move(
    engine, plain_market, deposit, trader, oracle, set_price
):
    deposit(trader, 300_000)
    open_position(engine, plain_market, trader, 10, 150_000)
    set_price(oracle, 165_000)
    pnl = engine.position_value(trader, 0, plain_market).unrealized_pnl
    assert pnl == to_wad(150_000)
    assert Decimal(pnl) / to_wad(300_000) == Decimal("0.5")


def test_v2_long_at_120000_has_zero_equity(engine, lens, plain_market, deposit, trader, oracle, set_price):
    deposit(trader, 300_000)
    open_position(engine, plain_market, trader, 10, 150_000)
    assert lens.bankruptcy_price(trader, 0, plain_market) == to_wad(120_000)
    set_price(oracle, 120_000)
    assert engine.account_health(trader, 0).equity == 0


def test_v3_long_liquidation_price_is_exact_for_mark_notional(
    engine, lens, plain_market, deposit, trader, oracle, set_price
):
    deposit(trader, 300_000)
    open_position(engine, plain_market, trader, 10, 150_000)
    exact = Decimal(150_000) * Decimal("0.8") / Decimal("0.95")
    liquidation_price = from_wad(lens.liquidation_price(trader, 0, plain_market))
    assert abs(liquidation_price - exact) < Decimal("1e-12")
    set_price(oracle, "126315.80")
    assert not lens.is_liquidatable(trader, 0)
    set_price(oracle, "126315.78")
    assert lens.is_liquidatable(trader, 0)


def test_v4_short_gains_thirty_percent(engine, plain_market, deposit, trader, oracle, set_price):
    deposit(trader, 250_000)
    open_position(engine, plain_market, trader, -5, 150_000)
    set_price(oracle, 135_000)
    pnl = engine.position_value(trader, 0, plain_market).unrealized_pnl
    assert pnl == to_wad(75_000)
    assert Decimal(pnl) / to_wad(250_000) == Decimal("0.3")


def test_v5_short_bankruptcy_and_liquidation_prices(
    engine, lens, plain_market, deposit, trader, oracle, set_price
):
    deposit(trader, 150_000)
    open_position(engine, plain_market, trader, -5, 150_000)
    assert lens.bankruptcy_price(trader, 0, plain_market) == to_wad(180_000)
    exact = Decimal(150_000) * Decimal("1.2") / Decimal("1.05")
    assert abs(from_wad(lens.liquidation_price(trader, 0, plain_market)) - exact) < Decimal("1e-12")
    set_price(oracle, "171428.56")
    assert not lens.is_liquidatable(trader, 0)
    set_price(oracle, "171428.58")
    assert lens.is_liquidatable(trader, 0)


def accrue_for(engine, market_id, oracle, set_price, seconds, price, keeper):
    """Moves exactly `seconds` from the last accrual and checkpoints at a price published a
    second before."""
    start = engine.last_funding_time(market_id)
    advance_to(start + seconds - 1)
    set_price(oracle, price)
    advance_to(start + seconds)
    engine.checkpoint_funding([market_id], sender=keeper)


def test_v6_short_receives_360_over_a_day_at_four_bp(
    engine, add_market, plain_config, seeded_vault, deposit, trader, oracle, set_price, keeper
):
    four_bp = 4 * WAD // 10_000
    config = plain_config.with_(interest_rate=four_bp, max_funding_rate=four_bp)
    market_id = add_market(config, atomic_trading=True)
    deposit(trader, 100_000)
    open_position(engine, market_id, trader, -2, 150_000)
    accrue_for(engine, market_id, oracle, set_price, DAY, 150_000, keeper)
    assert engine.position_value(trader, 0, market_id).funding_owed == -to_wad(360)


def test_v7_short_one_receives_76_over_eight_hours(
    engine, add_market, plain_config, seeded_vault, deposit, trader, oracle, set_price, keeper
):
    set_price(oracle, 152_000)
    five_bp = 5 * WAD // 10_000
    config = plain_config.with_(interest_rate=five_bp, max_funding_rate=five_bp)
    market_id = add_market(config, atomic_trading=True)
    deposit(trader, 100_000)
    open_position(engine, market_id, trader, -1, 152_000)
    accrue_for(engine, market_id, oracle, set_price, EIGHT_HOURS, 152_000, keeper)
    assert engine.position_value(trader, 0, market_id).funding_owed == -to_wad(76)


def test_v8_long_receives_24_at_minus_two_percent_a_day(
    engine, add_market, plain_config, seeded_vault, deposit, trader, other_trader, oracle, set_price, keeper
):
    set_price(oracle, 12)
    # skew -100 over a 15,000 scale gives a premium of -2/3 % per 8 h, i.e. -2 % per day
    config = plain_config.with_(
        skew_scale=to_wad(15_000), max_premium=WAD // 100, max_funding_rate=WAD // 100
    )
    market_id = add_market(config, atomic_trading=True)
    deposit(other_trader, 10_000)
    engine.modify_position(market_id, -to_wad(200), 0, sender=other_trader)
    deposit(trader, 10_000)
    open_position(engine, market_id, trader, 100, 13)
    accrue_for(engine, market_id, oracle, set_price, DAY, 12, keeper)
    received = -from_wad(engine.position_value(trader, 0, market_id).funding_owed)
    assert abs(received - 24) < Decimal("1e-12")
    assert received <= 24


def test_v9_short_hedge_offsets_inventory_loss(engine, plain_market, deposit, trader, oracle, set_price):
    deposit(trader, 1_000_000)
    open_position(engine, plain_market, trader, -20, 150_000)
    set_price(oracle, 135_000)
    hedge_pnl = engine.position_value(trader, 0, plain_market).unrealized_pnl
    inventory_loss = 20 * (150_000 - 135_000)
    assert hedge_pnl == to_wad(inventory_loss) == to_wad(300_000)


def test_v10_basis_trade_captures_the_premium(
    engine, add_market, admin, plain_config, seeded_vault, deposit, trader, other_trader, engine_admin,
    oracle, set_price
):
    # a long skew of 38 over a 2,812.5 scale puts a 1-unit short's fill 2,000 above a 150,000 index
    config = plain_config.with_(skew_scale=to_wad("2812.5"), max_premium=WAD // 10)
    market_id = add_market(config, atomic_trading=True)
    deposit(other_trader, 1_000_000)
    engine.modify_position(market_id, to_wad(38), to_wad(200_000), sender=other_trader)
    deposit(trader, 100_000)
    engine.modify_position(market_id, -to_wad(1), to_wad(151_999), sender=trader)
    fill = from_wad(events(engine, "PositionModified")[0].fill_price)
    assert abs(fill - 152_000) < Decimal("1e-9")
    engine_admin.set_market_params(market_id, config.with_(max_premium=0).as_tuple(), sender=admin)
    # S10: with positions open, the premium change waits param_delay; the index stays 150,000
    boa.env.time_travel(seconds=engine_admin.param_delay())
    set_price(oracle, 150_000)
    engine_admin.apply_change(market_id, sender=admin)
    engine.close_position(market_id, to_wad(150_000), sender=trader)
    event = events(engine, "PositionModified")[0]
    assert event.fill_price == to_wad(150_000)
    assert abs(from_wad(event.realized_pnl) - 2_000) < Decimal("1e-9")
    assert event.realized_pnl <= to_wad(2_000)


def test_v11_taker_fee_on_half_a_million_is_150(
    engine, add_market, plain_config, seeded_vault, deposit, trader, oracle, set_price
):
    set_price(oracle, 100_000)
    market_id = add_market(plain_config.with_(taker_fee=3 * WAD // 10_000), atomic_trading=True)
    deposit(trader, 100_000)
    insurance_before = engine.insurance_balance()
    vault_before = engine.vault_balance()
    open_position(engine, market_id, trader, 5, 100_000)
    fee = events(engine, "PositionModified")[0].fee
    assert fee == to_wad(150)
    assert engine.vault_balance() - vault_before == to_wad(120)
    assert engine.insurance_balance() - insurance_before == to_wad(30)
    assert engine.collateral(trader, 0) == to_wad(100_000 - 150)


def test_v12_below_initial_margin_cannot_add_risk_and_below_maintenance_is_liquidatable(
    lens, engine, add_market, plain_config, seeded_vault, deposit, trader, oracle, set_price
):
    set_price(oracle, 100_000)
    market_id = add_market(plain_config.with_(imr=WAD // 10, mmr=65 * WAD // 1000), atomic_trading=True)
    deposit(trader, 99_000)
    with reverts("engine: insufficient margin"):
        open_position(engine, market_id, trader, 10, 100_000)
    deposit(trader, 1_000)
    open_position(engine, market_id, trader, 10, 100_000)
    set_price(oracle, 99_990)
    health = engine.account_health(trader, 0)
    assert Decimal(health.equity) / health.notional < Decimal("0.1")
    with reverts("engine: insufficient margin"):
        open_position(engine, market_id, trader, "0.001", 200_000)
    set_price(oracle, 96_140)
    health = engine.account_health(trader, 0)
    assert Decimal(health.equity) / health.notional < Decimal("0.064")
    assert lens.is_liquidatable(trader, 0)
    set_price(oracle, 96_300)
    assert not lens.is_liquidatable(trader, 0)
