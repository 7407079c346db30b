"""The funding accumulator in premium and dynamic mode, checkpoints and settlement.

The contracts run in-process on titanoboa (tests/unit/conftest.py); every test rolls back.
"""


import boa
import pytest
from boa_protocol import advance_to, events, reverts

from vyperp.units import WAD, from_wad, to_wad

BUY_LIMIT = to_wad(1_000_000)
EIGHT_HOURS = 8 * 3600
DAY = 86400


def clamp(value, bound):
    return max(-bound, min(bound, value))


@pytest.fixture
def checkpoint_after(engine, keeper, oracle, set_price):
    """Checkpoints exactly `seconds` after the market's last accrual, at a fresh unchanged index
    published a second before; returns the checkpoint's FundingCheckpoint events."""

    def checkpoint(market_id, seconds):
        at = engine.last_funding_time(market_id) + seconds
        # read before the clock moves: by `at` the last round may be older than max_price_age
        index = from_wad(engine.index_price(market_id))
        advance_to(at - 1)
        set_price(oracle, index)
        advance_to(at)
        engine.checkpoint_funding([market_id], sender=keeper)
        return events(engine, "FundingCheckpoint")

    return checkpoint


@pytest.fixture
def funded_traders(deposit, trader, other_trader, seeded_vault):
    deposit(trader, 1_000_000)
    deposit(other_trader, 1_000_000)


def test_premium_mode_rate_is_clamped_premium_plus_interest(
    engine, add_market, market_config, funded_traders, trader, checkpoint_after
):
    config = market_config.with_(
        skew_scale=to_wad(1_000), max_premium=WAD // 100, max_funding_rate=3 * WAD // 1000
    )
    market_id = add_market(config, atomic_trading=True)
    engine.modify_position(market_id, to_wad(2), BUY_LIMIT, sender=trader)
    [event] = checkpoint_after(market_id, 60)
    expected = clamp(to_wad(2) * WAD // to_wad(1_000) + config.interest_rate, config.max_funding_rate)
    assert engine.funding_rate(market_id) == expected == 21 * WAD // 10_000
    assert (event.funding_rate, event.skew, event.index_price) == (expected, to_wad(2), to_wad(150_000))
    engine.modify_position(market_id, to_wad(8), BUY_LIMIT, sender=trader)
    checkpoint_after(market_id, 60)
    assert engine.funding_rate(market_id) == config.max_funding_rate


def test_index_grows_by_rate_times_elapsed_times_index(
    engine, add_market, market_config, funded_traders, trader, checkpoint_after
):
    market_id = add_market(market_config.with_(max_premium=0), atomic_trading=True)
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    before = engine.funding_index(market_id)
    checkpoint_after(market_id, EIGHT_HOURS)
    expected_increment = market_config.interest_rate * EIGHT_HOURS * to_wad(150_000) // (EIGHT_HOURS * WAD)
    assert engine.funding_index(market_id) - before == expected_increment == to_wad(15)


def test_second_checkpoint_in_the_same_block_changes_nothing(engine, market, funded_traders, trader, keeper):
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    boa.env.time_travel(seconds=100)
    engine.checkpoint_funding([market, market], sender=keeper)
    assert len(events(engine, "FundingCheckpoint")) == 1


def test_checkpoint_of_unknown_market_reverts(engine, market, keeper):
    with reverts("markets: unknown market"):
        engine.checkpoint_funding([market, 7], sender=keeper)


def test_trade_settles_owed_funding_into_collateral(
    engine, engine_admin, market, funded_traders, trader, oracle, set_price
):
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    collateral_before = engine.collateral(trader, 0)
    vault_before = engine.vault_balance()
    advance_to(engine.last_funding_time(market) + EIGHT_HOURS - 1)
    set_price(oracle, 150_000)
    owed = engine.position_value(trader, 0, market).funding_owed
    engine.modify_position(market, to_wad("0.5"), BUY_LIMIT, sender=trader)
    # the trade reports its own settlement in PositionModified, without a FundingSettled
    assert not events(engine, "FundingSettled")
    trade = events(engine, "PositionModified")[0]
    settled = trade.funding_paid
    assert settled > 0
    # the view and the trade run at the same timestamp, so the trade settles exactly what it showed
    assert settled == owed
    assert engine.collateral(trader, 0) == collateral_before - settled - trade.fee
    fee_to_vault = trade.fee * engine_admin.vault_fee_share() // WAD
    assert engine.vault_balance() == vault_before + settled + fee_to_vault
    assert engine.position_value(trader, 0, market).funding_owed == 0


def test_balanced_book_funding_is_zero_sum_with_dust_to_the_system(
    engine, add_market, market_config, funded_traders, trader, other_trader, checkpoint_after
):
    config = market_config.with_(max_premium=0, interest_rate=WAD // 1000, max_funding_rate=WAD // 1000)
    market_id = add_market(config, atomic_trading=True)
    size = to_wad("1.333333333333333333")
    # both sides open at the same timestamp, so they owe over the same interval
    engine.modify_position(market_id, size, BUY_LIMIT, sender=trader)
    engine.modify_position(market_id, -size, 0, sender=other_trader)
    long_snapshot = engine.open_positions(trader, 0, market_id).funding_snapshot
    assert long_snapshot == engine.open_positions(other_trader, 0, market_id).funding_snapshot
    checkpoint_after(market_id, 12_345)
    long_owes = engine.position_value(trader, 0, market_id).funding_owed
    short_owes = engine.position_value(other_trader, 0, market_id).funding_owed
    assert long_owes > 0 > short_owes
    assert 0 <= long_owes + short_owes <= 2


def test_vault_receives_what_the_net_skew_pays(
    engine, vault, add_market, market_config, funded_traders, trader, checkpoint_after
):
    market_id = add_market(market_config.with_(max_premium=0), atomic_trading=True)
    engine.modify_position(market_id, to_wad(3), BUY_LIMIT, sender=trader)
    equity_before = vault.equity()
    balance_before = engine.vault_balance()
    checkpoint_after(market_id, DAY)
    owed = engine.position_value(trader, 0, market_id).funding_owed
    assert owed == 3 * market_config.interest_rate * 3 * 150_000
    assert vault.equity() - equity_before == owed
    assert engine.vault_balance() == balance_before


def test_dynamic_mode_rate_drifts_with_skew_and_accrues_its_exact_integral_through_the_clamp(
    engine, add_market, market_config, funded_traders, trader, deposit, checkpoint_after
):
    config = market_config.with_(
        dynamic_funding=True, skew_scale=to_wad(100), max_funding_velocity=WAD // 10,
        max_funding_rate=WAD // 100,
    )
    market_id = add_market(config, atomic_trading=True)
    # 50 units against a 100 scale fill about 4.75 % above the index: margin for that premium
    deposit(trader, 1_000_000)
    engine.modify_position(market_id, to_wad(50), BUY_LIMIT, sender=trader)
    assert engine.funding_rate(market_id) == 0
    index_before = engine.funding_index(market_id)
    checkpoint_after(market_id, DAY // 4)
    # proportional skew 0.5 at 10 %/day: 5 %/day, so the rate would be 1.25 % after a quarter
    # day, but it reaches its 1 % clamp after 0.2 day (17,280 s) and stays there (S12)
    assert engine.funding_rate(market_id) == config.max_funding_rate
    reaches_clamp = 17_280
    integral = (
        config.max_funding_rate // 2 * reaches_clamp + config.max_funding_rate * (DAY // 4 - reaches_clamp)
    )
    increment = integral * to_wad(150_000) // (EIGHT_HOURS * WAD)
    assert engine.funding_index(market_id) - index_before == increment == to_wad(675)
    # the average of the old and the clamped new rate would have accrued 562.5, 17 % less


def test_dynamic_mode_rate_above_a_lowered_clamp_accrues_at_the_new_clamp(
    engine, engine_admin, admin, add_market, market_config, funded_traders, trader, checkpoint_after
):
    config = market_config.with_(
        dynamic_funding=True, interest_rate=0, skew_scale=to_wad(100), max_funding_velocity=WAD // 10,
        max_funding_rate=WAD // 100,
    )
    market_id = add_market(config, atomic_trading=True)
    engine.modify_position(market_id, to_wad(10), BUY_LIMIT, sender=trader)
    checkpoint_after(market_id, DAY)
    assert engine.funding_rate(market_id) == config.max_funding_rate
    lowered = config.with_(max_funding_rate=WAD // 1000)
    engine_admin.set_market_params(market_id, lowered.as_tuple(), sender=admin)
    # S10: a funding change with positions open waits param_delay, accruing under the old clamp
    checkpoint_after(market_id, DAY + 60)
    assert engine.funding_rate(market_id) == config.max_funding_rate
    engine_admin.apply_change(market_id, sender=admin)
    # the stored rate (1 %) is above the new clamp until the next accrual
    assert engine.funding_rate(market_id) == config.max_funding_rate
    index_before = engine.funding_index(market_id)
    checkpoint_after(market_id, EIGHT_HOURS)
    # long skew pushes further up: flat at the new clamp for the whole interval
    assert engine.funding_rate(market_id) == lowered.max_funding_rate
    assert engine.funding_index(market_id) - index_before == lowered.max_funding_rate * 150_000 == to_wad(150)
    # short skew pulls it down from the clamp, through zero, onto the other clamp within 8 h
    engine.modify_position(market_id, -to_wad(20), 0, sender=trader)
    index_before = engine.funding_index(market_id)
    checkpoint_after(market_id, EIGHT_HOURS)
    assert engine.funding_rate(market_id) == -lowered.max_funding_rate
    # -1 %/day from +0.1 % reaches -0.1 % after 0.2 day (17,280 s): the first part averages 0
    flat = EIGHT_HOURS - 17_280
    expected_increment = -lowered.max_funding_rate * flat * to_wad(150_000) // (EIGHT_HOURS * WAD)
    assert engine.funding_index(market_id) - index_before == expected_increment


def test_dynamic_mode_rate_drifts_back_when_skew_flips(
    engine, add_market, market_config, funded_traders, trader, checkpoint_after
):
    config = market_config.with_(
        dynamic_funding=True, skew_scale=to_wad(100), max_funding_velocity=WAD // 10,
        max_funding_rate=WAD // 100,
    )
    market_id = add_market(config, atomic_trading=True)
    engine.modify_position(market_id, to_wad(10), BUY_LIMIT, sender=trader)
    checkpoint_after(market_id, DAY // 8)
    up = engine.funding_rate(market_id)
    assert up == to_wad("0.1") * to_wad("0.1") // WAD * (DAY // 8) // DAY
    engine.modify_position(market_id, -to_wad(20), 0, sender=trader)
    checkpoint_after(market_id, DAY // 8)
    assert engine.funding_rate(market_id) < up
    current_index, current_rate = engine.current_funding(market_id)
    assert current_rate == engine.funding_rate(market_id)
    assert current_index == engine.funding_index(market_id)


def test_new_position_snapshots_the_current_funding_index(
    engine, market, funded_traders, trader, other_trader, checkpoint_after
):
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=other_trader)
    checkpoint_after(market, DAY // 2)
    assert engine.funding_index(market) != 0
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    assert engine.open_positions(trader, 0, market).funding_snapshot == engine.funding_index(market)
    assert engine.position_value(trader, 0, market).funding_owed == 0
    engine.close_position(market, 0, sender=trader)
    checkpoint_after(market, DAY // 2)
    engine.modify_position(market, -to_wad(1), 0, sender=trader)
    assert engine.position_value(trader, 0, market).funding_owed == 0


def test_trade_settles_its_own_market_and_withdrawal_settles_every_market(
    engine, add_market, market_config, funded_traders, trader, token, oracle, set_price
):
    first = add_market(market_config.with_(max_premium=0), atomic_trading=True)
    second = add_market(market_config.with_(max_premium=0), atomic_trading=True)
    engine.modify_position(first, to_wad(1), BUY_LIMIT, sender=trader)
    engine.modify_position(second, to_wad(1), BUY_LIMIT, sender=trader)
    boa.env.time_travel(seconds=EIGHT_HOURS)
    set_price(oracle, 150_000)
    owed_second = engine.position_value(trader, 0, second).funding_owed
    assert owed_second > 0
    health_before = engine.account_health(trader, 0)
    assert health_before.funding_owed >= 2 * owed_second - 2

    engine.modify_position(first, to_wad("0.1"), BUY_LIMIT, sender=trader)
    assert events(engine, "PositionModified")[0].funding_paid > 0
    assert not events(engine, "FundingSettled")
    assert engine.position_value(trader, 0, first).funding_owed == 0
    assert engine.position_value(trader, 0, second).funding_owed >= owed_second

    engine.withdraw(1, sender=trader)
    # the trade settled the first market at this same timestamp: only the second has funding to settle
    assert {event.market_id for event in events(engine, "FundingSettled")} == {second}
    assert engine.account_health(trader, 0).funding_owed == 0
