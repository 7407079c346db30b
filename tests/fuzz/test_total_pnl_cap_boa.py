"""S2 "in total": traders' profit is capped at max_pnl_factor of the vault per market AND over
all markets. Before, each market's close compared only its own market's PnL with the cap, so
winners in two markets, each under the cap, were paid in full while together they held more
than the vault could pay."""

import boa

from boa_protocol import MAX_UINT256, ORACLE_DECIMALS, contract, oracle_answer, publish_round
from vyperp.units import WAD

UNITS = 10**6
VAULT_UNITS = 1_000_000 * UNITS
ETH_START = 3_000


def second_market(p):
    """An ETH market on its own oracle, with the fixture's reporter."""
    with boa.env.prank(p.admin):
        oracle = contract("PriceOracle").deploy(ORACLE_DECIMALS, "ETH / USD", [p.reporter.address], 1, 10_000, 86_400)
    publish_round(oracle, oracle_answer(ETH_START), [p.reporter])
    config = p.config.with_(oracle=oracle.address, max_oi_vault_ratio=5 * WAD)
    p.engine_admin.add_market(config.as_tuple(), sender=p.admin)
    p.engine_admin.set_atomic_trading(1, True, sender=p.admin)
    return oracle


def btc_winner_and_eth_trader(p, eth_size: int, eth_price: int):
    """A 5 BTC long and an `eth_size` ETH position, then BTC +50 % (the fixture's breaker move is
    100 %) and ETH at `eth_price`, both accepted by a checkpoint. Returns the two traders."""
    btc_trader, eth_trader = p.traders[0], p.traders[1]
    p.set_market(max_oi_vault_ratio=5 * WAD)
    eth_oracle = second_market(p)
    p.seed_vault(VAULT_UNITS)
    for trader in (btc_trader, eth_trader):
        p.deposit(trader, 300_000 * UNITS)
    p.engine.modify_position(0, 5 * WAD, MAX_UINT256, sender=btc_trader)
    p.engine.modify_position(1, eth_size, MAX_UINT256 if eth_size > 0 else 0, sender=eth_trader)
    boa.env.time_travel(seconds=1)
    p.push_price(oracle_answer(225_000))
    publish_round(eth_oracle, oracle_answer(eth_price), [p.reporter])
    p.engine.checkpoint_funding([0, 1])
    return btc_trader, eth_trader


def test_profit_over_the_cap_in_total_is_paid_pro_rata_boa(boa_protocol):
    """Two markets each at 0.375 of the vault in traders' profit (under the 0.5 cap each, 0.75 in
    total): the BTC winner's close is paid times cap / total. On the code before, it was paid
    in full (no ProfitCapped, paid == realized)."""
    p = boa_protocol
    with boa.env.anchor():
        btc_trader, _ = btc_winner_and_eth_trader(p, 250 * WAD, 4_500)
        vault = p.engine.vault_balance()
        cap = vault * p.engine_admin.max_pnl_factor() // WAD
        btc_pnl = 5 * 225_000 * WAD - p.engine.cost_sum(0)
        eth_pnl = 250 * 4_500 * WAD - p.engine.cost_sum(1)
        assert btc_pnl < cap and eth_pnl < cap < btc_pnl + eth_pnl, (btc_pnl, eth_pnl, cap)

        p.engine.modify_position(0, -5 * WAD, 0, sender=btc_trader)
        (capped,) = p.events(p.engine, "ProfitCapped")
        assert capped.market_id == 0
        # the close price carries the skew premium back: the market's PnL at that price
        total = capped.realized_pnl * (btc_pnl + eth_pnl) // btc_pnl
        assert abs(capped.paid - capped.realized_pnl * cap // total) <= capped.realized_pnl // 1000
        assert capped.paid < capped.realized_pnl * 7 // 10


def test_losers_in_another_market_offset_the_total_boa(boa_protocol):
    """The total is traders' net PnL: a loser in ETH owes the vault what a BTC winner gains, so
    a BTC profit under the per-market cap is paid in full."""
    p = boa_protocol
    with boa.env.anchor():
        btc_trader, _ = btc_winner_and_eth_trader(p, -250 * WAD, 3_900)
        before = p.engine.collateral(btc_trader, 0)
        p.engine.modify_position(0, -5 * WAD, 0, sender=btc_trader)
        assert p.events(p.engine, "ProfitCapped") == []
        assert p.engine.collateral(btc_trader, 0) - before > 350_000 * WAD


def test_a_deposit_before_a_capped_close_buys_no_share_of_the_haircut_boa(boa_protocol):
    """S7 counts traders' profit capped as in S2. Before, the vault's entry valuation counted a
    profit above the cap in full, though a close pays only the capped part: a depositor who
    entered just before the winner's close bought shares cheap and gained the haircut (the
    entry share price jumped about 25 % at the close)."""
    p = boa_protocol
    winner = p.traders[0]
    with boa.env.anchor():
        p.set_market(max_oi_vault_ratio=5 * WAD)
        p.seed_vault(VAULT_UNITS)
        p.deposit(winner, 300_000 * UNITS)
        p.engine.modify_position(0, 8 * WAD, MAX_UINT256, sender=winner)
        boa.env.time_travel(seconds=1)
        p.push_price(oracle_answer(225_000))  # traders' profit 600,000: above the 500,000 cap
        p.engine.checkpoint_funding([0])
        shares_before = p.vault.previewDeposit(100_000 * UNITS)
        p.engine.modify_position(0, -8 * WAD, 0, sender=winner)
        assert p.events(p.engine, "ProfitCapped"), "the close was not capped"
        shares_after = p.vault.previewDeposit(100_000 * UNITS)
        # the close's fee (its vault share) is all the share price may gain
        assert shares_after * 1000 >= shares_before * 995, (shares_before, shares_after)
