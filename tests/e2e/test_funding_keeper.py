"""Funding keeper on anvil: cadence, one transaction for every market, dead feeds left out."""

import pytest

from vyperp.contracts import add_market, deploy_oracle
from vyperp.keepers.funding import FundingKeeper
from vyperp.oracle_signing import transmit_round
from vyperp.params import MarketConfig

INTERVAL = 60
SHORT_PRICE_AGE = 120  # the market whose feed the tests let die


@pytest.fixture(scope="module")
def markets(protocol, market, admin, reporters, project):
    """BTC (the session market) plus ETH with a long price age and SOL with a short one."""
    ids = [market]
    for description, price, max_age in (("ETH / USD", 3_000, 3600),
                                        ("SOL / USD", 150, SHORT_PRICE_AGE)):
        feed = deploy_oracle(project, admin, reporters[:1], description=description)
        transmit_round(feed, price * 10**8, reporters[:1], reporters[0])
        config = MarketConfig(oracle=feed.address, mark_window=0, max_price_age=max_age)
        ids.append(add_market(protocol, admin, config, atomic_trading=True))
    return ids


@pytest.fixture
def keeper_bot(engine, keeper, markets):
    return FundingKeeper(engine, keeper, interval=INTERVAL)


def checkpointed_ids(receipt, engine):
    return sorted(log.market_id for log in receipt.decode_logs(engine.FundingCheckpoint))


def test_checkpoints_all_markets_in_one_transaction_once_per_interval(
        keeper_bot, engine, markets, chain):
    oldest = min(m.last_funding_time for m in keeper_bot.markets())
    assert keeper_bot.step(now=oldest + INTERVAL - 1) is None  # not due yet: nothing sent
    assert keeper_bot.metrics.items_handled == 0

    chain.pending_timestamp = oldest + INTERVAL
    first = keeper_bot.step()
    assert first.market_ids == tuple(markets) and first.skipped == ()
    assert first.timestamp == oldest + INTERVAL
    assert checkpointed_ids(first.receipt, engine) == markets  # one transaction for all
    assert all(engine.last_funding_time(m) == first.timestamp for m in markets)

    chain.pending_timestamp = first.timestamp + INTERVAL - 1
    assert keeper_bot.step() is None  # just checkpointed: not again before the interval

    chain.pending_timestamp = first.timestamp + INTERVAL
    second = keeper_bot.step()
    assert second.timestamp == first.timestamp + INTERVAL
    assert checkpointed_ids(second.receipt, engine) == markets
    assert keeper_bot.metrics.items_handled == 2 * len(markets)
    assert keeper_bot.metrics.steps == 4 and keeper_bot.metrics.errors == 0


def test_a_market_touched_by_others_keeps_the_keeper_in_phase(keeper_bot, engine, markets, chain,
                                                               admin):
    # Anyone may checkpoint; a recent accrual of one market does not delay the others.
    start = chain.pending_timestamp
    engine.checkpoint_funding([markets[0]], sender=admin)
    chain.pending_timestamp = start + INTERVAL
    checkpoint = keeper_bot.step()
    assert checkpoint is not None and checkpoint.market_ids == tuple(markets)


def test_a_dead_feed_is_skipped_and_does_not_block_the_others(keeper_bot, engine, markets, chain):
    dead = markets[2]
    listed = min(m.last_funding_time for m in keeper_bot.markets())
    chain.pending_timestamp = listed + SHORT_PRICE_AGE + 30  # SOL's only report is now stale
    checkpoint = keeper_bot.step()
    assert checkpoint.skipped == (dead,)
    assert checkpoint.market_ids == tuple(m for m in markets if m != dead)
    assert checkpointed_ids(checkpoint.receipt, engine) == list(checkpoint.market_ids)
    assert engine.last_funding_time(dead) < checkpoint.timestamp
    assert keeper_bot.metrics.counters["skipped"] == 1
    assert keeper_bot.metrics.errors == 0  # judged at the pending block: no reverted attempt


def test_a_market_resumes_when_its_feed_recovers(keeper_bot, engine, markets, chain, reporters,
                                                  project):
    dead = markets[2]
    listed = min(m.last_funding_time for m in keeper_bot.markets())
    chain.pending_timestamp = listed + SHORT_PRICE_AGE + 30
    assert keeper_bot.step().skipped == (dead,)

    feed = project.PriceOracle.at(engine.params(dead).oracle)
    transmit_round(feed, 151 * 10**8, reporters[:1], reporters[0])
    chain.pending_timestamp = chain.pending_timestamp + INTERVAL
    recovered = keeper_bot.step()
    assert recovered.skipped == ()
    assert dead in checkpointed_ids(recovered.receipt, engine)


def test_a_halted_market_is_skipped_then_confirmed_by_its_rounds(keeper_bot, engine, markets, chain,
                                                                 reporters, project):
    """S4: a +30 % jump on ETH (breaker move 15 %) halts it; the keeper leaves it out and keeps the
    others checkpointed, and once the feed's next rounds agree with the new price it sends
    confirm_price and checkpoints ETH again."""
    eth = markets[1]
    start = chain.pending_timestamp
    chain.pending_timestamp = start + INTERVAL
    keeper_bot.step()  # every market has an accepted index now
    feed = project.PriceOracle.at(engine.params(eth).oracle)
    transmit_round(feed, 3_900 * 10**8, reporters[:1], reporters[0])
    assert engine.is_halted(eth)
    chain.pending_timestamp = start + 2 * INTERVAL
    halted = keeper_bot.step()
    assert eth in halted.skipped and markets[0] in halted.market_ids  # (SOL's feed died meanwhile)
    assert eth not in checkpointed_ids(halted.receipt, engine)
    assert "confirmed" not in keeper_bot.metrics.counters  # one round confirms nothing

    for offset, price in ((10, 3_880), (20, 3_910)):  # halt_confirmations: 3 rounds, the jump's included
        chain.pending_timestamp = start + 2 * INTERVAL + offset  # one round per timestamp
        transmit_round(feed, price * 10**8, reporters[:1], reporters[0])
    chain.pending_timestamp = start + 3 * INTERVAL
    resumed = keeper_bot.step()
    assert keeper_bot.metrics.counters["confirmed"] == 1
    assert not engine.is_halted(eth)
    assert engine.accepted_index(eth) == 3_910 * 10**18
    assert eth not in resumed.skipped and eth in checkpointed_ids(resumed.receipt, engine)
