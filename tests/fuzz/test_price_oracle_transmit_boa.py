"""S9 attack tests on PriceOracle (titanoboa), first written against the `report` interface.

(a) A reporter's observation must not be visible on chain before the round it belongs to.
(b) A round must not be re-written within a block, so one block moves the answer at most
    the deviation bound.
"""

import boa
import pytest

pytestmark = pytest.mark.fuzz

START_TIME = 1_700_000_000
PRICE = 100_000 * 10**8


@pytest.fixture
def feed():
    with boa.env.anchor():
        reporters = [boa.env.generate_address(f"reporter{i}") for i in range(3)]
        oracle = boa.load("contracts/PriceOracle.vy", 8, "BTC / USD", reporters, 2, 1_000, 3_600)
        boa.env.evm.patch.timestamp = START_TIME
        for reporter in reporters:
            oracle.report(PRICE, sender=reporter)
        yield oracle, reporters


def test_a_lone_observation_is_not_visible_before_its_round_boa(feed):
    oracle, reporters = feed
    boa.env.evm.patch.timestamp = START_TIME + 12
    secret = PRICE * 105 // 100
    oracle.report(secret, sender=reporters[0])
    logs = oracle.get_logs()
    revealed = [log for log in logs if secret in tuple(getattr(log, "args", ()) or ())]
    _, prices, _ = oracle.latest_reports()
    print(f"\n(a) after one report of {secret}: round {oracle.latestRound()} answer "
          f"{oracle.latestAnswer()}; logs {[type(l).__name__ for l in logs]} {logs}; "
          f"latest_reports prices {list(prices)}")
    assert oracle.latestAnswer() == PRICE  # the median has not moved ...
    assert secret not in list(prices)  # ... and nothing tells where it will go
    assert not revealed


def test_one_block_moves_a_round_at_most_the_deviation_bound_boa(feed):
    oracle, reporters = feed
    boa.env.evm.patch.timestamp = START_TIME + 12
    price = PRICE
    writes = 0
    for _ in range(20):
        price = price * 11 // 10
        for reporter in reporters[:2]:
            oracle.report(price, sender=reporter)
            writes += 1
    answer = oracle.latestAnswer()
    print(f"\n(b) {writes} reports in one block: round {oracle.latestRound()} answer {answer} "
          f"= {answer / PRICE:.2f}x the previous round (bound 10 %)")
    assert answer <= PRICE * 11 // 10
