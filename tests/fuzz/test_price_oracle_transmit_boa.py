"""Rule S9 on PriceOracle (titanoboa): one transmission of signed observations per round.

The two attacks on the report-based oracle (bf9bab5), and what they printed there:
(a) 3 reporters, quorum 2: one reporter's report of 105,000 sat on chain (`ReportSubmitted`,
    `latest_reports`) while the answer stayed 100,000, telling a trader where the next median
    would go: "assert 10500000000000 not in [10500000000000, 10000000000000, 10000000000000]".
(b) re-reports within one block re-wrote the round in place, each inside the 10 % bound of the
    answer they had just moved: "40 reports in one block: round 2 answer 67274999493253 =
    6.73x the previous round (bound 10 %)".
With `transmit`, the observations of a round reach the chain together in one transaction and
only their median is stored or logged; a lone observation below the quorum is refused; a
second transmission in a block reverts, so a block moves the answer at most the bound.

Plus a property: for any fresh signed observations of distinct reporters, the published answer
is their median and the round count grows by exactly one.
"""

import boa
from boa_protocol import contract, examples
import pytest
from eth_account import Account
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vyperp.oracle_signing import sign_round, transmission, transmit_round

pytestmark = pytest.mark.fuzz

START_TIME = 1_700_000_000
PRICE = 100_000 * 10**8
BOUND_BPS = 1_000
MAX_AGE = 3_600
SAME_BLOCK = "oracle: round already written this block"

REPORTERS = [Account.from_key(keccak(text=f"vyperp s9 reporter {i}")) for i in range(7)]


def deploy(reporters, quorum, bound_bps=BOUND_BPS, max_age=MAX_AGE):
    admin = boa.env.generate_address("s9 admin")
    with boa.env.prank(admin):
        return contract("PriceOracle").deploy(8, "BTC / USD",
                        [r.address for r in reporters], quorum, bound_bps, max_age)


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) // 2


def storage_words(oracle):
    """Every storage word the oracle holds: its state variables and the observation of every
    round (the only HashMap it writes besides the reporter flags)."""
    dump = oracle._storage.dump()
    words = [value for value in dump.values() if isinstance(value, int)]
    words += [oracle.getRoundData(r)[1] for r in range(1, oracle.latestRound() + 1)]
    return dump, words


@pytest.fixture
def feed():
    """3 reporters, quorum 2, a 10 % bound; round 1 = 100,000 at START_TIME."""
    with boa.env.anchor():
        reporters = REPORTERS[:3]
        oracle = deploy(reporters, quorum=2)
        boa.env.evm.patch.timestamp = START_TIME
        transmit_round(oracle, PRICE, reporters, reporters[0].address)
        yield oracle, reporters


def test_a_no_single_observation_is_on_chain_before_its_round_boa(feed):
    """Attack (a): a reporter's observation cannot be put on chain alone, and a round's
    transmission leaves nothing on chain but the median."""
    oracle, reporters = feed
    boa.env.evm.patch.timestamp = START_TIME + 12
    secret = PRICE * 105 // 100
    before = storage_words(oracle)[0]
    # A lone observation (below the quorum of 2) is refused and leaves no trace.
    with boa.reverts("oracle: too few observations"):
        transmit_round(oracle, secret, reporters[:1], reporters[0].address)
    assert storage_words(oracle)[0] == before
    assert oracle.latestRound() == 1 and oracle.latestAnswer() == PRICE
    assert not hasattr(oracle, "latest_reports") and not hasattr(oracle, "report")

    # The round's observations arrive together; only their median is stored and logged.
    observations = [secret, PRICE * 102 // 100, PRICE * 99 // 100]
    transmit_round(oracle, observations, reporters, reporters[0].address)
    published = median(observations)
    logs = oracle.get_logs()
    print(f"\n(a) transmit{tuple(observations)}: round {oracle.latestRound()} answer "
          f"{oracle.latestAnswer()}; logs {[type(log).__name__ for log in logs]}")
    assert [type(log).__name__ for log in logs] == ["NewRound", "AnswerUpdated"]
    assert logs[1].current == published == PRICE * 102 // 100
    _, words = storage_words(oracle)
    hidden = [p for p in observations if p != published]
    for word in words:
        for price in hidden:
            # neither the word nor any 80-bit field of it holds a non-median observation
            assert all((word >> shift) & (2**80 - 1) != price for shift in range(0, 256, 8))


def test_b_a_round_is_written_once_per_block_boa(feed):
    """Attack (b): re-transmitting within one block cannot chain the deviation bound."""
    oracle, reporters = feed
    boa.env.evm.patch.timestamp = START_TIME + 12
    with boa.reverts("oracle: deviation too large"):
        transmit_round(oracle, PRICE * 12 // 10, reporters[:2], reporters[0].address)
    price = PRICE * 11 // 10
    transmit_round(oracle, price, reporters[:2], reporters[0].address)
    refused = 0
    for _ in range(20):
        price = price * 11 // 10
        for senders in (reporters[:2], reporters[1:]):
            with boa.reverts(SAME_BLOCK):
                transmit_round(oracle, price, senders, senders[0].address)
            refused += 1
    answer = oracle.latestAnswer()
    print(f"\n(b) 1 round + {refused} refused transmissions in one block: round "
          f"{oracle.latestRound()} answer {answer} = {answer / PRICE:.2f}x the previous round")
    assert oracle.latestRound() == 2 and answer == PRICE * 11 // 10
    # The next block may move another 10 % at most.
    boa.env.evm.patch.timestamp += 1
    with boa.reverts("oracle: deviation too large"):
        transmit_round(oracle, price, reporters[:2], reporters[0].address)
    transmit_round(oracle, answer * 11 // 10, reporters[:2], reporters[0].address)
    assert oracle.latestRound() == 3


def test_observations_of_one_round_cannot_be_replayed_into_another_boa(feed):
    oracle, reporters = feed
    boa.env.evm.patch.timestamp = START_TIME + 12
    round_id, signed = sign_round(oracle, PRICE, reporters)
    oracle.transmit(round_id, transmission(signed), sender=reporters[0].address)
    boa.env.evm.patch.timestamp += 12
    with boa.reverts("oracle: wrong round"):
        oracle.transmit(round_id, transmission(signed), sender=reporters[0].address)
    # Signed for round 2, sent as round 3: the digest differs, so the signers do not recover.
    with boa.reverts("oracle: signer not a reporter"):
        oracle.transmit(round_id + 1, transmission(signed), sender=reporters[0].address)


OBSERVATIONS = st.lists(st.integers(PRICE // 2, PRICE * 3 // 2), min_size=1, max_size=7)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(prices=OBSERVATIONS, data=st.data())
def test_the_answer_is_the_median_of_the_transmitted_observations_boa(prices, data):
    """Any fresh signed observations of distinct reporters (any subset, any count from the
    quorum up, any ages inside max_report_age, in any order before the helper sorts them)
    publish their median as exactly one new round."""
    with boa.env.anchor():
        quorum = data.draw(st.integers(1, len(prices)))
        oracle = deploy(REPORTERS, quorum=quorum, bound_bps=10_000)
        boa.env.evm.patch.timestamp = START_TIME
        transmit_round(oracle, PRICE, REPORTERS[:quorum], REPORTERS[0].address)
        now = START_TIME + data.draw(st.integers(1, 2 * MAX_AGE))
        boa.env.evm.patch.timestamp = now
        signers = data.draw(st.permutations(REPORTERS).map(lambda rs: rs[: len(prices)]))
        signed = []
        for signer, price in zip(signers, prices):
            age = data.draw(st.integers(0, MAX_AGE))
            signed += sign_round(oracle, price, [signer], observed_at=now - age)[1]
        rounds = oracle.latestRound()
        oracle.transmit(rounds + 1, transmission(signed), sender=signers[-1].address)
        assert oracle.latestRound() == rounds + 1
        assert oracle.latestRoundData() == (rounds + 1, median(prices), now, now, rounds + 1)
        assert oracle.getRoundData(rounds)[1] == PRICE
