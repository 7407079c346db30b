"""Property tests of PriceOracle.twap, run in-process on titanoboa (not anvil).

`twap` guesses the round where its window starts from the recent spacing of rounds and
searches from that guess, so a bad guess may cost storage reads but must never change the
result. These tests compare `twap(window)`, bit for bit, with an exact integer reference
computed from the published step path, over histories made to fool the guess: regimes of
different spacing one after the other (bursts of 1 s rounds, 12 s heartbeats, slow rounds),
outages of hours and days, second transmissions in one block (refused: a round is written
once, rule S9),
answers near 2**80 and 500+ rounds. Windows cover 0, windows inside the latest round,
windows starting exactly on, just before and just after a round, windows reaching back
before the first round and windows longer than the clock.

Every test name ends in `_boa`.
"""

import random

import boa
from boa_protocol import contract, examples
import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vyperp.oracle_signing import transmit_round

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
START_TIME = 1_700_000_000
DAY = 86_400
ENGINE_WINDOW = 180
NO_DATA = "oracle: no data"
SAME_BLOCK = "oracle: round already written this block"

SETTINGS = settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def twap_reference(path, now, window):
    """Floor of the time-weighted average of the step path [(updated_at, answer), ...].

    Over [now - window, now] (from 0 when window >= now), clipped to start at round 1's
    updated_at; the latest answer for window 0 or a window inside the latest round.
    """
    last_t, last_answer = path[-1]
    start = now - window if window < now else 0
    if window == 0 or start >= last_t:
        return last_answer
    start = max(start, path[0][0])
    if now == start:
        # A single round, published at `now`: no time has passed.
        return last_answer
    area = 0
    for (t, answer), (next_t, _) in zip(path, path[1:] + [(now, None)]):
        area += answer * max(0, min(next_t, now) - max(t, start))
    return area // (now - start)


class Feed:
    """A PriceOracle with one reporter (quorum 1) and the step path it has published, as the
    reference sees it. Answers stay in [base, 2 * base) under a 100 % deviation bound, so
    no transmission is rejected for its deviation; a second one in a block is."""

    def __init__(self, oracle, reporter):
        self.oracle = oracle
        self.reporter = reporter
        self.path = []

    def transmit(self, answer: int):
        transmit_round(self.oracle, answer, [self.reporter], self.reporter.address)

    def report_at(self, ts: int, answer: int):
        boa.env.evm.patch.timestamp = ts
        if self.path and self.path[-1][0] == ts:
            # Same block: a round is written once (S9); the path is unchanged.
            with boa.reverts(SAME_BLOCK):
                self.transmit(answer)
        else:
            self.transmit(answer)
            self.path.append((ts, answer))

    def check_twaps(self, now: int, windows):
        boa.env.evm.patch.timestamp = now
        assert self.oracle.latestRound() == len(self.path)
        # the latest round as the head's copy (latestRoundData) and as its observation agree
        latest_t, latest_answer = self.path[-1]
        expected = (len(self.path), latest_answer, latest_t, latest_t, len(self.path))
        assert tuple(self.oracle.latestRoundData()) == expected
        assert tuple(self.oracle.getRoundData(len(self.path))) == expected
        assert (self.oracle.latestAnswer(), self.oracle.latestTimestamp()) == (latest_answer, latest_t)
        for window in windows:
            assert self.oracle.twap(window) == twap_reference(self.path, now, window), (
                now,
                window,
            )


def deploy_feed() -> Feed:
    reporter = Account.from_key(keccak(text="vyperp twap reporter"))
    oracle = contract("PriceOracle").deploy(8, "BTC / USD", [reporter.address], 1, 10_000, DAY)
    return Feed(oracle, reporter)


def starting_on(now, rounds):
    """Windows starting exactly on, one second before and one second after each round."""
    return [w for t, _ in rounds for w in (now - t - 1, now - t, now - t + 1) if w >= 0]


def edge_windows(path, now):
    """Windows on the edges of the search: 0, the latest rounds, round 1, the clock."""
    first_t = path[0][0]
    windows = {0, 1, ENGINE_WINDOW, now - first_t - 1, now - first_t, now - first_t + 1}
    windows |= {now, now + 1, MAX_UINT256, *starting_on(now, path[-3:])}
    return sorted(w for w in windows if w >= 0)


# Gaps between transmissions: same block (refused), bursts, heartbeats, irregular, hours and days of outage.
GAPS = st.one_of(
    st.just(0),
    st.integers(1, 3),
    st.just(12),
    st.integers(4, 60),
    st.integers(61, 3_600),
    st.integers(3_601, 3 * DAY),
)
# A regime: a gap before it (often an outage), then `count` rounds `gap` seconds apart, each
# jittered by up to `jitter` seconds, then a check `probe` seconds after its last round.
REGIMES = st.tuples(GAPS, st.integers(1, 12), GAPS, st.integers(0, 30), st.integers(0, 60))
# base 2**79 puts the answers near 2**80, the largest the oracle stores.
BASES = st.sampled_from([1, 10**8, 150_000 * 10**8, 2**79])


@pytest.fixture(scope="module")
def empty_feed():
    with boa.env.anchor():
        boa.env.evm.patch.timestamp = START_TIME
        yield deploy_feed()


@SETTINGS
@given(
    base=BASES,
    regimes=st.lists(REGIMES, min_size=1, max_size=6),
    rng=st.randoms(use_true_random=False),
    data=st.data(),
)
def test_twap_matches_reference_on_random_histories_boa(empty_feed, base, regimes, rng, data):
    feed = empty_feed
    with boa.env.anchor():
        feed.path = []
        boa.env.evm.patch.timestamp = START_TIME
        for window in (0, ENGINE_WINDOW, MAX_UINT256):
            with boa.reverts(NO_DATA):
                feed.oracle.twap(window)
        ts = START_TIME
        for lead, count, gap, jitter, probe in regimes:
            for i in range(count):
                ts += (lead if i == 0 else gap) + rng.randint(0, jitter)
                feed.report_at(ts, base + rng.randrange(base))
            # A check part way through: the window's start in the last rounds, where the
            # search meets the latest round, and one anywhere.
            now = ts + probe
            windows = {0, probe, ENGINE_WINDOW, *starting_on(now, feed.path[-3:])}
            windows.add(data.draw(st.integers(0, now - START_TIME + 10)))
            feed.check_twaps(now, sorted(windows))
            ts = now
        for now in (ts, ts + data.draw(st.integers(1, 2 * DAY))):
            windows = edge_windows(feed.path, now)
            windows += starting_on(now, rng.sample(feed.path, min(4, len(feed.path))))
            windows += data.draw(
                st.lists(st.integers(0, now - START_TIME + 100), min_size=1, max_size=4)
            )
            feed.check_twaps(now, windows)


def build_long_history(feed: Feed, seed: int):
    """About 520 rounds: 12 s heartbeats with missed blocks, bursts of 1-2 s rounds, blocks
    with a refused second transmission, slow stretches, and outages of an hour, eight hours and three days
    that leave the spacing estimate far off for the rounds after them. Checks the windows
    starting in the last rounds right after each change of spacing, where it is most off."""
    rng = random.Random(seed)
    ts, answer = START_TIME, 150_000 * 10**8

    def report(gap):
        nonlocal ts, answer
        ts += gap
        answer = max(10**8, answer + rng.randint(-answer // 50, answer // 50))
        feed.report_at(ts, answer)

    def heartbeat(rounds):
        for _ in range(rounds):
            report(12 if rng.random() > 0.1 else 24)

    def check_recent():
        now = ts + rng.randint(0, 11)
        feed.check_twaps(now, [ENGINE_WINDOW, *starting_on(now, feed.path[-6:])])

    heartbeat(90)
    for _ in range(30):
        report(rng.randint(1, 2))
    heartbeat(3)
    check_recent()
    for _ in range(5):
        report(12)
        report(0)
        report(0)
    heartbeat(40)
    report(3_600)
    heartbeat(4)
    check_recent()
    heartbeat(56)
    for _ in range(40):
        report(rng.randint(60, 900))
    report(8 * 3_600)
    for _ in range(20):
        report(2)
    check_recent()
    heartbeat(80)
    report(3 * DAY)
    heartbeat(2)
    check_recent()
    heartbeat(48)
    report(DAY // 2)
    heartbeat(45)
    for _ in range(20):
        report(1)
    report(300)
    report(300)
    check_recent()
    heartbeat(40)


@pytest.fixture(scope="module")
def long_feed():
    with boa.env.anchor():
        feed = deploy_feed()
        build_long_history(feed, seed=7)
        assert len(feed.path) > 500
        yield feed


@SETTINGS
@given(data=st.data())
def test_twap_matches_reference_on_a_long_history_boa(long_feed, data):
    feed = long_feed
    path = feed.path
    now = path[-1][0] + data.draw(st.one_of(st.integers(0, 30), st.integers(31, 2 * DAY)))
    # Windows reaching back to random rounds (some just past an outage or a burst) and
    # random lengths from seconds to the whole history.
    rounds = data.draw(st.lists(st.sampled_from(path), min_size=1, max_size=5))
    windows = edge_windows(path, now) + starting_on(now, rounds)
    windows += data.draw(
        st.lists(
            st.one_of(st.integers(0, 3_600), st.integers(0, now - START_TIME + 100)),
            min_size=1,
            max_size=6,
        )
    )
    feed.check_twaps(now, windows)


def test_round_ids_stop_at_the_head_field_limit_boa(empty_feed):
    """The head keeps the latest round id in 56 bits: the round after 2**56 - 1 reverts
    (reached here by writing the head; at one round a second that is 2 billion years)."""
    feed = empty_feed
    with boa.env.anchor():
        boa.env.evm.patch.timestamp = START_TIME
        feed.transmit(10**8)
        layout = feed.oracle.compiler_data.storage_layout["storage_layout"]
        head_slot = layout["_head"]["slot"]
        head = boa.env.get_storage(feed.oracle.address, head_slot)
        last_id = 2**56 - 1
        boa.env.set_storage(feed.oracle.address, head_slot, (head % 2**200) | last_id << 200)
        observation_slot = layout["_observations"]["slot"]
        first = boa.env.get_storage(feed.oracle.address, mapping_slot(observation_slot, 1))
        boa.env.set_storage(feed.oracle.address, mapping_slot(observation_slot, last_id), first)
        assert feed.oracle.latestRound() == last_id
        boa.env.evm.patch.timestamp = START_TIME + 12
        with boa.reverts("oracle: round limit"):
            feed.transmit(10**8)
        # the same block refuses a second transmission before it looks at the round id
        boa.env.evm.patch.timestamp = START_TIME
        with boa.reverts(SAME_BLOCK):
            feed.transmit(2 * 10**8)
        assert feed.oracle.latestRoundData()[1] == 10**8


def mapping_slot(slot: int, key: int) -> int:
    """Storage slot of HashMap[key] in Vyper: keccak256(slot ++ key)."""
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + key.to_bytes(32, "big")), "big")
