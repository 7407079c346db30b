"""Oracle feeder on anvil: quorum, one round per step, devnet and live clocks, the deviation bound."""

from decimal import Decimal

import ape
import pytest

from vyperp.contracts import deploy_oracle
from vyperp.keepers.oracle_feeder import FeedMode, OracleFeeder, PathSource, SimulatedSource
from vyperp.oracle_signing import transmit_round
from vyperp.sim.paths import JumpDiffusion, PricePath

DECIMALS = 8


@pytest.fixture
def feed(project, admin, reporters):
    """Three reporters, quorum 2, a 5 % deviation bound, like a devnet deployment."""
    return deploy_oracle(project, admin, reporters, quorum=2, max_deviation_bps=500,
                         max_report_age=60)


def round_data(feed, round_id):
    _, answer, _, updated_at, _ = feed.getRoundData(round_id)
    return answer, updated_at


def test_feeder_reaches_quorum_with_two_of_three_reporters(feed, reporters):
    path = PricePath.of([(0, "150000"), (12, "150120.5"), (24, "149980.25")])
    feeder = OracleFeeder(feed, reporters[:2], PathSource(path))
    rounds = feeder.run()
    assert [r.round_id for r in rounds] == [1, 2, 3]  # one transmission, one round per point
    assert [round_data(feed, r.round_id)[0] for r in rounds] == [
        15_000_000_000_000, 15_012_050_000_000, 14_998_025_000_000]
    assert feed.latestAnswer() == 14_998_025_000_000
    assert feeder.metrics.items_handled == 6 and feeder.metrics.errors == 0


def test_devnet_mode_moves_chain_time_along_the_path(feed, reporters, chain):
    path = PricePath.of([(0, 100), (30, 101), (90, 102)])
    feeder = OracleFeeder(feed, reporters, PathSource(path))
    start = chain.pending_timestamp
    rounds = feeder.run()
    assert [round_data(feed, r.round_id)[1] for r in rounds] == [start, start + 30, start + 90]
    assert chain.blocks.head.timestamp == start + 90
    assert feeder.exhausted and feeder.step() is None


def test_fewer_reporters_than_the_quorum_are_refused(feed, reporters):
    with pytest.raises(ValueError, match="quorum of 2"):
        OracleFeeder(feed, reporters[:1], PathSource(PricePath.of([(0, 1)])))


def test_a_move_beyond_the_deviation_bound_is_clamped_to_it(feed, reporters):
    path = PricePath.of([(0, 100), (12, 120), (24, 120)])  # +20 % against a 5 % bound
    feeder = OracleFeeder(feed, reporters, PathSource(path))
    first, jump, catch_up = feeder.run()
    assert not first.clamped
    assert jump.clamped and jump.price == Decimal(105) and jump.requested == 120
    assert feed.getRoundData(jump.round_id)[1] == 105 * 10**DECIMALS
    assert catch_up.price == Decimal("110.25")  # the next round moves another 5 % at most
    assert feeder.metrics.counters["clamped"] == 2


def test_live_mode_publishes_the_latest_due_point_at_the_chains_time(feed, reporters, chain):
    path = PricePath.of([(0, 100), (12, 101), (24, 102), (36, 103)])
    feeder = OracleFeeder(feed, reporters, PathSource(path), mode=FeedMode.LIVE)
    start = chain.pending_timestamp
    assert feeder.step().price == 100
    chain.pending_timestamp = start + 5
    assert feeder.step() is None  # nothing due before t = 12
    chain.pending_timestamp = start + 30
    late = feeder.step()  # 12 and 24 are due: only the latest is published
    assert late.price == 102 and late.timestamp == start + 30
    assert round_data(feed, late.round_id) == (102 * 10**DECIMALS, start + 30)


def test_live_mode_after_another_writers_round_in_the_same_second_uses_the_next(feed, reporters, chain):
    # A replay handing the feed back to the devnet's loop wrote a round in the second the loop
    # steps in: PriceOracle writes one round per timestamp, so the loop's round goes one later.
    feeder = OracleFeeder(feed, reporters, PathSource(PricePath.of([(0, 100)])), mode=FeedMode.LIVE)
    transmit_round(feed, 99 * 10**DECIMALS, reporters, reporters[0])
    handed_back = feed.latestTimestamp()
    chain.pending_timestamp = handed_back  # the loop's block lands in the same second
    published = feeder.step()
    assert published.timestamp == handed_back + 1
    assert round_data(feed, published.round_id) == (100 * 10**DECIMALS, handed_back + 1)
    assert feeder.metrics.errors == 0


def test_a_replay_starting_in_the_second_of_the_loops_round_starts_one_later(feed, reporters, chain):
    # The replay took the feed just after the devnet's loop wrote a round in this second: its
    # first round goes one second later and the rest of the path follows from there.
    transmit_round(feed, 99 * 10**DECIMALS, reporters, reporters[0])
    loop_round = feed.latestTimestamp()
    chain.pending_timestamp = loop_round  # the replay's first block lands in the same second
    feeder = OracleFeeder(feed, reporters, PathSource(PricePath.of([(0, 100), (12, 101)])))
    first, second = feeder.run()
    assert (first.timestamp, second.timestamp) == (loop_round + 1, loop_round + 13)
    assert feeder.metrics.errors == 0


def test_simulated_source_steps_from_the_current_on_chain_price(feed, reporters, chain):
    with ape.reverts("oracle: too few observations"):  # one observation: below the quorum
        transmit_round(feed, 3_000 * 10**DECIMALS, reporters[2:], reporters[2])
    assert feed.latestRound() == 0
    model = JumpDiffusion(annual_volatility=0.8)
    source = SimulatedSource(model, seed=9, step_seconds=12, price_decimals=2,
                             start_price=Decimal(3_000))
    feeder = OracleFeeder(feed, reporters, source)
    rounds = feeder.run(steps=4)
    assert rounds[0].price == 3_000
    assert [r.timestamp - rounds[0].timestamp for r in rounds] == [0, 12, 24, 36]
    prices = [r.price for r in rounds]
    assert len(set(prices)) == 4  # it moves
    assert all(abs(b / a - 1) < Decimal("0.01") for a, b in zip(prices, prices[1:]))  # 80 % vol, 12 s
    # A manual round between steps is where the next move starts from.
    chain.pending_timestamp = rounds[-1].timestamp + 6
    transmit_round(feed, 3_120 * 10**DECIMALS, reporters, reporters[0])
    assert abs(feeder.step().price / 3_120 - 1) < Decimal("0.01")


def test_a_failing_step_is_counted_and_raised(feed, reporters, stranger):
    # The stranger is not one of the oracle's reporters: the transmission with its signed
    # observation reverts.
    feeder = OracleFeeder(feed, [reporters[0], stranger], PathSource(PricePath.of([(0, 100)])))
    with pytest.raises(Exception, match="oracle: signer not a reporter"):
        feeder.step()
    metrics = feeder.metrics.as_dict()
    assert metrics["errors"] == 1 and metrics["steps"] == 1 and metrics["items_handled"] == 0
    assert "not a reporter" in feeder.metrics.last_error
