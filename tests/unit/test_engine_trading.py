"""Positions: open, increase, reduce, close and flip; fill price, fees, limits and price checks.

The contracts run in-process on titanoboa (tests/unit/conftest.py); every test rolls back.
"""

from decimal import Decimal

import boa
import pytest
from boa_protocol import contract, deploy_oracle, events, now, publish_round, reverts

from vyperp.units import WAD, from_wad, to_wad

BUY_LIMIT = to_wad(1_000_000)


@pytest.fixture
def exact_market(add_market, market_config, seeded_vault):
    """Fills at the index, no fees, no funding: PnL arithmetic is exact."""
    config = market_config.with_(maker_fee=0, taker_fee=0, max_premium=0, interest_rate=0, max_funding_rate=0)
    return add_market(config, atomic_trading=True)


def test_trade_rejects_zero_size_unknown_market_and_strangers(engine, market, deposit, trader, stranger):
    deposit(trader, 10_000)
    with reverts("engine: zero size"):
        engine.modify_position(market, 0, BUY_LIMIT, sender=trader)
    with reverts("markets: unknown market"):
        engine.modify_position(99, to_wad(1), BUY_LIMIT, sender=trader)
    with reverts("accounts: not owner or operator"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, 0, trader, sender=stranger)


def test_fill_beyond_acceptable_price_reverts(engine, market, seeded_vault, deposit, trader):
    deposit(trader, 100_000)
    buy_fill = engine.fill_price(market, to_wad(1))
    with reverts("engine: fill price above limit"):
        engine.modify_position(market, to_wad(1), buy_fill - 1, sender=trader)
    sell_fill = engine.fill_price(market, -to_wad(1))
    with reverts("engine: fill price below limit"):
        engine.modify_position(market, -to_wad(1), sell_fill + 1, sender=trader)
    engine.modify_position(market, to_wad(1), buy_fill, sender=trader)
    assert engine.open_positions(trader, 0, market).size == to_wad(1)


def test_fill_price_carries_skew_impact(
    engine, market, market_config, seeded_vault, deposit, trader, other_trader
):
    deposit(other_trader, 1_000_000)
    engine.modify_position(market, to_wad(20), BUY_LIMIT, sender=other_trader)
    skew = Decimal(20)
    scale = from_wad(market_config.skew_scale)
    delta = Decimal(5)
    expected = Decimal(150_000) * (1 + (skew / scale + (skew + delta) / scale) / 2)
    quoted = engine.fill_price(market, to_wad(5))
    assert abs(from_wad(quoted) - expected) < Decimal("1e-12")
    deposit(trader, 200_000)
    engine.modify_position(market, to_wad(5), BUY_LIMIT, sender=trader)
    assert events(engine, "PositionModified")[0].fill_price == quoted


def test_increase_averages_entry_and_reduce_realizes_pro_rata(
    engine, lens, exact_market, deposit, trader, oracle, set_price
):
    deposit(trader, 500_000)
    engine.modify_position(exact_market, to_wad(2), BUY_LIMIT, sender=trader)
    set_price(oracle, 160_000)
    engine.modify_position(exact_market, to_wad(2), BUY_LIMIT, sender=trader)
    assert lens.entry_price(trader, 0, exact_market) == to_wad(155_000)
    set_price(oracle, 165_000)
    engine.modify_position(exact_market, -to_wad(1), 0, sender=trader)
    event = events(engine, "PositionModified")[0]
    assert event.realized_pnl == to_wad(10_000)
    assert event.new_size == to_wad(3)
    assert lens.entry_price(trader, 0, exact_market) == to_wad(155_000)
    assert engine.collateral(trader, 0) == to_wad(510_000)


def test_close_removes_position_and_frees_the_market_slot(
    engine, exact_market, deposit, trader, oracle, set_price
):
    deposit(trader, 100_000)
    engine.modify_position(exact_market, -to_wad(1), 0, sender=trader)
    assert engine.open_markets(trader, 0) == 1 << exact_market
    set_price(oracle, 140_000)
    engine.close_position(exact_market, BUY_LIMIT, sender=trader)
    assert events(engine, "PositionModified")[0].realized_pnl == to_wad(10_000)
    assert engine.open_positions(trader, 0, exact_market).size == 0
    assert engine.open_markets(trader, 0) == 0
    assert engine.short_open_interest(exact_market) == 0
    with reverts("engine: no position"):
        engine.close_position(exact_market, BUY_LIMIT, sender=trader)


def test_flip_realizes_the_old_side_and_opens_the_rest_at_the_fill(
    engine, lens, exact_market, deposit, trader, oracle, set_price
):
    deposit(trader, 500_000)
    engine.modify_position(exact_market, to_wad(2), BUY_LIMIT, sender=trader)
    set_price(oracle, 151_000)
    engine.modify_position(exact_market, -to_wad(3), 0, sender=trader)
    assert events(engine, "PositionModified")[0].realized_pnl == to_wad(2_000)
    assert engine.open_positions(trader, 0, exact_market).size == -to_wad(1)
    assert lens.entry_price(trader, 0, exact_market) == to_wad(151_000)
    assert engine.long_open_interest(exact_market) == 0
    assert engine.short_open_interest(exact_market) == to_wad(1)


def test_taker_pays_taker_rate_and_skew_reducer_pays_maker_rate(
    engine, market, market_config, seeded_vault, deposit, trader, other_trader
):
    deposit(other_trader, 1_000_000)
    deposit(trader, 1_000_000)
    engine.modify_position(market, to_wad(4), BUY_LIMIT, sender=other_trader)
    event = events(engine, "PositionModified")[0]
    notional = Decimal(4) * from_wad(event.fill_price)
    assert abs(from_wad(event.fee) - notional * from_wad(market_config.taker_fee)) < Decimal("1e-15")
    engine.modify_position(market, -to_wad(6), 0, sender=trader)
    event = events(engine, "PositionModified")[0]
    notional = Decimal(6) * from_wad(event.fill_price)
    blended = (4 * from_wad(market_config.maker_fee) + 2 * from_wad(market_config.taker_fee)) / 6
    assert abs(from_wad(event.fee) - notional * blended) < Decimal("1e-15")


def test_position_size_limit_blocks_new_risk_but_not_reductions(
    engine, add_market, admin, market_config, seeded_vault, deposit, trader, engine_admin
):
    market_id = add_market(market_config.with_(max_position_size=to_wad(2)), atomic_trading=True)
    deposit(trader, 1_000_000)
    with reverts("engine: position above size limit"):
        engine.modify_position(market_id, to_wad(3), BUY_LIMIT, sender=trader)
    engine.modify_position(market_id, to_wad(2), BUY_LIMIT, sender=trader)
    smaller_limit = market_config.with_(max_position_size=to_wad(1))
    engine_admin.set_market_params(market_id, smaller_limit.as_tuple(), sender=admin)
    engine.modify_position(market_id, -to_wad("0.5"), 0, sender=trader)
    assert engine.open_positions(trader, 0, market_id).size == to_wad("1.5")


def test_open_interest_caps_per_side_and_against_vault(
    engine, add_market, market_config, seeded_vault, deposit, trader, other_trader
):
    capped = add_market(
        market_config.with_(max_position_size=to_wad(3), max_open_interest=to_wad(5)), atomic_trading=True
    )
    deposit(trader, 2_000_000)
    deposit(other_trader, 2_000_000)
    engine.modify_position(capped, to_wad(3), BUY_LIMIT, sender=trader)
    with reverts("engine: open interest cap"):
        engine.modify_position(capped, to_wad(3), BUY_LIMIT, sender=other_trader)
    engine.modify_position(capped, -to_wad(3), 0, sender=other_trader)
    # 10,000,000 of vault assets at a 0.1 ratio back 1,000,000 of notional per side
    vault_bound = add_market(market_config.with_(max_oi_vault_ratio=WAD // 10), atomic_trading=True)
    engine.modify_position(vault_bound, to_wad(6), BUY_LIMIT, sender=trader)
    with reverts("engine: open interest above vault capacity"):
        engine.modify_position(vault_bound, to_wad(1), BUY_LIMIT, sender=trader)


def test_an_account_holds_at_most_eight_markets(
    engine, add_market, market_config, seeded_vault, deposit, trader
):
    deposit(trader, 2_000_000)
    ids = [add_market(market_config, atomic_trading=True) for _ in range(9)]
    for market_id in ids[:8]:
        engine.modify_position(market_id, to_wad("0.1"), BUY_LIMIT, sender=trader)
    with reverts("positions: too many open markets"):
        engine.modify_position(ids[8], to_wad("0.1"), BUY_LIMIT, sender=trader)


def test_reduction_that_leaves_the_account_below_maintenance_reverts(
    lens, engine, exact_market, deposit, trader, oracle, set_price
):
    deposit(trader, 15_000)
    engine.modify_position(exact_market, to_wad(1), BUY_LIMIT, sender=trader)
    set_price(oracle, 141_000)
    assert lens.is_liquidatable(trader, 0)
    with reverts("engine: below maintenance margin"):
        engine.modify_position(exact_market, -to_wad("0.01"), 0, sender=trader)


@pytest.fixture
def mock_feed_market(add_market, admin, market_config, seeded_vault):
    with boa.env.prank(admin):
        feed = contract("test/MockFeed").deploy(8, 150_000 * 10**8)
    return feed, add_market(market_config.with_(oracle=feed.address, max_price_age=60), atomic_trading=True)


@pytest.mark.parametrize("answer", [0, -1])
def test_zero_or_negative_index_blocks_trading_mock_feed(engine, mock_feed_market, deposit, trader, answer):
    feed, market_id = mock_feed_market
    deposit(trader, 100_000)
    feed.set_answer(answer, now(), sender=trader)
    with reverts("pricing: invalid price"):
        engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)


def test_index_above_the_breaker_bound_blocks_trading_mock_feed(engine, mock_feed_market, deposit, trader):
    """The breaker packs prices in 104 bits: 2**104 wei is refused, the largest fitting price is not."""
    feed, market_id = mock_feed_market
    deposit(trader, 100_000)
    scale = 10**10  # the feed answers with 8 decimals
    feed.set_answer(2**104 // scale + 1, now(), sender=trader)
    with reverts("pricing: price above bound"):
        engine.checkpoint_funding([market_id], sender=trader)
    with reverts("pricing: price above bound"):
        engine.index_price(market_id)
    feed.set_answer((2**104 - 1) // scale, now(), sender=trader)
    assert engine.index_price(market_id) == (2**104 - 1) // scale * scale


def test_stale_and_future_index_block_trading_mock_feed(engine, mock_feed_market, deposit, trader):
    feed, market_id = mock_feed_market
    deposit(trader, 100_000)
    feed.set_answer(150_000 * 10**8, now() - 61, sender=trader)
    with reverts("pricing: stale price"):
        engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    feed.set_answer(150_000 * 10**8, now() + 3600, sender=trader)
    with reverts("pricing: price from the future"):
        engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)


def test_zero_twap_blocks_mark_pricing_mock_feed(
    engine, add_market, admin, market_config, seeded_vault, deposit, trader
):
    with boa.env.prank(admin):
        feed = contract("test/MockFeed").deploy(8, 150_000 * 10**8)
    market_id = add_market(market_config.with_(oracle=feed.address, mark_window=180), atomic_trading=True)
    deposit(trader, 100_000)
    with reverts("pricing: invalid mark price"):
        engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)


def test_mark_price_is_the_oracle_twap_over_the_mark_window(
    engine, add_market, market_config, oracle, set_price
):
    market_id = add_market(market_config.with_(mark_window=180), atomic_trading=True)
    boa.env.time_travel(seconds=600)
    set_price(oracle, 165_000)
    boa.env.time_travel(seconds=60)
    mark = engine.mark_price(market_id)
    assert mark == oracle.twap(180) * 10**10
    assert to_wad(150_000) < mark < to_wad(165_000)
    assert engine.index_price(market_id) == to_wad(165_000)


def test_lens_reports_leverage_equity_and_health_ratio(
    engine, lens, exact_market, deposit, trader, oracle, set_price
):
    assert lens.health(trader, 0) == 2**256 - 1
    assert lens.leverage(trader, 0) == 0
    deposit(trader, 30_000)
    engine.modify_position(exact_market, to_wad(1), BUY_LIMIT, sender=trader)
    assert lens.equity(trader, 0) == to_wad(30_000)
    assert lens.leverage(trader, 0) == 5 * WAD
    assert lens.health(trader, 0) == 4 * WAD  # 30,000 over 5 % of 150,000
    set_price(oracle, 120_000)
    assert lens.equity(trader, 0) == 0
    assert lens.health(trader, 0) == 0
    assert lens.leverage(trader, 0) == 2**256 - 1


def test_lens_quotes_the_fee_a_trade_then_pays(engine, lens, market, seeded_vault, deposit, trader):
    deposit(trader, 100_000)
    quoted = lens.trade_fee(market, to_wad(2))
    engine.modify_position(market, to_wad(2), BUY_LIMIT, sender=trader)
    assert events(engine, "PositionModified")[0].fee == quoted > 0


def test_lens_batches_account_statuses_for_keepers(
    engine, lens, exact_market, deposit, trader, other_trader, stranger, oracle, set_price
):
    deposit(trader, 15_000)
    deposit(other_trader, 100_000)
    engine.modify_position(exact_market, to_wad(1), BUY_LIMIT, sender=trader)
    engine.modify_position(exact_market, to_wad(1), BUY_LIMIT, sender=other_trader)
    set_price(oracle, 141_000)
    statuses = lens.account_statuses([(trader, 0), (other_trader, 0), (stranger, 0)])
    assert [status.liquidatable for status in statuses] == [True, False, False]
    assert statuses[0].equity == engine.account_health(trader, 0).equity
    assert statuses[2].notional == 0


def test_admin_replaces_a_dead_feed_and_trading_resumes_mock_feed(
    engine, add_market, admin, market_config, seeded_vault, deposit, trader, oracle, engine_admin, set_price
):
    with boa.env.prank(admin):
        dead = contract("test/MockFeed").deploy(8, 150_000 * 10**8)
    config = market_config.with_(oracle=dead.address, max_price_age=60)
    market_id = add_market(config, atomic_trading=True)
    deposit(trader, 100_000)
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    dead.set_answer(150_000 * 10**8, now() - 61, sender=admin)
    with reverts("pricing: stale price"):
        engine.close_position(market_id, 0, sender=trader)
    with reverts("pricing: stale price"):
        engine_admin.set_market_params(
            market_id, config.with_(taker_fee=config.maker_fee).as_tuple(), sender=admin
        )
    # S10: with a position open, the swap waits param_delay (the market stays stale until then)
    engine_admin.set_market_params(market_id, config.with_(oracle=oracle.address).as_tuple(), sender=admin)
    assert engine_admin.params(market_id).oracle == dead.address
    boa.env.time_travel(seconds=engine_admin.param_delay())
    set_price(oracle, 150_000)
    engine_admin.apply_change(market_id, sender=admin)
    engine.close_position(market_id, 0, sender=trader)
    assert engine.open_positions(trader, 0, market_id).size == 0


def test_price_feed_names_the_oracle_and_its_scale(
    engine, engine_admin, market, oracle, admin, market_config, reporters
):
    assert tuple(engine.price_feed(market)) == (oracle.address, 10**10)
    feed = deploy_oracle(admin, reporters[:1], decimals=18, max_report_age=3600)
    publish_round(feed, 150_000 * 10**18, reporters[:1])
    engine_admin.set_market_params(market, market_config.with_(oracle=feed.address).as_tuple(), sender=admin)
    assert tuple(engine.price_feed(market)) == (feed.address, 1)
