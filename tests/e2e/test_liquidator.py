"""Liquidator keeper on anvil: crash, restart from a checkpoint, a competing keeper, a node outage.

The accounts are subaccounts of two traders (isolated margin accounts, cheap to open): longs and
shorts at leverages from 2x to 9x on the session's BTC market (M = I, PROTOCOL.md defaults: mmr
5 %, fee 0.5 % of closed notional, partial closes from 100,000 of notional). Which accounts a
crash makes liquidatable is asked of the engine itself before the keeper runs, and must match the
leverages the test expects.
"""

import time
from decimal import Decimal

import pytest

from vyperp.chain import node_url
from vyperp.keepers.liquidator import Liquidator
from vyperp.keepers.rpc import RpcClient
from vyperp.units import to_wad

ENTRY = 150_000
BUY_LIMIT = to_wad(10_000_000)
# (subaccount, leverage, collateral): longs on subaccounts 1-6, shorts on 11-12.
LONGS = [(1, 9, 10_000), (2, 8, 10_000), (3, 9, 20_000), (4, 6, 10_000), (5, 4, 10_000),
         (6, 2, 10_000)]
SHORTS = [(11, 9, 10_000), (12, 3, 10_000)]
CRASH = 135_000  # 9x and 8x longs fall below maintenance (liquidation ~140,000 and ~138,000)
DEEPER = 118_000  # then the 6x long too (~131,500), and the 4x one (~118,400)


@pytest.fixture(scope="module")
def book_accounts(engine, market, trader, other_trader, fund, token, oracle, set_price):
    """Opens the positions once for the module (each test reverts to this state)."""
    set_price(oracle, ENTRY)
    opened = []
    for owner, specs, side in ((trader, LONGS, 1), (other_trader, SHORTS, -1)):
        fund(owner, sum(c for _, _, c in specs), engine)
        for subaccount, leverage, collateral in specs:
            engine.deposit(collateral * 10**6, subaccount, sender=owner)
            size = to_wad((Decimal(leverage * collateral) / ENTRY).quantize(Decimal("1e-12")))
            limit = BUY_LIMIT if side > 0 else 0
            engine.modify_position(market, side * size, limit, subaccount, sender=owner)
            opened.append((owner.address, subaccount))
    # more events for the book to follow: a reduce and a withdrawal, and a short flipped long
    engine.modify_position(market, -to_wad("0.05"), 0, 6, sender=trader)
    engine.withdraw(2_000 * 10**6, 6, sender=trader)
    engine.modify_position(market, to_wad("0.3"), BUY_LIMIT, 12, sender=other_trader)
    return opened


@pytest.fixture
def rpc(chain):
    return RpcClient(node_url(chain.provider))


@pytest.fixture
def make_keeper(engine, lens, keeper, chain, rpc):
    def build(sender=keeper, checkpoint_path=None, client=None):
        return Liquidator(engine, lens, sender, rpc=client or rpc, deploy_block=0,
                          chain_id=chain.chain_id, checkpoint_path=checkpoint_path)

    return build


class Mempool:
    """Holds transactions in anvil's mempool until `mine()` (a race, a crash mid-flight). Ape's
    own transactions wait for receipts, so they are sent only while automine is on."""

    def __init__(self, provider):
        self.provider = provider

    def hold(self):
        self.provider.make_request("evm_setAutomine", [False])

    def mine(self):
        self.provider.make_request("evm_mine", [])
        self.provider.make_request("evm_setAutomine", [True])


@pytest.fixture
def mempool(chain):
    held = Mempool(chain.provider)
    yield held
    chain.provider.make_request("evm_setAutomine", [True])


def mined(rpc, step, timeout=10.0):
    """Waits for a step's transactions: anvil's automine mines shortly after a raw send returns."""
    deadline = time.monotonic() + timeout
    for flight in step.sent:
        while rpc.call("eth_getTransactionReceipt", [flight.hash]) is None:
            assert time.monotonic() < deadline, f"{flight.hash} not mined"
            time.sleep(0.01)
    return step


def liquidatable_on_chain(lens, accounts):
    return {key for key, status in zip(accounts, lens.account_statuses(accounts), strict=True)
            if status.liquidatable}


def liquidations(engine, start_block):
    """(owner, subaccount, liquidator) of every Liquidation since start_block."""
    head = engine.chain_manager.blocks.head.number
    return [(log.owner, log.subaccount, log.liquidator)
            for log in engine.Liquidation.range(start_block, head + 1)]


def assert_book_matches_chain(liquidator, engine, lens, chain):
    """The keeper's book values every open account exactly as the engine does at the head
    block, and holds every account's collateral (flat ones and the liquidator's too) to the wei."""
    quotes = liquidator.reads.quotes(engine.market_count(), chain.blocks.head.number)
    valued, unpriced = liquidator.book.value(quotes)
    assert unpriced == [] and valued
    keys = [v.key for v in valued]
    for valuation, status in zip(valued, lens.account_statuses(keys), strict=True):
        assert (valuation.equity, valuation.maintenance_margin, valuation.notional) == (
            status.equity, status.maintenance_margin, status.notional), valuation.key
    for (owner, subaccount), account in liquidator.book.accounts.items():
        assert account.collateral == engine.collateral(owner, subaccount), (owner, subaccount)


def subaccounts(trader, *ids):
    return {(trader.address, i) for i in ids}


def test_after_a_crash_every_liquidatable_account_is_liquidated_and_nothing_healthy(
        make_keeper, book_accounts, engine, lens, oracle, set_price, trader, keeper, chain, rpc):
    liquidator = make_keeper()
    calm = liquidator.step()
    assert calm.candidates == 0 and calm.confirmed == () and calm.sent == ()

    set_price(oracle, CRASH)
    doomed = liquidatable_on_chain(lens, book_accounts)
    assert doomed == subaccounts(trader, 1, 2, 3)
    assert_book_matches_chain(liquidator, engine, lens, chain)
    chain_view = dict(zip(book_accounts, lens.account_statuses(book_accounts), strict=True))

    start = chain.blocks.head.number
    step = mined(rpc, liquidator.step())
    assert set(step.confirmed) == doomed
    ratios = {key: s.equity / s.maintenance_margin for key, s in chain_view.items()}
    assert list(step.confirmed) == sorted(doomed, key=ratios.get)  # worst first
    assert len(step.sent) == 1  # one liquidate_many for all of them
    assert {(o, s) for o, s, _ in liquidations(engine, start)} == doomed
    assert all(liquidator_ == keeper.address for _, _, liquidator_ in liquidations(engine, start))

    # the receipt and the events come back in the next step; the partial one is healthy again
    done = liquidator.step()
    assert set(done.liquidated) == doomed and done.already_liquidated == ()
    assert done.sent == () and done.candidates == 0
    assert engine.open_positions(trader, 3, 0).size > 0  # 180,000 of notional: closed in part
    assert liquidatable_on_chain(lens, book_accounts) == set()
    assert_book_matches_chain(liquidator, engine, lens, chain)  # after full and partial closes
    rewards = liquidator.book.accounts[(keeper.address, 0)].collateral
    assert rewards == engine.collateral(keeper, 0) > 0
    metrics = liquidator.metrics
    assert (metrics.items_handled, metrics.counters["liquidated"], metrics.errors) == (3, 3, 0)
    assert metrics.counters["transactions_sent"] == 1


def test_a_keeper_restarted_mid_run_resumes_without_missing_or_doubling(
        make_keeper, book_accounts, engine, lens, oracle, set_price, trader, chain, tmp_path,
        mempool, rpc):
    checkpoint = tmp_path / "liquidator.json"
    first = make_keeper(checkpoint_path=checkpoint)
    first.step()
    start = chain.blocks.head.number
    set_price(oracle, CRASH)
    mempool.hold()
    in_flight = first.step()
    assert set(in_flight.confirmed) == subaccounts(trader, 1, 2, 3) and len(in_flight.sent) == 1
    del first  # the process dies with its transaction still in the mempool

    second = make_keeper(checkpoint_path=checkpoint)
    assert set(second.in_flight) == {in_flight.sent[0].hash}
    assert second.book.last_block == in_flight.block
    waiting = second.step()  # still liquidatable on chain, but in flight: not sent again
    assert waiting.events_applied == 0 and waiting.candidates == 0 and waiting.sent == ()

    mempool.mine()  # the first process's transaction lands
    set_price(oracle, DEEPER)
    # the partially closed account falls again, with the 6x and 4x longs
    assert liquidatable_on_chain(lens, book_accounts) == subaccounts(trader, 3, 4, 5)
    resumed = mined(rpc, second.step())
    assert resumed.events_applied > 0
    assert set(resumed.liquidated) == subaccounts(trader, 1, 2, 3)
    assert set(resumed.confirmed) == subaccounts(trader, 3, 4, 5)
    second.step()
    logged = sorted((o, s) for o, s, _ in liquidations(engine, start))
    assert logged == sorted([*subaccounts(trader, 1, 2, 3), *subaccounts(trader, 3, 4, 5)])
    assert liquidatable_on_chain(lens, book_accounts) == set()
    assert second.metrics.counters["liquidated"] == 6 and second.metrics.errors == 0


def test_two_competing_liquidators_never_double_liquidate(
        make_keeper, book_accounts, engine, lens, oracle, set_price, keeper, stranger, chain,
        mempool):
    keepers = {keeper.address: make_keeper(), stranger.address: make_keeper(sender=stranger)}
    set_price(oracle, CRASH)
    doomed = liquidatable_on_chain(lens, book_accounts)
    start = chain.blocks.head.number
    mempool.hold()
    sent = [k.step() for k in keepers.values()]
    assert all(set(s.confirmed) == doomed and len(s.sent) == 1 for s in sent)
    again = keepers[keeper.address].step()  # its own transaction is still in flight
    assert again.candidates == 0 and again.sent == ()
    mempool.mine()  # both transactions in one block: the first liquidates, the second skips
    after = {address: k.step() for address, k in keepers.items()}

    logged = liquidations(engine, start)
    assert sorted((o, s) for o, s, _ in logged) == sorted(doomed)  # once each
    (winner,) = {who for _, _, who in logged}
    (loser,) = set(keepers) - {winner}
    assert set(after[winner].liquidated) == doomed and after[winner].already_liquidated == ()
    assert after[loser].liquidated == () and set(after[loser].already_liquidated) == doomed
    lost = keepers[loser].metrics
    assert lost.items_handled == len(doomed) and lost.counters["already_liquidated"] == len(doomed)
    assert lost.errors == 0 and lost.counters["reverted"] == 0
    assert all(step.sent == () for step in after.values())


def test_the_keeper_recovers_when_its_node_stops_answering(
        make_keeper, book_accounts, lens, oracle, set_price, trader, chain, rpc):
    liquidator = make_keeper()
    liquidator.step()
    set_price(oracle, CRASH)
    node = rpc.url
    rpc.url = "http://127.0.0.1:9"  # nothing listens there: connection refused
    down = liquidator.step()
    assert down.retryable_error and "ConnectionError" in down.retryable_error
    assert down.sent == ()
    assert liquidator.metrics.counters["retryable_errors"] == 1 and liquidator.metrics.errors == 0

    rpc.url = node
    back = mined(rpc, liquidator.step())
    assert back.retryable_error is None
    assert set(back.confirmed) == subaccounts(trader, 1, 2, 3) and len(back.sent) == 1
    assert liquidatable_on_chain(lens, book_accounts) == set()
