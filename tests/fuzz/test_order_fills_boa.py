"""Rule S8 on titanoboa: an order fills at the first oracle round published strictly after the
block of its commitment, whoever executes it and whenever; refusals that say nothing about the
order leave it pending without paying anyone; revoking an operator cancels what it committed.

The attack tests reproduce what was found on the order book before S8 (a keeper, or the owner
executing its own order, chose the round; a pause or the breaker cancelled orders for the
keeper's fee; an operator's order survived its revocation). The property draws round sequences
and execution times and checks the fill against the engine's fill at the first round after the
commit.
"""

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boa_protocol import contract, examples, oracle_answer, publish_round

from vyperp.oracle_signing import transmit_round
from vyperp.orders import PENDING_REFUSAL_PREFIX, PENDING_REFUSALS
from vyperp.units import WAD

MAX_AGE = 60
FEE = 10**6  # 1 dUSD
SIZE = 30 * WAD  # 30 BTC
ANY_BUY = 10**30
MARKET, LIMIT, STOP, TAKE = 0, 1, 2, 3
EXECUTED, CANCELLED, EXPIRED, PENDING, MISSING, ARMED = 1, 2, 3, 4, 5, 6


def configure(book, market_id, max_age, min_fee, sender):
    """set_market_settings before and after S8 (which dropped min_delay)."""
    inputs = next(f for f in book.abi if f.get("name") == "set_market_settings")["inputs"]
    if len(inputs) == 4:
        book.set_market_settings(market_id, 1, max_age, min_fee, sender=sender)
    else:
        book.set_market_settings(market_id, max_age, min_fee, sender=sender)


@pytest.fixture(scope="module")
def env(boa_protocol):
    """The module's protocol with an order book on market 0 (keeper fee minimum 0), a
    10,000,000 dUSD vault and two traders with 1,000,000 dUSD of collateral each."""
    p = boa_protocol
    with boa.env.anchor():
        with boa.env.prank(p.admin):
            book = contract("OrderBook").deploy(p.engine)
            p.engine_admin.set_order_book(book)
            configure(book, 0, MAX_AGE, 0, p.admin)
        p.seed_vault(10_000_000 * 10**6)
        for trader in p.traders:
            p.deposit(trader, 1_000_000 * 10**6)
            p.token.approve(book, 2**256 - 1, sender=trader)
        yield p, book


@pytest.fixture
def state(env):
    with boa.env.anchor():
        yield env


def at(p, timestamp):
    boa.env.evm.patch.timestamp = timestamp


def publish(p, price, after=0):
    """One round at `price` (human units), `after` seconds from now."""
    at(p, p.now() + after)
    publish_round(p.oracle, oracle_answer(price), [p.reporter])


def commit(p, book, trader, size=SIZE, kind=MARKET, acceptable=ANY_BUY, fee=0, lifetime=3600, sender=None, **options):
    return book.commit_order(0, kind, size, acceptable, options.get("trigger", 0), p.now() + lifetime, fee,
                             options.get("reduce_only", False), False, False, 0, trader, sender=sender or trader)


def quote(p, size=SIZE):
    """The engine's fill for `size` at the latest round and the current skew."""
    return p.engine.fill_price(0, size)


def filled_at(p, book):
    """The fill price of the engine trade in the book's last call."""
    (modified,) = p.events(book, "PositionModified")
    return modified.fill_price


def outcome(p, book, order_id, sender):
    """execute_many's outcome for one order (never reverts for it)."""
    return book.execute_many([order_id], sender=sender)[0]


# ---------------------------------------------------------------------------
# Attacks found before S8
# ---------------------------------------------------------------------------


def test_self_execution_before_a_pending_report_fills_at_the_first_round_after_the_commit(state):
    """The owner committed with a zero keeper fee and, with a +5 % report pending, executed
    its own order at the round of its choice (+221,358 on 30 BTC). Now the fill is the first
    round after the commit block whoever executes and whenever."""
    p, book = state
    trader = p.traders[0]
    publish(p, 150_000, after=1)
    at(p, p.now() + 1)
    order_id = commit(p, book, trader)
    publish(p, 152_000)  # same block as the commit: the trader may have seen it, never counts
    publish(p, 153_000, after=1)  # the first round strictly after the commit block
    first_round_fill = quote(p)
    publish(p, 150_000, after=1)  # the trader waits for a better round...
    assert outcome(p, book, order_id, trader) == EXECUTED  # ...and executes before the +5 % lands
    assert filled_at(p, book) == first_round_fill
    publish(p, 157_500)  # the pending +5 % report
    position = p.engine.open_positions(trader, 0, 0)
    assert position.size == SIZE


def test_the_first_round_after_the_commit_is_the_fill_even_when_it_is_the_awaited_report(state):
    """Executing in the block of the first round is no different from executing later."""
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader, fee=FEE, sender=trader)
    publish(p, 157_500, after=1)  # +5 %: the first round after the commit
    first_round_fill = quote(p)
    publish(p, 149_000, after=20)
    before = p.token.balanceOf(keeper)
    assert outcome(p, book, order_id, keeper) == EXECUTED
    assert filled_at(p, book) == first_round_fill
    assert p.token.balanceOf(keeper) - before == FEE


def test_a_capacity_refusal_does_not_let_the_owner_choose_the_fill_round(state):
    """A full market kept the order pending and its owner executed it once a later round
    suited it. Now the order waits at its own round and fills at that round's price."""
    p, book = state
    trader, other = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    capped = p.set_market(max_oi_vault_ratio=10**12)  # the vault carries 10 dUSD of open interest
    order_id = commit(p, book, trader)
    publish(p, 153_000, after=1)  # the first round after the commit
    first_round_fill = quote(p)
    assert outcome(p, book, order_id, other) == PENDING  # refused: open interest cap
    assert book.order(order_id).owner == trader
    publish(p, 145_000, after=10)  # a round the owner likes better
    p.engine_admin.set_market_params(0, capped.with_(max_oi_vault_ratio=0).as_tuple(), sender=p.admin)
    assert outcome(p, book, order_id, trader) == EXECUTED
    assert filled_at(p, book) == first_round_fill


def test_an_order_refused_until_its_round_left_the_window_expires_with_its_fee_refunded(state):
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    p.set_market(max_oi_vault_ratio=10**12)
    order_id = commit(p, book, trader, fee=FEE)
    publish(p, 151_000, after=1)
    assert outcome(p, book, order_id, keeper) == PENDING
    publish(p, 151_000, after=MAX_AGE + 1)
    before = p.token.balanceOf(trader), p.token.balanceOf(keeper)
    assert outcome(p, book, order_id, keeper) == EXPIRED
    (cancelled,) = p.events(book, "OrderCancelled")
    assert cancelled.reason == "order_book: fill round left the window"
    assert (p.token.balanceOf(trader), p.token.balanceOf(keeper)) == (before[0] + FEE, before[1])


@pytest.mark.parametrize("refusal", ["engine paused", "breaker", "book paused"])
def test_pause_and_breaker_leave_orders_pending_and_pay_no_keeper(state, refusal):
    """A pause or the breaker cancelled resting and market orders and paid their fee to the
    keeper. Now the order waits and fills at its round once the refusal lifts."""
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader, fee=FEE)
    if refusal == "breaker":
        p.set_market(breaker_move=WAD // 10)
        publish(p, 150_000, after=1)  # opens the breaker's window
        publish(p, 160_000, after=1)  # +6.7 %: inside the bound, accepted by a checkpoint
        p.engine.checkpoint_funding([0], sender=keeper)
        publish(p, 170_000, after=1)  # +13 % on the window, +6.3 % on the last accepted index:
        #                               trips the breaker (not the S4 halt), reduce-only
    else:
        publish(p, 150_000, after=1)
    first_round_fill = quote(p) if refusal != "breaker" else None
    if refusal == "engine paused":
        p.engine_admin.pause(sender=p.guardian)
    elif refusal == "book paused":
        book.pause(sender=p.admin)
    before = p.token.balanceOf(keeper)
    assert outcome(p, book, order_id, keeper) == PENDING
    (skipped,) = p.events(book, "OrderSkipped")
    assert skipped.reason == {
        "engine paused": "engine: paused",
        "breaker": "engine: market is reduce-only",
        "book paused": "order_book: paused",
    }[refusal]
    assert p.token.balanceOf(keeper) == before
    assert book.order(order_id).owner == trader
    if refusal == "engine paused":
        p.engine_admin.unpause(sender=p.guardian)
    elif refusal == "book paused":
        book.unpause(sender=p.admin)
    else:
        p.engine_admin.clear_breaker(0, sender=p.guardian)
    assert outcome(p, book, order_id, keeper) == EXECUTED
    if first_round_fill is not None:
        assert filled_at(p, book) == first_round_fill
    assert p.token.balanceOf(keeper) - before == FEE


@pytest.mark.parametrize("reapprove", [False, True])
def test_revoking_an_operator_cancels_the_orders_it_committed(state, reapprove):
    """An order an operator committed still executed after the owner revoked the operator."""
    p, book = state
    owner, operator, keeper = p.traders[0], p.traders[2], p.traders[1]
    p.engine.set_operator(operator, True, sender=owner)
    p.token.approve(book, 2**256 - 1, sender=operator)
    publish(p, 150_000, after=1)
    by_operator = commit(p, book, owner, fee=FEE, sender=operator)
    by_owner = commit(p, book, owner, size=WAD, fee=FEE)
    p.engine.set_operator(operator, False, sender=owner)
    if reapprove:
        p.engine.set_operator(operator, True, sender=owner)  # must not revive the old order
    publish(p, 150_000, after=1)
    assert book.status(by_operator)[0] != EXECUTED
    assert by_operator not in [i for i in book.executable_orders(0, 100).ids if book.status(i)[0] == EXECUTED]
    before = p.token.balanceOf(owner), p.token.balanceOf(keeper), p.token.balanceOf(operator)
    assert list(book.execute_many([by_operator, by_owner], sender=keeper)) == [CANCELLED, EXECUTED]
    (cancelled,) = p.events(book, "OrderCancelled")
    assert (cancelled.reason, cancelled.fee_to) == ("order_book: operator revoked", owner)
    assert p.token.balanceOf(owner) == before[0] + FEE  # refunded to the owner
    assert p.token.balanceOf(keeper) == before[1] + FEE  # the fee of the one that filled
    assert p.engine.open_positions(owner, 0, 0).size == WAD


# ---------------------------------------------------------------------------
# S8 fee rules, arming, cancellation
# ---------------------------------------------------------------------------


def test_expiry_refunds_the_owner_whoever_removes_the_order(state):
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader, kind=LIMIT, acceptable=100_000 * WAD, fee=FEE, lifetime=50)
    at(p, p.now() + 50)
    before = p.token.balanceOf(trader), p.token.balanceOf(keeper)
    assert outcome(p, book, order_id, keeper) == EXPIRED
    assert (p.token.balanceOf(trader), p.token.balanceOf(keeper)) == (before[0] + FEE, before[1])


def test_no_round_after_the_commit_leaves_the_order_pending(state):
    p, book = state
    trader = p.traders[0]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader)  # in the block of the latest round
    # S9: the oracle writes no second round in the commit's block (the report-based oracle
    # re-wrote the latest round in place here), so the order waits for a later block's round.
    with boa.reverts("oracle: round already written this block"):
        transmit_round(p.oracle, oracle_answer(150_000), [p.reporter], p.reporter.address)
    assert book.status(order_id) == (PENDING, "order_book: no round after the order yet")
    with boa.reverts("order_book: no round after the order yet"):
        book.execute(order_id, sender=trader)


def test_a_limit_order_arms_on_its_trigger_and_fills_at_the_next_round(state):
    """Arming on the latest round where the limit holds fixes the fill at the first round
    after the arming block: the executor never fills at a round it could see."""
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    limit = 149_000 * WAD
    order_id = commit(p, book, trader, size=WAD, kind=LIMIT, acceptable=limit, fee=FEE)
    publish(p, 150_000, after=1)
    assert book.status(order_id) == (PENDING, "order_book: fill price beyond limit")
    publish(p, 148_000, after=1)  # the limit holds
    assert book.execute(order_id, sender=keeper) == ARMED
    assert book.order(order_id).armed and book.order(order_id).commit_time == p.now()
    with boa.reverts("order_book: order is executable"):
        book.cancel(order_id, sender=trader)
    assert book.pending_market_orders(trader, 0) == 1
    publish(p, 148_500, after=1)  # the first round after the arming block
    fill = quote(p, WAD)
    publish(p, 140_000, after=5)
    before = p.token.balanceOf(keeper)
    assert outcome(p, book, order_id, keeper) == EXECUTED
    assert filled_at(p, book) == fill
    assert p.token.balanceOf(keeper) - before == FEE
    assert book.pending_market_orders(trader, 0) == 0


def test_an_armed_order_whose_round_left_the_window_rests_again(state):
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader, size=WAD, kind=LIMIT, acceptable=149_000 * WAD, fee=FEE)
    publish(p, 148_000, after=1)
    assert outcome(p, book, order_id, keeper) == ARMED
    publish(p, 152_000, after=1)  # its round: beyond the limit
    assert book.status(order_id) == (PENDING, "order_book: fill price beyond limit")
    publish(p, 152_000, after=MAX_AGE + 1)  # the round left the window: it rests again
    assert book.status(order_id) == (PENDING, "order_book: fill price beyond limit")
    assert outcome(p, book, order_id, keeper) == PENDING
    assert not book.order(order_id).armed and book.pending_market_orders(trader, 0) == 0
    book.cancel(order_id, sender=trader)  # a resting, unarmed order can be cancelled


def test_a_resting_order_arms_only_on_a_round_inside_the_window(state):
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    order_id = commit(p, book, trader, size=WAD, kind=LIMIT, acceptable=160_000 * WAD, fee=FEE)
    publish(p, 150_000, after=1)
    at(p, p.now() + MAX_AGE + 1)
    assert book.status(order_id) == (PENDING, "order_book: price too old")
    publish(p, 150_000)
    assert outcome(p, book, order_id, keeper) == ARMED


def test_a_stop_loss_arms_on_the_index_and_fills_at_the_next_round(state):
    p, book = state
    trader, keeper = p.traders[0], p.traders[1]
    publish(p, 150_000, after=1)
    opened = commit(p, book, trader, size=WAD)
    publish(p, 150_000, after=1)
    assert outcome(p, book, opened, keeper) == EXECUTED
    stop = commit(p, book, trader, size=-WAD, kind=STOP, acceptable=0, trigger=145_000 * WAD, fee=FEE)
    publish(p, 146_000, after=1)
    assert book.status(stop) == (PENDING, "order_book: trigger not reached")
    publish(p, 144_000, after=1)
    assert outcome(p, book, stop, keeper) == ARMED
    publish(p, 143_000, after=1)
    fill = quote(p, -WAD)
    assert outcome(p, book, stop, keeper) == EXECUTED
    assert filled_at(p, book) == fill
    assert p.engine.open_positions(trader, 0, 0).size == 0


def test_only_the_engine_reports_revocations(state):
    p, book = state
    with boa.reverts("order_book: caller is not the engine"):
        book.operator_revoked(p.traders[0], p.traders[1], sender=p.traders[0])


def test_the_pending_refusals_are_the_engine_reasons_that_say_nothing_about_the_order(state):
    _, book = state
    # the client's mirror (vyperp.orders) is the contract's list: its six reasons, each accepted
    assert len(set(PENDING_REFUSALS)) == 6  # OrderBook.PENDING_REFUSALS: bytes32[6]
    for reason in [
        *PENDING_REFUSALS,
        PENDING_REFUSAL_PREFIX + "stale price",
        PENDING_REFUSAL_PREFIX + "market halted",
    ]:
        assert book.internal._is_pending_refusal(reason), reason
    for reason in ["engine: insufficient margin", "engine: position above size limit", "pricing", ""]:
        assert not book.internal._is_pending_refusal(reason), reason


# ---------------------------------------------------------------------------
# Property: the fill is the first round after the commit, whoever and whenever
# ---------------------------------------------------------------------------

rounds = st.lists(
    st.tuples(st.integers(0, 25), st.integers(120_000, 180_000)),  # (seconds after the last, price)
    min_size=1,
    max_size=12,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=rounds,
    after=rounds,
    wait=st.integers(0, MAX_AGE + 30),
    executor=st.integers(0, 2),
    side=st.sampled_from([1, -1]),
)
def test_the_fill_is_the_engine_fill_at_the_first_round_after_the_commit(env, before, after, wait, executor, side):
    p, book = env
    with boa.env.anchor():
        trader = p.traders[0]
        for gap, price in before:
            publish(p, price, after=gap + 1)
        commit_time = p.now() + before[0][0] % 3  # sometimes in the block of the last round
        at(p, commit_time)
        order_id = commit(p, book, trader, size=side * WAD, acceptable=ANY_BUY if side > 0 else 0, fee=FEE)
        first_fill = None
        first_time = None
        for gap, price in after:
            publish(p, price, after=gap)
            # S9: a round is written once per block (publish_round moves a round due in the latest
            # round's block to the next second), so the first round after the commit is the fill
            if p.now() > commit_time and (first_time is None or p.now() == first_time):
                first_fill, first_time = quote(p, side * WAD), p.now()
        at(p, p.now() + wait)
        result = outcome(p, book, order_id, [trader, p.traders[1], p.traders[3]][executor])
        if first_fill is None:
            assert result == PENDING
        elif p.now() - first_time > MAX_AGE:
            assert result == EXPIRED
        else:
            assert result == EXECUTED
            assert filled_at(p, book) == first_fill
