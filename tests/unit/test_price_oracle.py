"""Unit tests of contracts/PriceOracle.vy on anvil (Ape).

Time is driven explicitly: every transaction is mined at a timestamp the test
chooses (`chain.pending_timestamp = ts`), and views are read after mining an
empty block at the wanted "now" (`chain.mine(timestamp=now)`); anvil's eth_call
runs at the head block's timestamp.
"""

import ape
import pytest

DECIMALS = 8
DESCRIPTION = "BTC / USD"
QUORUM = 2
MAX_DEV_BPS = 1000
MAX_AGE = 60
MAX_ANSWER = 2**80 - 1
NOT_OWNER = "ownable: caller is not the owner"
ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def oracle_type(project):
    # Compile only this source: a sibling contract that does not compile yet
    # (other work in progress) must not break this suite.
    return project.load_contracts("contracts/PriceOracle.vy")["PriceOracle"]


@pytest.fixture(scope="module")
def feed(oracle_type, admin, reporters):
    return oracle_type.deploy(
        DECIMALS, DESCRIPTION, reporters, QUORUM, MAX_DEV_BPS, MAX_AGE, sender=admin
    )


@pytest.fixture
def t0(chain):
    """A base timestamp safely ahead of the chain's clock."""
    return chain.pending_timestamp + 1_000


def report_at(feed, reporter, price, ts, chain):
    chain.pending_timestamp = ts
    tx = feed.report(price, sender=reporter)
    assert tx.timestamp == ts
    return tx


def view_at(chain, ts):
    """Mine an empty block at `ts` so that views see block.timestamp == ts."""
    chain.mine(timestamp=ts)
    assert chain.blocks.head.timestamp == ts


def events_named(tx, name):
    return [log for log in tx.events if log.event_name == name]


def twap_reference(path, now, window):
    """TWAP of a step path [(updated_at, answer), ...] over [now - window, now]."""
    if window == 0:
        return path[-1][1]
    start = max(now - window, 0)
    start = max(start, path[0][0])
    if now == start:
        return path[-1][1]
    area = 0
    for i, (t, answer) in enumerate(path):
        end = path[i + 1][0] if i + 1 < len(path) else now
        lo, hi = max(t, start), min(end, now)
        if hi > lo:
            area += answer * (hi - lo)
    return area // (now - start)


# ---- Deployment ----


def test_constructor_state(feed, admin, reporters, stranger):
    assert feed.owner() == admin
    assert feed.decimals() == DECIMALS
    assert feed.description() == DESCRIPTION
    assert feed.version() == 1
    assert feed.reporters() == [r.address for r in reporters]
    assert all(feed.is_reporter(r) for r in reporters)
    assert not feed.is_reporter(stranger)
    assert feed.quorum() == QUORUM
    assert feed.max_deviation_bps() == MAX_DEV_BPS
    assert feed.max_report_age() == MAX_AGE
    assert feed.latestRound() == 0
    assert feed.latestAnswer() == 0
    assert feed.latestTimestamp() == 0
    addrs, prices, stamps = feed.latest_reports()
    assert addrs == [r.address for r in reporters]
    assert list(prices) == [0, 0, 0] and list(stamps) == [0, 0, 0]


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda a: a.update(reporters=a["reporters"] + [ZERO]), "oracle: zero address"),
        (
            lambda a: a.update(reporters=a["reporters"] + a["reporters"][:1]),
            "oracle: already a reporter",
        ),
        (lambda a: a.update(quorum=0), "oracle: quorum is zero"),
        (lambda a: a.update(quorum=4), "oracle: quorum above reporters"),
        (lambda a: a.update(reporters=[], quorum=1), "oracle: quorum above reporters"),
        (lambda a: a.update(dev=0), "oracle: bad max deviation"),
        (lambda a: a.update(dev=10_001), "oracle: bad max deviation"),
        (lambda a: a.update(age=0), "oracle: bad max report age"),
        (lambda a: a.update(age=86_401), "oracle: bad max report age"),
    ],
)
def test_constructor_reverts(oracle_type, admin, reporters, mutate, reason):
    args = dict(reporters=list(reporters), quorum=2, dev=MAX_DEV_BPS, age=MAX_AGE)
    mutate(args)
    with ape.reverts(reason):
        oracle_type.deploy(
            8, "X", args["reporters"], args["quorum"], args["dev"], args["age"], sender=admin
        )


def test_constructor_accepts_bounds(oracle_type, admin, reporters):
    o = oracle_type.deploy(8, "ETH / USD", reporters, 3, 10_000, 86_400, sender=admin)
    assert (o.quorum(), o.max_deviation_bps(), o.max_report_age()) == (3, 10_000, 86_400)
    assert o.description() == "ETH / USD"
    o = oracle_type.deploy(18, "", reporters[:1], 1, 1, 1, sender=admin)
    assert (o.decimals(), o.quorum(), o.max_deviation_bps(), o.max_report_age()) == (18, 1, 1, 1)


# ---- Reporting ----


def test_views_without_data_revert(feed):
    with ape.reverts("oracle: no data"):
        feed.latestRoundData()
    with ape.reverts("oracle: no data"):
        feed.twap(0)
    with ape.reverts("oracle: no data"):
        feed.twap(3600)
    with ape.reverts("oracle: unknown round"):
        feed.getRoundData(0)
    with ape.reverts("oracle: unknown round"):
        feed.getRoundData(1)


def test_report_reverts(feed, reporters, stranger, admin):
    with ape.reverts("oracle: not a reporter"):
        feed.report(100, sender=stranger)
    with ape.reverts("oracle: not a reporter"):
        feed.report(100, sender=admin)
    with ape.reverts("oracle: price not positive"):
        feed.report(0, sender=reporters[0])
    with ape.reverts("oracle: price not positive"):
        feed.report(-5, sender=reporters[0])
    with ape.reverts("oracle: answer too large"):
        feed.report(MAX_ANSWER + 1, sender=reporters[0])


def test_largest_answer_fits(feed, admin, reporters, chain, t0):
    feed.set_quorum(1, sender=admin)
    report_at(feed, reporters[0], MAX_ANSWER, t0, chain)
    assert feed.latestAnswer() == MAX_ANSWER
    report_at(feed, reporters[0], MAX_ANSWER, t0 + 100, chain)
    view_at(chain, t0 + 300)
    # Cumulative = MAX_ANSWER * 100 survives the packing.
    assert feed.twap(300) == MAX_ANSWER
    assert feed.twap(250) == MAX_ANSWER


def test_quorum_and_events(feed, reporters, chain, t0):
    r0, r1, _ = reporters
    tx = report_at(feed, r0, 100_000, t0, chain)
    assert [e.event_name for e in tx.events] == ["ReportSubmitted"]
    ev = tx.events[0]
    assert (ev.reporter, ev.price, ev.timestamp) == (r0.address, 100_000, t0)
    assert feed.latestRound() == 0
    with ape.reverts("oracle: no data"):
        feed.latestRoundData()

    tx = report_at(feed, r1, 100_001, t0 + 5, chain)
    assert [e.event_name for e in tx.events] == ["ReportSubmitted", "NewRound", "AnswerUpdated"]
    (new_round,) = events_named(tx, "NewRound")
    assert (new_round.roundId, new_round.startedBy, new_round.startedAt) == (1, r1.address, t0 + 5)
    (answer,) = events_named(tx, "AnswerUpdated")
    # Even count: average of the two middle values, rounded down.
    assert (answer.current, answer.roundId, answer.updatedAt) == (100_000, 1, t0 + 5)
    assert feed.latestRoundData() == (1, 100_000, t0 + 5, t0 + 5, 1)
    # Ape's typed filter sees the same log.
    (log,) = tx.events.filter(feed.AnswerUpdated)
    assert log.current == 100_000 and log.roundId == 1


def test_median_odd_and_even(feed, reporters, chain, t0):
    r0, r1, r2 = reporters
    report_at(feed, r0, 100_000, t0, chain)
    report_at(feed, r1, 105_001, t0 + 1, chain)
    assert feed.latestAnswer() == 102_500  # (100_000 + 105_001) // 2
    report_at(feed, r2, 103_000, t0 + 2, chain)
    assert feed.latestAnswer() == 103_000  # median of 3
    report_at(feed, r0, 110_000, t0 + 3, chain)
    assert feed.latestAnswer() == 105_001  # median of {110_000, 105_001, 103_000}
    assert feed.latestRound() == 3
    assert feed.latest_reports() == (
        [r.address for r in reporters],
        [110_000, 105_001, 103_000],
        [t0 + 3, t0 + 1, t0 + 2],
    )


def test_stale_reports_excluded(feed, reporters, chain, t0):
    r0, r1, r2 = reporters
    report_at(feed, r0, 100_000, t0, chain)
    # r0's report is exactly MAX_AGE old: still fresh, so the quorum is met.
    report_at(feed, r1, 100_000, t0 + MAX_AGE, chain)
    assert feed.latestRound() == 1
    # One second later r0 is stale: median of r1 and r2 only (not 100_000).
    report_at(feed, r2, 104_000, t0 + MAX_AGE + 1, chain)
    assert feed.latestRound() == 2
    assert feed.latestAnswer() == 102_000
    # Later only r2 is fresh: below quorum, no new round.
    tx = report_at(feed, r2, 104_100, t0 + 2 * MAX_AGE + 1, chain)
    assert [e.event_name for e in tx.events] == ["ReportSubmitted"]
    assert feed.latestRound() == 2 and feed.latestAnswer() == 102_000


def test_deviation_bound(feed, reporters, chain, t0):
    r0, r1, r2 = reporters
    report_at(feed, r0, 100_000, t0, chain)
    report_at(feed, r1, 100_000, t0 + 1, chain)
    assert feed.latestAnswer() == 100_000
    chain.pending_timestamp = t0 + 2
    with ape.reverts("oracle: deviation too large"):
        feed.report(110_001, sender=r2)
    with ape.reverts("oracle: deviation too large"):
        feed.report(89_999, sender=r2)
    # Exactly 10 % either way is accepted; the median stays 100_000.
    report_at(feed, r2, 110_000, t0 + 3, chain)
    report_at(feed, r2, 90_000, t0 + 4, chain)
    assert feed.latestAnswer() == 100_000
    # The answer is still fresh MAX_AGE after its update.
    chain.pending_timestamp = t0 + 4 + MAX_AGE
    with ape.reverts("oracle: deviation too large"):
        feed.report(200_000, sender=r0)


def test_deviation_skipped_when_answer_stale(feed, reporters, chain, t0):
    r0, r1, _ = reporters
    report_at(feed, r0, 100_000, t0, chain)
    report_at(feed, r1, 100_000, t0 + 1, chain)
    # Stale answer (older than MAX_AGE): a 2x move is accepted.
    report_at(feed, r0, 200_000, t0 + 2 + MAX_AGE, chain)
    assert feed.latestRound() == 1  # r1's report is stale too: no quorum yet
    report_at(feed, r1, 210_000, t0 + 3 + MAX_AGE, chain)
    assert feed.latestRoundData() == (2, 205_000, t0 + 3 + MAX_AGE, t0 + 3 + MAX_AGE, 2)
    # The new answer is fresh again: the bound applies.
    chain.pending_timestamp = t0 + 4 + MAX_AGE
    with ape.reverts("oracle: deviation too large"):
        feed.report(100_000, sender=r0)


def test_one_round_per_block(feed, reporters, chain, t0):
    r0, r1, r2 = reporters
    report_at(feed, r0, 100_000, t0, chain)
    report_at(feed, r1, 100_000, t0 + 1, chain)
    rpc = chain.provider.web3.provider.make_request
    # Two reports in one block: automine off, explicit gas limits (Ape's default
    # gas limit is the block gas limit, so a second tx would not fit the block).
    rpc("evm_setAutomine", [False])
    try:
        chain.pending_timestamp = t0 + 10
        tx1 = feed.report(104_000, sender=r0, gas=300_000, required_confirmations=0)
        tx2 = feed.report(108_000, sender=r2, gas=300_000, required_confirmations=0)
        rpc("evm_mine", [])
    finally:
        rpc("evm_setAutomine", [True])
    head = chain.blocks.head
    assert head.timestamp == t0 + 10 and len(head.transactions) == 2
    rc1 = chain.provider.get_receipt(tx1.txn_hash)
    rc2 = chain.provider.get_receipt(tx2.txn_hash)
    assert rc1.block_number == rc2.block_number == head.number
    # First report opens round 2 with median(104_000, 100_000) ...
    assert [e.event_name for e in rc1.events] == ["ReportSubmitted", "NewRound", "AnswerUpdated"]
    assert events_named(rc1, "AnswerUpdated")[0].current == 102_000
    # ... the second updates round 2 in place (no NewRound).
    assert [e.event_name for e in rc2.events] == ["ReportSubmitted", "AnswerUpdated"]
    (upd,) = events_named(rc2, "AnswerUpdated")
    assert (upd.current, upd.roundId, upd.updatedAt) == (104_000, 2, t0 + 10)
    assert feed.latestRound() == 2
    assert feed.latestRoundData() == (2, 104_000, t0 + 10, t0 + 10, 2)
    assert feed.getRoundData(1) == (1, 100_000, t0 + 1, t0 + 1, 1)
    # The cumulative of round 2 is unchanged by the in-place update.
    view_at(chain, t0 + 20)
    assert feed.twap(19) == (100_000 * 9 + 104_000 * 10) // 19


def test_round_data_views(feed, admin, reporters, chain, t0):
    feed.set_quorum(1, sender=admin)
    r0 = reporters[0]
    for i, price in enumerate([100_000, 101_000, 99_000]):
        report_at(feed, r0, price, t0 + 10 * i, chain)
    assert feed.latestRound() == 3
    assert feed.latestAnswer() == 99_000
    assert feed.latestTimestamp() == t0 + 20
    assert feed.latestRoundData() == (3, 99_000, t0 + 20, t0 + 20, 3)
    assert feed.getRoundData(1) == (1, 100_000, t0, t0, 1)
    assert feed.getRoundData(2) == (2, 101_000, t0 + 10, t0 + 10, 2)
    assert feed.getRoundData(3) == (3, 99_000, t0 + 20, t0 + 20, 3)
    with ape.reverts("oracle: unknown round"):
        feed.getRoundData(4)
    with ape.reverts("oracle: unknown round"):
        feed.getRoundData(2**80 - 1)


# ---- TWAP ----


def test_twap_single_round(feed, admin, reporters, chain, t0):
    feed.set_quorum(1, sender=admin)
    report_at(feed, reporters[0], 123_456, t0, chain)
    # now == first updated_at: the history span is 0.
    assert feed.twap(0) == feed.twap(1) == feed.twap(10**9) == 123_456
    view_at(chain, t0 + 50)
    assert feed.twap(10) == feed.twap(50) == feed.twap(10**12) == 123_456


def test_twap_matches_reference(feed, admin, reporters, chain, t0):
    feed.set_quorum(1, sender=admin)
    feed.set_max_deviation_bps(10_000, sender=admin)
    r0 = reporters[0]
    gaps = [0, 1, 3, 7, 2, 15, 30, 1, 5, 60, 4, 11, 2, 90, 6, 20, 1, 45, 3, 8]
    prices = [
        3_000_000, 3_100_000, 2_950_000, 4_000_000, 5_500_000, 3_000_000, 3_000_001,
        2_000_000, 2_500_000, 4_900_000, 4_800_000, 6_000_000, 7_777_777, 9_000_000,
        5_000_000, 5_000_003, 4_444_444, 8_000_000, 7_000_000, 6_999_999,
    ]
    path, ts = [], t0
    for gap, price in zip(gaps, prices):
        ts += gap
        report_at(feed, r0, price, ts, chain)
        path.append((ts, price))
    assert feed.latestRound() == len(path)
    # twap at now == latest updated_at
    span = ts - t0
    for w in [0, 1, 2, 8, 45, 46, 100, span, span + 1, 10**9]:
        assert feed.twap(w) == twap_reference(path, ts, w), w
    now = ts + 13
    view_at(chain, now)
    windows = [0, 1, 5, 13, 14, 15, 21, 22, 40, 66, 67, 68, 100, 150, 200, 250, 299]
    windows += [now - t for t, _ in path]  # windows starting exactly on a round
    windows += [now - t + 1 for t, _ in path] + [now - t - 1 for t, _ in path]
    windows += [span + 13, span + 14, 10**6, now, now + 1, 2**64]
    for w in windows:
        assert feed.twap(w) == twap_reference(path, now, w), w
    # Spot checks against hand-computed values.
    assert feed.twap(13) == 6_999_999  # inside the latest round
    assert feed.twap(21) == (7_000_000 * 8 + 6_999_999 * 13) // 21


# ---- Administration ----


def test_add_and_remove_reporter(feed, admin, reporters, stranger, chain, t0):
    r0, r1, r2 = reporters
    tx = feed.add_reporter(stranger, sender=admin)
    assert [(e.event_name, e.reporter) for e in tx.events] == [("ReporterAdded", stranger.address)]
    assert feed.is_reporter(stranger)
    assert feed.reporters() == [r0.address, r1.address, r2.address, stranger.address]
    report_at(feed, stranger, 100_000, t0, chain)
    report_at(feed, r0, 100_000, t0 + 1, chain)
    assert feed.latestRound() == 1

    tx = feed.remove_reporter(r0, sender=admin)
    assert [(e.event_name, e.reporter) for e in tx.events] == [("ReporterRemoved", r0.address)]
    assert not feed.is_reporter(r0)
    # Removal swaps the last reporter into the gap.
    assert feed.reporters() == [stranger.address, r1.address, r2.address]
    with ape.reverts("oracle: not a reporter"):
        feed.report(100_000, sender=r0)
    # The removed reporter's report is forgotten, even after re-adding it:
    # stranger's fresh report alone does not meet the quorum of 2.
    feed.add_reporter(r0, sender=admin)
    addrs, prices, stamps = feed.latest_reports()
    assert addrs[-1] == r0.address and prices[-1] == 0 and stamps[-1] == 0
    tx = report_at(feed, stranger, 100_500, t0 + 2, chain)
    assert feed.latestRound() == 1


def test_reporter_admin_reverts(feed, oracle_type, admin, reporters, stranger):
    with ape.reverts(NOT_OWNER):
        feed.add_reporter(stranger, sender=stranger)
    with ape.reverts(NOT_OWNER):
        feed.remove_reporter(reporters[0], sender=reporters[0])
    with ape.reverts("oracle: zero address"):
        feed.add_reporter(ZERO, sender=admin)
    with ape.reverts("oracle: already a reporter"):
        feed.add_reporter(reporters[1], sender=admin)
    with ape.reverts("oracle: unknown reporter"):
        feed.remove_reporter(stranger, sender=admin)
    feed.remove_reporter(reporters[2], sender=admin)
    # quorum 2 with 2 reporters left: removing one more would break the quorum.
    with ape.reverts("oracle: quorum above reporters"):
        feed.remove_reporter(reporters[0], sender=admin)
    # At most 16 reporters.
    many = [f"0x{i:040x}" for i in range(1, 17)]
    full = oracle_type.deploy(8, "X", many, 1, 100, 60, sender=admin)
    assert len(full.reporters()) == 16
    with ape.reverts("oracle: too many reporters"):
        full.add_reporter(stranger, sender=admin)
    full.remove_reporter(many[0], sender=admin)
    full.add_reporter(stranger, sender=admin)
    assert full.reporters()[0] == many[-1] and full.reporters()[-1] == stranger.address


def test_parameter_setters(feed, admin, stranger):
    tx = feed.set_quorum(3, sender=admin)
    assert [(e.event_name, e.old_quorum, e.new_quorum) for e in tx.events] == [
        ("QuorumUpdated", 2, 3)
    ]
    assert feed.quorum() == 3
    tx = feed.set_max_deviation_bps(10_000, sender=admin)
    (ev,) = tx.events
    assert (ev.event_name, ev.old_max_deviation_bps, ev.new_max_deviation_bps) == (
        "MaxDeviationBpsUpdated", MAX_DEV_BPS, 10_000,
    )
    assert feed.max_deviation_bps() == 10_000
    tx = feed.set_max_report_age(86_400, sender=admin)
    (ev,) = tx.events
    assert (ev.event_name, ev.old_max_report_age, ev.new_max_report_age) == (
        "MaxReportAgeUpdated", MAX_AGE, 86_400,
    )
    assert feed.max_report_age() == 86_400

    for fn, value in [
        (feed.set_quorum, 1),
        (feed.set_max_deviation_bps, 1),
        (feed.set_max_report_age, 1),
    ]:
        with ape.reverts(NOT_OWNER):
            fn(value, sender=stranger)
    with ape.reverts("oracle: quorum is zero"):
        feed.set_quorum(0, sender=admin)
    with ape.reverts("oracle: quorum above reporters"):
        feed.set_quorum(4, sender=admin)
    for bad in (0, 10_001):
        with ape.reverts("oracle: bad max deviation"):
            feed.set_max_deviation_bps(bad, sender=admin)
    for bad in (0, 86_401):
        with ape.reverts("oracle: bad max report age"):
            feed.set_max_report_age(bad, sender=admin)


def test_max_report_age_setter_changes_freshness(feed, admin, reporters, chain, t0):
    r0, r1, _ = reporters
    report_at(feed, r0, 100_000, t0, chain)
    feed.set_max_report_age(200, sender=admin)
    report_at(feed, r1, 100_000, t0 + 150, chain)  # r0 is 150 s old: fresh under 200
    assert feed.latestRound() == 1


def test_ownership(feed, admin, stranger):
    with ape.reverts(NOT_OWNER):
        feed.transfer_ownership(stranger, sender=stranger)
    feed.transfer_ownership(stranger, sender=admin)
    assert feed.owner() == stranger
    with ape.reverts(NOT_OWNER):
        feed.set_quorum(1, sender=admin)
    feed.set_quorum(1, sender=stranger)
    feed.renounce_ownership(sender=stranger)
    assert feed.owner() == ZERO
    with ape.reverts(NOT_OWNER):
        feed.set_quorum(2, sender=stranger)


# ---- Gas ----


def test_gas(feed, admin, reporters, chain, t0):
    r0, r1, r2 = reporters
    report_at(feed, r0, 100_000, t0, chain)
    first_round = report_at(feed, r1, 100_000, t0 + 1, chain).gas_used
    report_at(feed, r2, 100_100, t0 + 2, chain)
    # Build a longer history (quorum 2, every report publishes a round).
    ts, steady = t0 + 2, []
    for i in range(62):
        ts += 7
        tx = report_at(feed, reporters[i % 3], 100_000 + (i % 5) * 10, ts, chain)
        steady.append(tx.gas_used)
    assert feed.latestRound() == 64
    no_quorum = report_at(feed, r0, 100_000, ts + 1000, chain).gas_used
    view_at(chain, ts + 1001)
    # Windows reaching back 0, ~0, 1, 15 and 57 rounds.
    twap_cost = {
        w: feed.twap.estimate_gas_cost(w, sender=admin) for w in (0, 500, 1005, 1100, 1400)
    }
    print(
        f"\nGAS report(): first round {first_round}, steady new round {max(steady)}, "
        f"below quorum {no_quorum}; twap tx cost (incl. 21k base) by window {twap_cost}"
    )
    assert first_round < 120_000 and max(steady) < 90_000 and no_quorum < 60_000
    assert twap_cost[500] < 27_000  # window inside the latest round: 2 SLOADs
    # Logarithmic in the rounds inside the window, not linear.
    assert twap_cost[1400] < 60_000
    assert twap_cost[1400] - twap_cost[1100] < 15_000


def test_twap_gas_on_a_regular_heartbeat(feed, admin, reporters, chain, t0):
    # The engine's read: twap(180) over rounds 12 s apart (~15 rounds in the window). The
    # spacing guess is exact, so twap reads the head slot, the latest round and two rounds
    # around the window's start, wherever `now` falls between two rounds.
    feed.set_quorum(1, sender=admin)
    path = []
    for i in range(51):  # 600 s of history
        ts = t0 + 12 * i
        report_at(feed, reporters[0], 100_000 + (i * 37) % 500, ts, chain)
        path.append((ts, 100_000 + (i * 37) % 500))
    costs = []
    for advance in (0, 1, 6, 11):
        now = ts + advance
        view_at(chain, now)
        assert feed.twap(180) == twap_reference(path, now, 180)
        costs.append(feed.twap.estimate_gas_cost(180, sender=admin))
    print(f"\nGAS twap(180) tx cost (incl. 21k base) on a 12 s heartbeat: {costs}")
    # 4 cold SLOADs (8,400) + 21,000 base + calldata and arithmetic; a fifth read would
    # add 2,100 (galloping back from the latest round took 11 reads, ~46,000 in all).
    assert max(costs) < 34_500
