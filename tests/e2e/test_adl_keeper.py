"""ADL keeper on anvil: a vault of 100,000 facing longs whose profit outgrows half of it.

A market without fees, premium or funding makes every figure follow from the prices: longs of
0.6, 0.4 and 0.2 BTC and a short of 0.2 at 150,000; at 240,000 the longs gain 54,000, 36,000 and
18,000 and the short loses 18,000. Traders' net profit of 90,000 is above max_pnl_factor (50 %)
of the vault's 100,000, so deleveraging opens and runs until it is at most adl_target (45 %).
Closing the largest long realizes 54,000 of profit, which the vault pays pro rata under the cap
(rule S2): 54,000 * 50,000 / 90,000 = 30,000, leaving 36,000 against 70,000 (51 %). In the
second long (market profit 36,000 above the cap of 35,000), closing profit u pays u * 35/36, and
36,000 - u <= 0.45 * (70,000 - u * 35/36) once u >= 8,000: 62,000 of profit in all.
"""

import time
from decimal import Decimal

import pytest

from vyperp.chain import node_url
from vyperp.contracts import add_market
from vyperp.keepers.adl import AdlKeeper
from vyperp.keepers.rpc import RpcClient
from vyperp.units import WAD, to_wad

ENTRY, RALLY = 150_000, 240_000
BUY_LIMIT = to_wad(10_000_000)
POSITIONS = {1: "0.6", 2: "0.4", 3: "0.2", 4: "-0.2"}  # subaccount -> size


@pytest.fixture(scope="module")
def small_vault(deploy, admin, lp, trader, market_config, oracle, set_price):
    """A fresh protocol: vault of 100,000, one plain market, the four positions open."""
    set_price(oracle, ENTRY)
    small = deploy(6)
    config = market_config.with_(maker_fee=0, taker_fee=0, max_premium=0, interest_rate=0,
                                 max_funding_rate=0, breaker_move=WAD)
    market_id = add_market(small, admin, config, atomic_trading=True)
    for account, spender, amount in ((lp, small.vault, 100_000), (trader, small.engine, 200_000)):
        small.token.mint(account, amount * 10**6, sender=admin)
        small.token.approve(spender, amount * 10**6, sender=account)
    small.vault.deposit(100_000 * 10**6, lp, sender=lp)
    for subaccount, size in POSITIONS.items():
        small.engine.deposit(50_000 * 10**6, subaccount, sender=trader)
        delta = to_wad(size)
        small.engine.modify_position(market_id, delta, BUY_LIMIT if delta > 0 else 0, subaccount,
                                     sender=trader)
    return small, market_id


def wait_mined(rpc, hashes, timeout=10.0):
    deadline = time.monotonic() + timeout
    for tx_hash in hashes:
        while rpc.call("eth_getTransactionReceipt", [tx_hash]) is None:
            assert time.monotonic() < deadline, f"{tx_hash} not mined"
            time.sleep(0.01)


def test_adl_keeper_reduces_the_most_profitable_positions_until_ineligible(
        small_vault, trader, keeper, oracle, set_price, chain):
    small, market_id = small_vault
    engine = small.engine
    rpc = RpcClient(node_url(chain.provider))
    adl = AdlKeeper(engine, small.lens, keeper, rpc=rpc, deploy_block=0, chain_id=chain.chain_id)
    quiet = adl.step()
    assert not quiet.eligible and quiet.sent == ()

    set_price(oracle, RALLY)
    assert engine.adl_eligible()
    start = chain.blocks.head.number
    step = adl.step()
    assert step.eligible
    assert abs(step.target_profit - to_wad(62_000)) < to_wad("0.001")
    assert [(d.key[1], d.market_id) for d in step.planned] == [(1, market_id), (2, market_id)]
    assert step.planned[0].size == to_wad("0.6")  # the largest profit closes in full
    # the second closes 8,000 of its 36,000, plus 1 %: a size of 0.4 * 8,000 / 36,000 * 1.01
    expected = Decimal("0.4") * 8_000 / 36_000 * Decimal("1.01")
    assert abs(Decimal(step.planned[1].size) / WAD - expected) < Decimal("1e-12")
    wait_mined(rpc, step.sent)

    assert not engine.adl_eligible()
    logs = list(engine.Deleveraged.range(start, chain.blocks.head.number + 1))
    assert [(log.subaccount, log.caller) for log in logs] == [(1, keeper.address),
                                                              (2, keeper.address)]
    assert all(log.price == to_wad(RALLY) for log in logs)
    sizes = {s: engine.open_positions(trader, s, market_id).size for s in POSITIONS}
    assert sizes[1] == 0 and 0 < sizes[2] < to_wad("0.4")
    assert (sizes[3], sizes[4]) == (to_wad("0.2"), -to_wad("0.2"))  # smaller profit, and the loser

    done = adl.step()  # collects the receipts; nothing more to do
    assert done.planned == () and not done.eligible
    assert adl.metrics.counters["deleveraged"] == 2 and adl.metrics.items_handled == 2
    assert adl.metrics.errors == 0 and adl.metrics.counters["reverted"] == 0
