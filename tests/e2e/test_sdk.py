"""The SDK on the deployed devnet: trader, LP, keeper and admin flows in human units.

Expected figures are worked by hand from docs/protocol.md for the devnet's BTC-USD market
(index 95,000, skew scale 100,000, imr 5 %, mmr 2.5 %, taker 0.06 %, maker 0.02 %,
interest 0.01 % per 8 h; 80 % of fees to the vault). Time between transactions is pinned
with the chain's pending timestamp so that funding is exact.
"""

from decimal import ROUND_DOWN, Context, Decimal

import ape
import pytest

from vyperp.contracts import deploy_oracle
from vyperp.errors import VyperpError
from vyperp.manifest import Deployment
from vyperp.oracle_signing import transmit_round
from vyperp.sdk import INFINITY, Vyperp
from vyperp.units import WAD

EXACT = Context(prec=100)
WEI = Decimal("1e-18")

# One long BTC from a flat market (docs/protocol.md §3, §7).
BTC_FILL = Decimal("95000.475")  # 95,000 · (1 + 1 / (2 · 100,000))
BTC_OPEN_FEE = Decimal("57.000285")  # taker 0.06 % of 95,000.475
BTC_CLOSE_FEE = Decimal("19.000095")  # maker 0.02 % (the close reduces the skew)
# Funding rate with one long BTC of skew: 1 / 100,000 premium + 0.01 % interest, per 8 h.
BTC_RATE_WAD = 10**13 + 10**14


def trunc(value: Decimal) -> Decimal:
    return value.quantize(WEI, rounding=ROUND_DOWN, context=EXACT)


def funding_per_unit(seconds: int, index_price: int = 95_000) -> Decimal:
    """docs/protocol.md §4: floor(F · Δt · I / (28,800 · 1e18)) per unit of size (1e18 base)."""
    return Decimal(BTC_RATE_WAD * seconds * index_price * WAD // (28_800 * WAD)) * WEI


def report_price(sdk, market, price, reporters):
    """A new round from a quorum of the devnet reporters (two)."""
    oracle = sdk.contracts.oracles[market]
    transmit_round(oracle, int(Decimal(price) * 10**8), reporters[:2], reporters[0])


@pytest.fixture
def long_btc(sdk, trader):
    """The trader deposits 10,000 and buys 1 BTC; returns the trade's block timestamp."""
    sdk.deposit(10_000, trader)
    sdk.open_position("BTC-USD", 1, "long", trader)
    return ape.chain.blocks.head.timestamp


def test_markets_are_read_in_one_batch_with_human_units(sdk):
    states = {state.name: state for state in sdk.markets()}
    assert list(states) == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert {name: state.index_price for name, state in states.items()} == {
        "BTC-USD": 95_000,
        "ETH-USD": 3_500,
        "SOL-USD": 150,
    }
    assert all(state.mark_price == state.index_price for state in states.values())
    assert all(state.skew == 0 and state.long_open_interest == 0 for state in states.values())
    assert [states[name].max_leverage for name in states] == [20, 20, 10]
    assert not any(state.reduce_only for state in states.values())


def test_trader_deposits_opens_closes_and_withdraws_in_human_units(sdk, trader, chain):
    sdk.deposit(Decimal(10_000), trader)
    assert sdk.wallet_balance(trader) == 990_000
    assert sdk.account(trader).collateral == 10_000

    opened = sdk.open_position("BTC-USD", Decimal(1), "long", trader)
    assert (opened.size_delta, opened.new_size, opened.fill_price, opened.fee) == (
        1,
        1,
        BTC_FILL,
        BTC_OPEN_FEE,
    )
    opened_at = chain.blocks.head.timestamp

    account = sdk.account(trader)
    equity = 10_000 - BTC_OPEN_FEE + 95_000 - BTC_FILL  # collateral − fee + floor(size·M) − cost
    assert equity == Decimal("9942.524715")
    assert (
        account.equity,
        account.initial_margin,
        account.maintenance_margin,
        account.notional,
    ) == (
        equity,
        4_750,
        2_375,
        95_000,
    )
    assert account.free_collateral == equity - 4_750  # unrealized loss counts, IM held back
    assert account.leverage == trunc(95_000 / equity)
    assert account.health == trunc(equity / 2_375)
    assert not account.liquidatable
    [position] = account.positions
    assert (position.market, position.side.value, position.size) == ("BTC-USD", "long", 1)
    assert (position.entry_price, position.mark_price, position.unrealized_pnl) == (
        BTC_FILL,
        95_000,
        -Decimal("0.475"),
    )
    # docs/protocol.md §5, a lone long: E + (P − M) = P · mmr
    assert position.liquidation_price == trunc((95_000 - equity) / Decimal("0.975"))

    chain.pending_timestamp = opened_at + 100
    closed = sdk.close_position("BTC-USD", trader)
    funding = funding_per_unit(100)
    assert (closed.size_delta, closed.new_size, closed.fill_price) == (-1, 0, BTC_FILL)
    assert (closed.fee, closed.realized_pnl, closed.funding_paid) == (BTC_CLOSE_FEE, 0, funding)

    collateral = 10_000 - BTC_OPEN_FEE - BTC_CLOSE_FEE - funding
    account = sdk.account(trader)
    assert (
        account.positions == () and account.collateral == collateral and account.health == INFINITY
    )
    withdrawable = collateral.quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
    assert account.free_collateral == withdrawable

    sdk.withdraw(withdrawable, trader)
    assert sdk.wallet_balance(trader) == 990_000 + withdrawable
    assert sdk.account(trader).collateral == collateral - withdrawable


def test_increase_and_reduce_follow_the_position(sdk, trader, long_btc):
    increased = sdk.open_position("BTC-USD", Decimal("0.5"), "long", trader)
    assert increased.new_size == Decimal("1.5")
    reduced = sdk.reduce_position("BTC-USD", Decimal("1.2"), trader)
    assert (reduced.size_delta, reduced.new_size) == (Decimal("-1.2"), Decimal("0.3"))
    with pytest.raises(VyperpError, match="at most 0.3"):
        sdk.reduce_position("BTC-USD", Decimal("0.4"), trader)


def test_slippage_bound_is_the_quote_moved_against_the_trader(sdk, trader):
    assert sdk.limit_price("BTC-USD", 1, "0.01") == BTC_FILL * Decimal("1.01")
    sell_quote = Decimal("94999.525")  # a sell from a flat market fills below the index
    assert sdk.fill_price("BTC-USD", -1) == sell_quote
    assert sdk.limit_price("BTC-USD", -1, "0.01") == sell_quote * Decimal("0.99")
    # zero slippage sends the quote itself as the limit, and the trade fills exactly at it
    sdk.deposit(10_000, trader)
    assert sdk.trade("BTC-USD", -1, trader, slippage=0).fill_price == sell_quote


def test_an_operator_trades_for_the_owner(sdk, trader, other_trader, stranger):
    sdk.deposit(5_000, other_trader)
    sdk.set_operator(trader, True, other_trader)
    result = sdk.open_position("ETH-USD", 1, "short", trader, owner=other_trader)
    # ETH skew scale 2,000,000: a 1 ETH sell from flat fills 3,500 · (1 − 1 / 4,000,000) below
    assert (result.new_size, result.fill_price) == (-1, Decimal("3499.999125"))
    assert [p.size for p in sdk.account(other_trader).positions] == [-1]
    assert sdk.account(trader).positions == ()
    with pytest.raises(ape.exceptions.ContractLogicError, match="not owner or operator"):
        sdk.open_position("ETH-USD", 1, "short", stranger, owner=other_trader)


def test_lp_deposits_requests_and_redeems_at_the_share_price(sdk, lp, chain):
    assert sdk.share_price() == 1
    assert sdk.lp_deposit(1_000, lp) == 1_000
    assert sdk.lp_position(lp).shares == 5_001_000
    assert sdk.wallet_balance(lp) == 4_999_000
    with pytest.raises(VyperpError, match="request a redemption first"):
        sdk.lp_redeem(1_000, lp)

    claimable_at = sdk.lp_request_redeem(1_000, lp)

    assert claimable_at == chain.blocks.head.timestamp + 3_600
    position = sdk.lp_position(lp)
    assert (position.shares, position.requested, position.claimable_at) == (5_000_000, 1_000, claimable_at)
    # the escrowed shares still count in what the LP holds; none can be claimed yet
    assert (position.value, position.max_withdraw) == (5_001_000, 0)
    with pytest.raises(VyperpError, match=f"claimable from {claimable_at}"):
        sdk.lp_redeem(1_000, lp)
    chain.pending_timestamp = claimable_at
    assert sdk.lp_position(lp).max_withdraw == 0  # the head block is still before it
    assert sdk.lp_redeem(1_000, lp) == 1_000
    assert sdk.wallet_balance(lp) == 5_000_000
    assert sdk.lp_position(lp) == sdk.lp_position(lp).__class__(
        owner=lp.address, shares=Decimal(5_000_000), value=Decimal(5_000_000), max_withdraw=Decimal(0)
    )


def test_lp_cancels_a_redemption_request(sdk, lp):
    with pytest.raises(VyperpError, match="no redemption request"):
        sdk.lp_cancel_redeem(lp)
    sdk.lp_request_redeem("2500.5", lp)
    sdk.lp_request_redeem(500, lp)
    assert sdk.lp_position(lp).requested == Decimal("3000.5")

    assert sdk.lp_cancel_redeem(lp) == Decimal("3000.5")

    position = sdk.lp_position(lp)
    assert (position.shares, position.requested, position.claimable_at) == (5_000_000, 0, 0)


def test_fees_and_funding_raise_the_share_price(sdk, trader, lp, chain, long_btc):
    chain.pending_timestamp = long_btc + 100
    sdk.close_position("BTC-USD", trader)
    # vault: 80 % of each fee (rounded down) and the funding the long paid; no open interest left
    equity = (
        5_000_000
        + trunc(BTC_OPEN_FEE * Decimal("0.8"))
        + trunc(BTC_CLOSE_FEE * Decimal("0.8"))
        + funding_per_unit(100)
    )
    total_assets = int(equity * 10**6)  # token units, rounded down
    total_shares = 5_000_000 * 10**12
    # docs/protocol.md §8: assets(s) = floor(s · (totalAssets + 1) / (totalSupply + 10^6))
    assert (
        sdk.share_price() == Decimal(10**12 * (total_assets + 1) // (total_shares + 10**6)) / 10**6
    )
    assert sdk.share_price() > 1
    assert (
        sdk.lp_position(lp).value
        == Decimal(total_shares * (total_assets + 1) // (total_shares + 10**6)) / 10**6
    )


def test_keeper_checkpoints_every_market_in_one_transaction(sdk, keeper, chain, long_btc):
    engine = sdk.contracts.engine
    index_after_trade = engine.funding_index(0)
    chain.pending_timestamp = long_btc + 60

    receipt = sdk.checkpoint_funding(keeper)

    checkpoints = receipt.events.filter(engine.FundingCheckpoint)
    assert sorted(event.market_id for event in checkpoints) == [0, 1, 2]
    assert [engine.last_funding_time(market_id) for market_id in range(3)] == [long_btc + 60] * 3
    assert engine.funding_index(0) - index_after_trade == funding_per_unit(60) * 10**18
    btc = sdk.market("BTC-USD")
    assert (btc.skew, btc.long_open_interest, btc.funding_rate) == (
        1,
        1,
        Decimal(BTC_RATE_WAD) * WEI,
    )


def test_account_statuses_batch_many_accounts_and_flag_liquidation(
    sdk, trader, other_trader, lp, reporters, chain, long_btc
):
    # 87,000 is below the long's liquidation price (≈ 87,238); the mark is a 60 s TWAP, so the
    # new price must hold for a whole window before the mark is there.
    report_price(sdk, "BTC-USD", 87_000, reporters)
    chain.mine(timestamp=chain.blocks.head.timestamp + 61)

    statuses = sdk.account_statuses([(trader, 0), (other_trader, 0), (lp, 0)])

    account = sdk.account(trader)
    assert account.positions[0].mark_price == 87_000
    assert account.liquidatable and account.health < 1
    assert [status.owner for status in statuses] == [
        trader.address,
        other_trader.address,
        lp.address,
    ]
    assert (statuses[0].equity, statuses[0].maintenance_margin, statuses[0].liquidatable) == (
        account.equity,
        account.maintenance_margin,
        True,
    )
    assert account.maintenance_margin == Decimal(87_000 * 25) / 1000
    assert [(s.notional, s.liquidatable) for s in statuses[1:]] == [(0, False), (0, False)]


def test_stale_prices_show_as_missing_and_block_account_reads(sdk, chain, long_btc, trader):
    chain.mine(timestamp=long_btc + 121)  # past the markets' 120 s max price age
    assert [state.index_price for state in sdk.markets()] == [None, None, None]
    with pytest.raises(VyperpError, match="no usable price"):
        sdk.account(trader)


def test_amounts_finer_than_the_token_are_refused(sdk, trader):
    with pytest.raises(VyperpError, match="more than 6 decimals"):
        sdk.deposit(Decimal("1.0000001"), trader)
    with pytest.raises(VyperpError, match="no position"):
        sdk.close_position("BTC-USD", trader)


def test_admin_lists_a_market_and_records_it_in_the_manifest(
    project, sdk, admin, reporters, manifest_root, tmp_path
):
    (tmp_path / "ethereum_local.json").write_text(
        Deployment.path_for("ethereum:local", manifest_root).read_text()
    )
    admin_sdk = Vyperp.connect(project, "ethereum:local", root=tmp_path)
    feed = deploy_oracle(project, admin, [reporters[0]], description="DOGE / USD")
    transmit_round(feed, 25 * 10**6, reporters[:1], reporters[0])  # 0.25

    entry = admin_sdk.add_market(
        "DOGE-USD",
        feed,
        admin,
        params={"imr": "0.25", "mmr": "0.125", "mark_window": 0},
        reporters=[reporters[0].address],
    )

    assert (entry.id, entry.oracle, entry.oracle_decimals) == (3, feed.address, 8)
    assert Deployment.load("ethereum:local", tmp_path).market("DOGE-USD") == entry
    doge = admin_sdk.market("DOGE-USD")
    assert (doge.index_price, doge.max_leverage, doge.config.mark_window) == (Decimal("0.25"), 4, 0)
    with pytest.raises(VyperpError, match="already listed"):
        admin_sdk.add_market("DOGE-USD", feed, admin)
