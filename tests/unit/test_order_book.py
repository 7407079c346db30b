"""OrderBook: commit, execution at the first oracle round after the commit (S8), arming of
resting orders on their triggers, post-only, reduce-only, keeper fees (paid for fills only),
expiry and cancellation, batches that skip failures, views and every revert.

The contracts run in-process on titanoboa (tests/boa_protocol.py). The market here has atomic
trading off, so orders are the only way into it. The S8 attacks and the fill-round property:
tests/fuzz/test_order_fills_boa.py.
"""

import boa
import pytest
from boa_protocol import contract, decoded_reason, deploy_engine_stack, events, now, reverts

from vyperp.orders import OrderKind, Outcome
from vyperp.units import WAD, to_wad

MAX_AGE = 60
FEE = 10**6  # 1 dUSD, the market's minimum keeper fee
MARKET, LIMIT, STOP, TAKE = (int(kind) for kind in OrderKind)
ANY_BUY = to_wad(1_000_000)  # acceptable price that accepts any buy fill here
ANY_SELL = 0
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def order_setup(
    admin, engine, engine_admin, add_market, market_config, new_oracle, deposit, fund, trader, other_trader
):
    """A new market without atomic trading on its own feed at 150,000, an order book over the
    engine (max_age 60, minimum keeper fee 1 dUSD), and trader and other_trader with 100,000 of
    collateral and 1,000 dUSD approved to the book. Returns (feed, market id, book)."""
    with boa.env.anchor():
        feed = new_oracle(150_000)
        market_id = add_market(market_config.with_(oracle=feed.address))
        with boa.env.prank(admin):
            book = contract("OrderBook").deploy(engine)
        engine_admin.set_order_book(book, sender=admin)
        book.set_market_settings(market_id, MAX_AGE, FEE, sender=admin)
        for account in (trader, other_trader):
            deposit(account, 100_000)
            fund(account, 1_000, book)
        # tests start one second after the feed's round, as on anvil: a commit is never in that
        # round's block, and a round published without moving the clock is at the commit's time
        boa.env.time_travel(seconds=1)
        yield feed, market_id, book


@pytest.fixture
def feed(order_setup):
    return order_setup[0]


@pytest.fixture
def book_market(order_setup):
    return order_setup[1]


@pytest.fixture
def book(order_setup):
    return order_setup[2]


@pytest.fixture
def price(feed, set_price):
    """Publishes a new oracle round one second (or `after` seconds) later."""

    def report(value, after=1):
        boa.env.time_travel(seconds=after)
        set_price(feed, value)

    return report


@pytest.fixture
def commit(book, book_market):
    def place(sender, kind, size, acceptable, trigger=0, lifetime=600, fee=FEE, market=None, **options):
        book.commit_order(
            book_market if market is None else market,
            kind,
            to_wad(size),
            acceptable,
            to_wad(trigger),
            now() + lifetime,
            fee,
            options.get("reduce_only", False),
            options.get("post_only", False),
            options.get("trigger_on_mark", False),
            options.get("subaccount", 0),
            options.get("owner", sender),
            sender=sender,
        )
        return events(book, "OrderCommitted")[0].order_id

    return place


@pytest.fixture
def open_long(commit, book, price, keeper, engine, book_market):
    """Gives an account a position through a market order (the only way in here)."""

    def open_(account, size, at=150_000):
        order_id = commit(account, MARKET, size, ANY_BUY if size > 0 else ANY_SELL)
        price(at, after=1)
        assert book.execute(order_id, sender=keeper) == Outcome.EXECUTED
        return engine.open_positions(account, 0, book_market).size

    return open_


def raw_revert_reason(function, *args, sender):
    """The revert reason of `function(*args)`, read from the EVM's result. Where a call reverts
    before a String local is assigned, titanoboa's error path decodes that local's stale memory
    as UTF-8 and raises UnicodeDecodeError instead of the revert (OrderBook.cancel of a removed
    order), so such a call bypasses it."""
    result = boa.env.execute_code(to_address=function.contract.address, sender=sender,
                                  data=function.prepare_calldata(*args))
    assert result.is_error, "did not revert"
    reason = decoded_reason(result.output)
    assert reason, f"reverted without a reason: {result.output!r}"
    return reason


# ---------------------------------------------------------------------------
# Commit
# ---------------------------------------------------------------------------


def test_commit_stores_the_order_packed_and_takes_the_fee(book, book_market, commit, token, trader):
    before = token.balanceOf(trader)
    order_id = commit(trader, LIMIT, -3.25, to_wad(151_234.5), lifetime=86400, fee=2_500_000,
                      reduce_only=True, post_only=True, subaccount=2**32 - 1)
    stored = book.order(order_id)
    assert stored.owner == trader
    assert stored.subaccount == 2**32 - 1
    assert stored.market_id == book_market
    assert stored.kind == LIMIT
    assert stored.size_delta == -to_wad(3.25)
    assert stored.acceptable_price == to_wad(151_234.5)
    assert (stored.reduce_only, stored.post_only, stored.trigger_on_mark) == (True, True, False)
    assert stored.expiry == stored.commit_time + 86400
    assert stored.commit_time == now()
    assert stored.keeper_fee == 2_500_000
    assert token.balanceOf(trader) == before - 2_500_000
    assert token.balanceOf(book) == 2_500_000
    assert book.next_order_id() == order_id + 1


def test_an_operator_commits_for_its_owner_and_pays_the_fee(
    book, engine, commit, token, trader, stranger, fund
):
    engine.set_operator(stranger, True, sender=trader)
    fund(stranger, 1, book)
    order_id = commit(stranger, LIMIT, 1, to_wad(140_000), owner=trader)
    assert book.order(order_id).owner == trader
    assert token.balanceOf(stranger) == 0


def test_atomic_trades_are_off_so_orders_are_the_only_way_in(engine, book_market, trader):
    with reverts("engine: atomic trades disabled"):
        engine.modify_position(book_market, to_wad(1), ANY_BUY, sender=trader)


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(owner="stranger"), "order_book: not owner or operator"),
        (dict(market=99), "order_book: market not enabled"),
        (dict(size=0), "order_book: zero size"),
        (dict(size=2**95 // WAD + 1), "order_book: size too large"),
        (dict(acceptable=2**128), "order_book: price too large"),
        (dict(subaccount=2**32), "order_book: subaccount too large"),
        (dict(kind=4), "order_book: unknown order kind"),
        (dict(kind=STOP), "order_book: trigger price needed"),
        (dict(kind=TAKE, trigger=160_000), "order_book: no position to close"),
        (dict(trigger=1), "order_book: trigger on an untriggered order"),
        (dict(trigger_on_mark=True), "order_book: trigger on an untriggered order"),
        (dict(kind=MARKET, post_only=True), "order_book: post-only needs a limit order"),
        (dict(lifetime=1), "order_book: expires before it can execute"),
        (dict(kind=MARKET, lifetime=3601), "order_book: expiry too far"),
        (dict(lifetime=90 * 86400 + 1), "order_book: expiry too far"),
        (dict(fee=FEE - 1), "order_book: keeper fee below minimum"),
        (dict(fee=1000 * 10**6 + 1), "order_book: keeper fee above maximum"),
    ],
)
def test_commit_refuses(commit, trader, stranger, change, reason):
    args = dict(kind=LIMIT, size=1, acceptable=to_wad(140_000), trigger=0, owner=trader)
    args.update(change)
    if args["owner"] == "stranger":
        args["owner"] = trader
        sender = stranger
    else:
        sender = trader
    with reverts(reason):
        commit(sender, **args)


def test_paused_book_refuses_commits_and_holds_fills_without_paying_anyone(
    book, commit, admin, trader, keeper, price, stranger, token
):
    order_id = commit(trader, MARKET, 1, ANY_BUY)
    with reverts("order_book: caller is not the owner"):
        book.pause(sender=stranger)
    book.pause(sender=admin)
    with reverts("order_book: paused"):
        commit(trader, MARKET, 1, ANY_BUY)
    price(150_000)
    before = token.balanceOf(keeper)
    with reverts("order_book: paused"):
        book.execute(order_id, sender=keeper)
    assert book.status(order_id) == (Outcome.PENDING, "order_book: paused")
    with reverts("order_book: caller is not the owner"):
        book.unpause(sender=stranger)
    book.unpause(sender=admin)
    assert book.execute(order_id, sender=keeper) == Outcome.EXECUTED
    assert token.balanceOf(keeper) - before == FEE
    commit(trader, MARKET, 1, ANY_BUY)


def test_fee_on_transfer_and_false_returning_tokens_are_refused(admin, trader, market_config, new_oracle):
    # a protocol of its own: the module's collateral token is a well-behaved DevnetUSD
    feed = new_oracle(150_000)
    with boa.env.prank(admin):
        token = contract("test/HostileToken").deploy(6)
    hostile = deploy_engine_stack(admin, admin, token=token)
    market_id = hostile.add_market(market_config.with_(oracle=feed.address))
    with boa.env.prank(admin):
        book = contract("OrderBook").deploy(hostile.engine)
        hostile.engine_admin.set_order_book(book)
        book.set_market_settings(market_id, MAX_AGE, FEE)
    token.mint(trader, 10**9, sender=admin)
    token.approve(book, 10**9, sender=trader)
    args = (market_id, MARKET, to_wad(1), ANY_BUY, 0, now() + 600, FEE)
    token.configure(100, False, ZERO, sender=admin)
    with reverts("order_book: fee-on-transfer token"):
        book.commit_order(*args, sender=trader)
    token.configure(0, True, ZERO, sender=admin)
    with reverts("order_book: transfer failed"):
        book.commit_order(*args, sender=trader)


# ---------------------------------------------------------------------------
# Execution at the first round after the commit (S8)
# ---------------------------------------------------------------------------


def test_the_fill_is_the_first_round_after_the_commit_block(
    book, commit, engine, book_market, trader, keeper, price, feed, set_price
):
    order_id = commit(trader, MARKET, 1, ANY_BUY)
    assert book.status(order_id) == (Outcome.PENDING, "order_book: no round after the order yet")
    with reverts("order_book: no round after the order yet"):
        book.execute(order_id, sender=keeper)
    set_price(feed, 155_000)  # a round at the commit's time: never counts
    assert feed.latestTimestamp() == book.order(order_id).commit_time
    assert book.status(order_id) == (Outcome.PENDING, "order_book: no round after the order yet")
    price(160_000)  # the first round after the commit
    quote = engine.fill_price(book_market, to_wad(1))
    price(150_000)  # a later round does not change the fill
    book.execute(order_id, sender=keeper)
    fill = events(book, "PositionModified")[0]
    assert fill.fill_price == quote and quote > to_wad(160_000)
    assert engine.open_positions(trader, 0, book_market).size == to_wad(1)


def test_a_pending_market_order_locks_withdrawals_until_it_is_gone(
    book, commit, engine, book_market, trader, keeper, price, open_long
):
    """Otherwise a trader who dislikes the fill round's price withdraws the order's margin and
    the engine refuses the trade: a free exit from an order that cannot be cancelled."""
    order_id = commit(trader, MARKET, 5, ANY_BUY)
    assert book.pending_market_orders(trader, 0) == 1
    with reverts("engine: market order pending"):
        engine.withdraw(10**6, sender=trader)
    price(149_000, after=1)
    assert book.execute(order_id, sender=keeper) == Outcome.EXECUTED
    assert book.pending_market_orders(trader, 0) == 0
    engine.withdraw(10**6, sender=trader)
    # reduce-only market orders and limit orders add no risk the trader could dodge this way
    commit(trader, MARKET, -1, ANY_SELL, reduce_only=True)
    commit(trader, LIMIT, 1, to_wad(100_000))
    engine.withdraw(10**6, sender=trader)
    expiring = commit(trader, MARKET, 1, to_wad(100_000), lifetime=30)  # waits: fill above its limit
    boa.env.time_travel(seconds=31)
    book.cancel(expiring, sender=keeper)
    assert book.pending_market_orders(trader, 0) == 0


def test_an_order_whose_fill_round_left_the_window_expires_with_its_fee_refunded(
    book, commit, trader, keeper, price, token
):
    order_id = commit(trader, MARKET, 1, ANY_BUY)
    price(150_000, after=1)
    boa.env.time_travel(seconds=MAX_AGE + 1)
    price(150_000)  # a fresh round does not replace the missed one
    assert book.status(order_id) == (Outcome.EXPIRED, "order_book: fill round left the window")
    before = token.balanceOf(trader), token.balanceOf(keeper)
    assert book.execute(order_id, sender=keeper) == Outcome.EXPIRED
    assert (token.balanceOf(trader), token.balanceOf(keeper)) == (before[0] + FEE, before[1])


def test_a_price_fresh_for_the_book_but_stale_for_the_engine_waits(
    book, commit, engine_admin, book_market, feed, market_config, admin, trader, keeper, price
):
    order_id = commit(trader, MARKET, 1, ANY_BUY)
    price(150_000, after=1)
    stale_sooner = market_config.with_(oracle=feed.address, max_price_age=30)
    engine_admin.set_market_params(book_market, stale_sooner.as_tuple(), sender=admin)
    boa.env.time_travel(seconds=45)  # within the book's 60 s, beyond the engine's 30 s
    assert list(book.execute_many([order_id], sender=keeper)) == [Outcome.PENDING]
    assert events(book, "OrderSkipped")[0].reason == "order_book: price not usable"


# ---------------------------------------------------------------------------
# Fill conditions of each order type; resting orders arm, then fill one round later
# ---------------------------------------------------------------------------


def test_market_order_waits_while_its_rounds_fill_is_beyond_its_acceptable_price(
    book, commit, trader, keeper, price, token
):
    order_id = commit(trader, MARKET, 1, to_wad(150_100))
    price(151_000, after=1)
    with reverts("order_book: fill price beyond limit"):
        book.execute(order_id, sender=keeper)
    price(150_000)  # a better later round does not help: the round is fixed
    with reverts("order_book: fill price beyond limit"):
        book.execute(order_id, sender=keeper)
    boa.env.time_travel(seconds=MAX_AGE)
    before = token.balanceOf(trader)
    assert book.execute(order_id, sender=keeper) == Outcome.EXPIRED
    assert token.balanceOf(trader) == before + FEE


@pytest.mark.parametrize("side", [1, -1])
def test_limit_order_arms_at_and_better_than_its_limit_only(
    book, commit, engine, book_market, trader, keeper, price, side
):
    price(150_000)
    limit = engine.fill_price(book_market, to_wad(side))  # the fill a trade of this size gets at 150,000
    worse, exact, better = (
        commit(trader, LIMIT, side, limit - side),  # one wei worse than the fill at 150,000
        commit(trader, LIMIT, side, limit),
        commit(trader, LIMIT, side, limit + side * to_wad(1_000)),
    )
    price(150_000, after=1)  # at the limit: the exact one arms, the one a wei worse waits
    outcomes = book.execute_many([worse, exact, better], sender=keeper)
    assert list(outcomes) == [Outcome.PENDING, Outcome.ARMED, Outcome.ARMED]
    assert events(book, "OrderSkipped")[0].reason == "order_book: fill price beyond limit"
    assert [e.order_id for e in events(book, "OrderArmed")] == [exact, better]
    price(150_000)  # the round after the arming: both fill there
    assert list(book.execute_many([exact, better], sender=keeper)) == [Outcome.EXECUTED, Outcome.EXECUTED]
    assert events(book, "PositionModified")[0].fill_price == limit
    price(150_000 + side * 500)  # further against it: still waits
    assert list(book.execute_many([worse], sender=keeper)) == [Outcome.PENDING]
    price(150_000 - side * 500)  # in its favour: arms, then fills at the next round
    assert list(book.execute_many([worse], sender=keeper)) == [Outcome.ARMED]
    price(150_000 - side * 500)
    assert list(book.execute_many([worse], sender=keeper)) == [Outcome.EXECUTED]
    assert engine.open_positions(trader, 0, book_market).size == 3 * to_wad(side)


def test_stop_loss_and_take_profit_of_a_long_at_above_and_below_their_triggers(
    book, commit, engine, book_market, trader, keeper, open_long, price
):
    assert open_long(trader, 6) == to_wad(6)
    stops = [commit(trader, STOP, -1, ANY_SELL, trigger=t) for t in (141_000, 140_000, 139_000)]
    takes = [commit(trader, TAKE, -1, ANY_SELL, trigger=t) for t in (159_000, 160_000, 161_000)]
    price(150_000, after=1)
    assert list(book.execute_many(stops + takes, sender=keeper)) == [Outcome.PENDING] * 6
    assert {e.reason for e in events(book, "OrderSkipped")} == {"order_book: trigger not reached"}
    price(140_000)  # stops sell at or below their trigger
    assert list(book.execute_many(stops, sender=keeper)) == [Outcome.ARMED, Outcome.ARMED, Outcome.PENDING]
    price(140_000)
    assert list(book.execute_many(stops, sender=keeper)) == [Outcome.EXECUTED] * 2 + [Outcome.PENDING]
    price(160_000)  # take-profits sell at or above theirs
    assert list(book.execute_many(takes, sender=keeper)) == [Outcome.ARMED, Outcome.ARMED, Outcome.PENDING]
    price(160_000)
    assert list(book.execute_many(takes, sender=keeper)) == [Outcome.EXECUTED] * 2 + [Outcome.PENDING]
    assert engine.open_positions(trader, 0, book_market).size == to_wad(2)


def test_stop_loss_and_take_profit_of_a_short_trigger_the_other_way(book, commit, engine, book_market, trader,
                                                                   keeper, open_long, price):
    assert open_long(trader, -4) == -to_wad(4)
    stops = [commit(trader, STOP, 1, ANY_BUY, trigger=t) for t in (159_000, 160_000, 161_000)]
    takes = [commit(trader, TAKE, 1, ANY_BUY, trigger=t) for t in (139_000, 140_000, 141_000)]
    price(160_000, after=1)  # stops buy back at or above their trigger
    assert list(book.execute_many(stops + takes, sender=keeper)) == (
        [Outcome.ARMED, Outcome.ARMED, Outcome.PENDING] + [Outcome.PENDING] * 3
    )
    price(140_000)  # the stops fill at this round; take-profits buy back at or below theirs
    assert list(book.execute_many(stops[:2] + takes, sender=keeper)) == (
        [Outcome.EXECUTED] * 2 + [Outcome.PENDING, Outcome.ARMED, Outcome.ARMED]
    )
    price(140_000)
    assert list(book.execute_many(takes[1:], sender=keeper)) == [Outcome.EXECUTED, Outcome.EXECUTED]
    assert engine.open_positions(trader, 0, book_market).size == 0


def test_stop_loss_on_the_mark_waits_for_the_twap(
    admin, add_market, book, feed, market_config, commit, engine, trader, keeper, set_price
):
    marked = add_market(market_config.with_(oracle=feed.address, mark_window=600))
    book.set_market_settings(marked, MAX_AGE, FEE, sender=admin)
    order_id = commit(trader, MARKET, 1, ANY_BUY, market=marked)
    boa.env.time_travel(seconds=1)
    set_price(feed, 150_000)
    book.execute(order_id, sender=keeper)
    on_mark = commit(trader, STOP, -1, ANY_SELL, trigger=145_000, market=marked, trigger_on_mark=True)
    on_index = commit(trader, STOP, -1, ANY_SELL, trigger=145_000, market=marked)
    boa.env.time_travel(seconds=1)
    set_price(feed, 140_000)  # the index drops; the 10-minute mark barely moves
    assert engine.mark_price(marked) > to_wad(145_000)
    assert list(book.execute_many([on_mark, on_index], sender=keeper)) == [Outcome.PENDING, Outcome.ARMED]


# ---------------------------------------------------------------------------
# Post-only and reduce-only
# ---------------------------------------------------------------------------


def test_post_only_waits_until_it_reduces_the_skew_and_pays_only_the_maker_fee(
    book, commit, trader, other_trader, keeper, open_long, price, market_config
):
    post = commit(trader, LIMIT, -2, ANY_SELL, post_only=True)
    price(150_000, after=1)
    with reverts("order_book: post-only order would take"):
        book.execute(post, sender=keeper)  # skew 0: a sell would take
    open_long(other_trader, 1)
    with reverts("order_book: post-only order would take"):
        book.execute(post, sender=keeper)  # skew 1: selling 2 would flip it, half taker
    open_long(other_trader, 2)
    assert book.execute(post, sender=keeper) == Outcome.ARMED
    price(150_000)
    book.execute(post, sender=keeper)
    fill = events(book, "PositionModified")[0]
    notional = -(-2 * fill.fill_price // 1)  # ceil(|Δ|·fill), Δ = 2 exactly
    assert fill.fee == -(-notional * market_config.maker_fee // WAD)
    assert fill.fee < notional * market_config.taker_fee // WAD


def test_post_only_buy_against_a_negative_skew_executes_and_the_scan_still_works(
    book, commit, engine, book_market, trader, other_trader, keeper, open_long, price
):
    """A negative skew is read signed: a waiting post-only buy must not break the views."""
    assert open_long(other_trader, -3) == -to_wad(3)
    waiting = commit(trader, LIMIT, 5, to_wad(1_000_000), post_only=True)  # would flip the skew: waits
    post = commit(trader, LIMIT, 2, to_wad(1_000_000), post_only=True)
    price(150_000, after=1)
    ids = list(book.executable_orders(0, 100)[0])
    assert post in ids and waiting not in ids
    assert list(book.execute_many([waiting, post], sender=keeper)) == [Outcome.PENDING, Outcome.ARMED]
    price(150_000)
    assert list(book.execute_many([post], sender=keeper)) == [Outcome.EXECUTED]
    assert engine.skew(book_market) == -to_wad(1)


def test_an_order_refused_for_a_full_market_waits_at_its_round_instead_of_paying_the_executor(
    book, commit, engine, engine_admin, book_market, feed, market_config, admin, trader, other_trader,
    keeper, open_long, price, token
):
    """Otherwise an executor could fill the open-interest cap first and collect the fee."""
    # capped before anyone holds a position: with open interest, lowering caps waits (S10)
    uncapped = market_config.with_(oracle=feed.address)
    capped = uncapped.with_(max_position_size=to_wad(3), max_open_interest=to_wad(3))
    engine_admin.set_market_params(book_market, capped.as_tuple(), sender=admin)
    assert open_long(other_trader, 2) == to_wad(2)
    order_id = commit(trader, MARKET, 2, ANY_BUY)
    price(150_000, after=1)
    quote = engine.fill_price(book_market, to_wad(2))
    before = token.balanceOf(keeper)
    assert list(book.execute_many([order_id], sender=keeper)) == [Outcome.PENDING]
    assert events(book, "OrderSkipped")[0].reason == "engine: open interest cap"
    assert token.balanceOf(keeper) == before
    assert book.order(order_id).owner == trader and book.pending_market_orders(trader, 0) == 1
    engine_admin.set_market_params(book_market, uncapped.as_tuple(), sender=admin)
    price(140_000)  # a later round is not the order's
    assert book.execute(order_id, sender=keeper) == Outcome.EXECUTED
    assert events(book, "PositionModified")[0].fill_price == quote
    assert token.balanceOf(keeper) - before == FEE


def test_orders_of_a_liquidated_account_are_removed_with_their_fees_refunded_or_wait(
    book, commit, engine, engine_risk, book_market, token, trader, keeper, stranger, open_long, price
):
    assert open_long(trader, 6) == to_wad(6)  # 900,000 of notional on 100,000
    stop = commit(trader, STOP, -6, ANY_SELL, trigger=100_000)
    more = commit(trader, MARKET, 1, ANY_BUY)
    # -20 % in two steps inside the breaker move (a single step beyond it halts the market, S4)
    price(130_000, after=1)
    engine.checkpoint_funding([book_market], sender=stranger)
    price(120_000, after=1)  # equity -80,000: a full liquidation with bad debt
    engine_risk.liquidate(trader, 0, sender=stranger)
    assert engine.open_positions(trader, 0, book_market).size == 0
    before = token.balanceOf(keeper), token.balanceOf(trader)
    assert list(book.execute_many([stop, more], sender=keeper)) == [Outcome.CANCELLED, Outcome.PENDING]
    assert [e.reason for e in events(book, "OrderCancelled")] == ["order_book: nothing to reduce"]
    # the -20 % move tripped the breaker: a refusal that says nothing about the order
    assert [e.reason for e in events(book, "OrderSkipped")] == ["engine: market is reduce-only"]
    assert (token.balanceOf(keeper), token.balanceOf(trader)) == (before[0], before[1] + FEE)
    assert book.pending_market_orders(trader, 0) == 1


def test_reduce_only_orders_are_clamped_to_the_position(
    book, commit, engine, book_market, trader, keeper, open_long, price
):
    open_long(trader, 2)
    order_id = commit(trader, MARKET, -5, ANY_SELL, reduce_only=True)
    price(150_000, after=1)
    book.execute(order_id, sender=keeper)
    assert events(book, "OrderExecuted")[0].size_delta == -to_wad(2)
    assert engine.open_positions(trader, 0, book_market).size == 0


def test_an_order_whose_position_is_gone_is_cancelled_and_refunds_its_owner(
    book, commit, token, trader, keeper, open_long, price
):
    open_long(trader, 1)
    stop = commit(trader, STOP, -1, ANY_SELL, trigger=100_000)
    close = commit(trader, MARKET, -1, ANY_SELL, reduce_only=True)
    price(150_000, after=1)
    before = token.balanceOf(keeper), token.balanceOf(trader)
    assert list(book.execute_many([close, stop], sender=keeper)) == [Outcome.EXECUTED, Outcome.CANCELLED]
    cancelled = events(book, "OrderCancelled")[0]
    assert (cancelled.order_id, cancelled.fee_to) == (stop, trader)
    assert cancelled.reason == "order_book: nothing to reduce"
    assert (token.balanceOf(keeper), token.balanceOf(trader)) == (before[0] + FEE, before[1] + FEE)
    assert book.order(stop).owner == ZERO


def test_an_order_that_would_breach_margin_is_cancelled_with_the_engine_reason(
    book, commit, engine, book_market, token, trader, keeper, price
):
    order_id = commit(trader, MARKET, 10, ANY_BUY)  # 1,500,000 of notional on 100,000 of collateral
    price(150_000, after=1)
    before = token.balanceOf(keeper), token.balanceOf(trader)
    assert book.execute(order_id, sender=keeper) == Outcome.CANCELLED
    assert events(book, "OrderCancelled")[0].reason == "engine: insufficient margin"
    assert (token.balanceOf(keeper), token.balanceOf(trader)) == (before[0], before[1] + FEE)
    assert engine.open_positions(trader, 0, book_market).size == 0
    assert book.order(order_id).owner == ZERO


# ---------------------------------------------------------------------------
# Batches and keeper fees
# ---------------------------------------------------------------------------


def test_a_batch_skips_and_reports_each_failure_and_pays_only_fills(
    book, commit, engine, book_market, token, trader, other_trader, keeper, price
):
    expiring = commit(other_trader, LIMIT, 1, to_wad(100_000), lifetime=2)
    good = commit(trader, MARKET, 1, ANY_BUY)
    too_big = commit(other_trader, MARKET, 100, ANY_BUY)
    waiting = commit(trader, LIMIT, 1, to_wad(100_000))
    price(150_000, after=2)
    held = token.balanceOf(book)
    before = token.balanceOf(keeper), token.balanceOf(other_trader)
    outcomes = book.execute_many([good, too_big, waiting, expiring, 999, good], sender=keeper)
    assert list(outcomes) == [Outcome.EXECUTED, Outcome.CANCELLED, Outcome.PENDING, Outcome.EXPIRED,
                              Outcome.MISSING, Outcome.MISSING]
    assert [e.order_id for e in events(book, "OrderSkipped")] == [waiting, 999, good]
    assert [e.reason for e in events(book, "OrderCancelled")] == [
        "engine: insufficient margin",
        "order_book: order expired",
    ]
    assert (token.balanceOf(keeper), token.balanceOf(other_trader)) == (before[0] + FEE, before[1] + 2 * FEE)
    assert token.balanceOf(book) == held - 3 * FEE == FEE  # the waiting order's fee stays
    assert len(events(book, "Transfer")) == 3  # two refunds, then the executor's fees at once
    assert engine.open_positions(trader, 0, book_market).size == to_wad(1)


def test_execute_reverts_for_missing_orders_and_keepers_short_of_gas(book, commit, trader, keeper, price):
    with reverts("order_book: no such order"):
        book.execute(12345, sender=keeper)
    order_id = commit(trader, MARKET, 1, ANY_BUY)
    price(150_000, after=1)
    with reverts("order_book: gas too low to execute"):
        book.execute(order_id, sender=keeper, gas=900_000)
    assert book.execute(order_id, sender=keeper) == Outcome.EXECUTED


# ---------------------------------------------------------------------------
# Expiry and cancellation
# ---------------------------------------------------------------------------


def test_owner_cancels_a_resting_order_and_gets_the_fee_back(
    book, engine, commit, token, trader, stranger, price
):
    order_id = commit(trader, LIMIT, 1, to_wad(100_000))
    with reverts("order_book: not owner or operator"):
        book.cancel(order_id, sender=stranger)
    before = token.balanceOf(trader)
    book.cancel(order_id, sender=trader)
    event = events(book, "OrderCancelled")[0]
    assert (event.fee_to, event.reason) == (trader, "order_book: cancelled by owner")
    assert token.balanceOf(trader) == before + FEE
    assert raw_revert_reason(book.cancel, order_id, sender=trader) == "order_book: no such order"
    # an operator cancels for the owner; the fee still goes to the owner
    engine.set_operator(stranger, True, sender=trader)
    second = commit(trader, LIMIT, 1, to_wad(100_000))
    assert token.balanceOf(trader) == before  # refunded the first fee, paid the second
    book.cancel(second, sender=stranger)
    assert token.balanceOf(trader) == before + FEE
    # not once it is executable: cancelling after seeing the next round would be an option
    marketable = commit(trader, LIMIT, 1, to_wad(200_000))
    price(150_000)
    with reverts("order_book: order is executable"):
        book.cancel(marketable, sender=trader)


def test_market_orders_run_until_expiry_then_anyone_removes_them_for_the_owner(book, commit, token, trader,
                                                                              stranger):
    order_id = commit(trader, MARKET, 1, ANY_BUY, lifetime=100)
    with reverts("order_book: market orders run until expiry"):
        book.cancel(order_id, sender=trader)
    boa.env.time_travel(seconds=100)
    assert book.status(order_id) == (Outcome.EXPIRED, "order_book: order expired")
    before = token.balanceOf(stranger), token.balanceOf(trader)
    book.cancel(order_id, sender=stranger)
    event = events(book, "OrderCancelled")[0]
    assert (event.fee_to, event.reason) == (trader, "order_book: order expired")
    assert (token.balanceOf(stranger), token.balanceOf(trader)) == (before[0], before[1] + FEE)


def test_execute_on_an_expired_order_removes_it_and_refunds_the_owner(book, commit, token, trader, keeper):
    order_id = commit(trader, LIMIT, 1, to_wad(100_000), lifetime=50)
    boa.env.time_travel(seconds=50)
    before = token.balanceOf(keeper), token.balanceOf(trader)
    assert book.execute(order_id, sender=keeper) == Outcome.EXPIRED
    assert (token.balanceOf(keeper), token.balanceOf(trader)) == (before[0], before[1] + FEE)


# ---------------------------------------------------------------------------
# Views and settings
# ---------------------------------------------------------------------------


def test_views_page_pending_orders_per_account_and_executable_ones(book, commit, trader, other_trader, price):
    mine = [commit(trader, LIMIT, 1, to_wad(100_000)) for _ in range(2)]
    theirs = commit(other_trader, MARKET, 1, ANY_BUY)
    mine.append(commit(trader, MARKET, 1, ANY_BUY, subaccount=3))
    assert [o.id for o in book.orders_of(trader, 0, 1000)] == mine
    assert [o.id for o in book.orders_of(trader, mine[1], 2)] == [mine[1]]
    assert list(book.orders_of(trader, 10_000, 10)) == []
    with reverts("order_book: page too long"):
        book.orders_of(trader, 0, 1001)
    first = mine[0]
    page = book.executable_orders(first, 1000)
    assert (list(page.ids), page.first_pending) == ([], first)  # no round since the commits
    price(150_000, after=1)
    page = book.executable_orders(first, 1000)
    assert list(page.ids) == [theirs, mine[2]]
    assert (page.first_pending, page.scanned_to) == (first, mine[2] + 1)
    with reverts("order_book: page too long"):
        book.executable_orders(0, 1001)
    assert book.status(mine[0]) == (Outcome.PENDING, "order_book: fill price beyond limit")
    assert book.status(10_000) == (Outcome.MISSING, "order_book: no such order")


@pytest.mark.parametrize(
    "args, reason",
    [
        ((99, 60, FEE), "order_book: unknown market"),
        ((None, 0, FEE), "order_book: max_age out of bounds"),
        ((None, 3601, FEE), "order_book: max_age out of bounds"),
        ((None, 60, 1000 * 10**6 + 1), "order_book: min_keeper_fee out of bounds"),
    ],
)
def test_market_settings_are_bounded(book, book_market, admin, args, reason):
    market_id, *rest = args
    with reverts(reason):
        book.set_market_settings(book_market if market_id is None else market_id, *rest, sender=admin)


def test_market_settings_are_owner_only_and_read_back(book, book_market, admin, stranger):
    with reverts("order_book: caller is not the owner"):
        book.set_market_settings(book_market, 30, 0, sender=stranger)
    book.set_market_settings(book_market, 3600, 1000 * 10**6, sender=admin)
    assert book.market_settings(book_market) == (3600, 1000 * 10**6)
    assert book.market_settings(99) == (0, 0)
