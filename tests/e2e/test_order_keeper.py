"""Order keeper on anvil: due orders in one execute_many, the rest left pending, failures removed
with their fee refunded (the keeper earns fills only), resting orders armed then filled, no
second send while a transaction is in flight, and the SDK helpers' listing."""

import threading
from decimal import Decimal

import pytest

from vyperp.keepers.orders import OrderKeeper
from vyperp.orders import OrderBookClient, OrderKind, OrderSettings, Outcome

FEE = Decimal("0.5")
FEE_UNITS = 500_000


@pytest.fixture(scope="module")
def order_setup(order_market):
    """One module fixture: Ape rebases several chain-changing module fixtures set up out of order."""
    return order_market(OrderSettings(max_age=60, min_keeper_fee=FEE), fee_funds=100)


@pytest.fixture(autouse=True)
def feed(order_setup):
    return order_setup[0]


@pytest.fixture
def book_market(order_setup):
    return order_setup[1]


@pytest.fixture
def book(order_setup):
    return order_setup[2]


@pytest.fixture
def client(book, engine, token):
    return OrderBookClient(book, engine, token)


@pytest.fixture
def new_price(feed, reporters, chain, round_publisher):
    def report(value, after=1):
        chain.mine(deltatime=after)
        round_publisher(feed, value, reporters[:1])

    return report


@pytest.fixture
def order_keeper(book, keeper):
    return OrderKeeper(book, keeper)


def test_keeper_executes_due_orders_and_skips_the_others(client, order_keeper, book, book_market, engine, token, trader, other_trader, keeper, new_price):
    market = client.place(book_market, "market", 1, trader)
    limit = client.place(book_market, OrderKind.LIMIT, 1, other_trader, limit_price=100_000)
    refused = client.place(book_market, "market", 50, other_trader)  # far beyond its margin
    assert order_keeper.step() is None  # no round after the commits yet: nothing sent
    assert order_keeper.due() == []

    new_price(150_000)
    before = token.balanceOf(keeper)
    done = order_keeper.step()
    assert done.order_ids == (market, refused)
    assert done.outcomes == {market: Outcome.EXECUTED, refused: Outcome.CANCELLED}
    # the refused order's fee goes back to its owner: the keeper earns the fill only
    assert done.fees_earned == FEE_UNITS == token.balanceOf(keeper) - before
    assert engine.open_positions(trader, 0, book_market).size == 10**18
    assert [order.id for order in client.pending(other_trader)] == [limit]
    assert order_keeper.step() is None  # the limit order is not due: nothing sent again
    assert order_keeper.cursor == limit  # the lowest id still pending
    metrics = order_keeper.metrics.as_dict()
    assert (metrics["executed"], metrics["cancelled"], metrics["items_handled"]) == (1, 1, 2)
    assert metrics["steps"] == 3 and metrics["errors"] == 0


def test_keeper_removes_expired_and_orphaned_orders_refunding_their_owners(client, order_keeper, book_market, token, trader, keeper, new_price, chain):
    opened = client.place(book_market, "market", 1, trader)
    new_price(150_000)
    assert order_keeper.step().outcomes == {opened: Outcome.EXECUTED}
    stop = client.place(book_market, "stop-loss", -1, trader, trigger_price=100_000)
    limit = client.place(book_market, "limit", 1, trader, limit_price=100_000, lifetime=30)
    close = client.place(book_market, "market", -1, trader, reduce_only=True)
    new_price(150_000, after=30)
    done = order_keeper.step()
    # the stop-loss is not triggered while the position is open, so only these two are due
    assert done.outcomes == {limit: Outcome.EXPIRED, close: Outcome.EXECUTED}
    after_close = order_keeper.step()  # now the stop-loss has nothing left to protect
    assert after_close.outcomes == {stop: Outcome.CANCELLED}
    assert after_close.fees_earned == 0
    assert client.pending(trader) == []


def test_keeper_arms_a_resting_order_then_fills_it_at_the_next_round(client, order_keeper, book_market, engine, token, trader, keeper, new_price):
    limit = client.place(book_market, "limit", 1, trader, limit_price=151_000)
    new_price(150_000)  # the limit holds at the latest round: the step arms it
    assert order_keeper.step().outcomes == {limit: Outcome.ARMED}
    assert client.order(limit).armed
    new_price(149_000)  # the first round after the arming: the fill
    quote = engine.fill_price(book_market, 10**18)
    done = order_keeper.step()
    assert done.outcomes == {limit: Outcome.EXECUTED} and done.fees_earned == FEE_UNITS
    assert done.receipt.events.filter(engine.PositionModified)[0].fill_price == quote
    assert order_keeper.metrics.as_dict()["armed"] == 1


def test_keeper_never_sends_an_order_twice_while_its_transaction_is_in_flight(client, order_keeper, book, book_market, engine, trader, keeper, new_price, chain):
    order_id = client.place(book_market, "market", 1, trader)
    new_price(150_000)
    provider = chain.provider
    provider.make_request("evm_setAutomine", [False])
    results = {}
    try:
        def first_step():
            try:
                results["first"] = order_keeper.step()
            except Exception as error:  # reported by the assertion below
                results["error"] = error

        sender = threading.Thread(target=first_step)
        nonce = keeper.nonce
        sender.start()
        for _ in range(600):  # until the first step's transaction waits in anvil's pool
            pool = provider.make_request("eth_getTransactionCount", [keeper.address, "pending"])
            if (int(pool, 16) if isinstance(pool, str) else int(pool)) > nonce:
                break
            threading.Event().wait(0.05)
        assert order_keeper.in_flight == {order_id}
        assert order_keeper.step() is None  # the order is in flight: not sent again
        provider.make_request("evm_mine", [])
        sender.join(timeout=30)
    finally:
        provider.make_request("evm_setAutomine", [True])
    assert "error" not in results, results
    assert results["first"].outcomes == {order_id: Outcome.EXECUTED}
    assert order_keeper.in_flight == frozenset()
    assert engine.open_positions(trader, 0, book_market).size == 10**18


def test_client_places_each_kind_with_its_acceptable_price_and_cancels(client, book, book_market, engine, token, trader, keeper, new_price):
    quote = engine.fill_price(book_market, 10**18)
    market = client.order(client.place(book_market, "market", 1, trader, slippage="0.01"))
    assert market.acceptable_price == Decimal(-(-quote * 101 // 100)) / 10**18
    assert market.keeper_fee == FEE and market.kind is OrderKind.MARKET
    new_price(150_000)
    book.execute(market.id, sender=keeper)
    take = client.order(client.place(book_market, "take-profit", -1, trader, trigger_price=160_000, slippage="0.01"))
    assert (take.trigger_price, take.acceptable_price, take.reduce_only) == (160_000, Decimal(158_400), True)
    limit = client.order(client.place(book_market, "limit", -1, trader, limit_price="155000.5", post_only=True))
    assert (limit.acceptable_price, limit.post_only, limit.trigger_price) == (Decimal("155000.5"), True, None)
    assert [o.id for o in client.pending(trader)] == [take.id, limit.id]
    before = token.balanceOf(trader)
    client.cancel(limit.id, trader)
    assert token.balanceOf(trader) == before + FEE_UNITS
    assert client.order(limit.id) is None


def test_cli_places_lists_and_cancels_orders_on_the_devnet(project, sdk, admin, trader, chain, manifest_root, token):
    from click.testing import CliRunner

    from vyperp.cli.orders import cli

    contracts = sdk.contracts
    # the deploy lists every devnet market in its order book and records it in the manifest
    devnet_book = project.OrderBook.at(sdk.deployment.order_book)
    common = ["--deployments", str(manifest_root), "--account", "TEST::2"]

    def run(*args):
        result = CliRunner().invoke(cli, [*args, *common], obj={"provider": chain.provider})
        assert result.exit_code == 0, result.output
        return result.output

    placed = run("place", "BTC-USD", "limit", "buy", "0.5", "--limit-price", "90000", "--post-only")
    assert "order 0 committed" in placed and "90,000.0000" in placed and "post-only" in placed
    run("place", "ETH-USD", "market", "sell", "2", "--keeper-fee", "2.5")
    listed = run("list")
    assert [line.split("│")[2].strip() for line in listed.splitlines() if line.startswith("│")] == ["BTC-USD", "ETH-USD"]
    assert "2.5" in listed and "-2" in listed
    assert "order 0 cancelled" in run("cancel", "0")
    assert [o.id for o in OrderBookClient(devnet_book, contracts.engine, contracts.token).pending(trader)] == [1]
    failed = CliRunner().invoke(cli, ["cancel", "1", *common], obj={"provider": chain.provider})
    assert failed.exit_code != 0  # a market order runs until its expiry
