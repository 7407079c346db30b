"""The gas benchmark's scenario and its measured operations (`ape run gas_benchmark`, or
`make bench`, writes them to docs/benchmarks.md).

The scenario is a steady devnet rather than an empty chain: three markets with open interest on
both sides, a seeded LP vault, oracles with ten minutes of 12-second history (TWAP mark over
180 s), and 12 seconds between measured transactions so that every trade accrues funding and
reads a fresh round. Cold-versus-warm storage decides most of the cost, so these conditions
matter more than the trade sizes.

Later benchmarks (liquidation, orders) add a function `(net, sections) -> Section` to
`BENCHMARKS` (vyperp/cli/gas_benchmark.py); each runs on the same devnet after the ones before it, and `render_markdown`
lays out whatever sections it is given.
"""

import random
from decimal import Decimal

import click

from vyperp import roles
from vyperp.bench.report import Row, Section, fmt_gas
from vyperp.contracts import add_market, deploy_oracle, deploy_protocol
from vyperp.oracle_signing import sign_round, transmission, transmit_round
from vyperp.orders import OrderKind, OrderSettings, deploy_order_book
from vyperp.params import MarketConfig
from vyperp.units import to_wad

TICK = 12
HISTORY_SECONDS = 600
ORACLE_DECIMALS = 8
QUORUM = 2
MAX_REPORT_AGE = 60
MAX_DEVIATION_BPS = 500
MARK_WINDOW = 180
# The wide oracle of the 7-observation transmission row: 7 reporters, this quorum.
WIDE_REPORTERS = 7
WIDE_QUORUM = 4

# (feed, start price, trade size): one trade is about 150,000 of notional in every market.
MARKETS = [
    ("BTC / USD", 150_000, 1),
    ("ETH / USD", 3_000, 50),
    ("SOL / USD", 150, 1_000),
]

TARGETS = {
    "open": 130_000,
    "modify": 90_000,
    "close": 100_000,
    "checkpoint": 50_000,
    "liquidate": 120_000,
    "batch_extra": 80_000,
}
# Accounts of the batch liquidation measurement.
BATCH_SIZE = 10
# Orders: seconds between oracle rounds, the keeper fee (token units), a buy's acceptable price.
ORDER_ROUND_GAP = 2
ORDER_KEEPER_FEE = 10**6
ORDER_ANY_BUY = to_wad(10_000_000)


class SteadyMarkets:
    """A protocol with three markets whose oracles beat every 12 s; owns the simulated clock."""

    def __init__(self, project, chain, accounts, seed: int = 7):
        test = accounts.test_accounts
        self.project = project
        self.chain = chain
        self.admin, self.lp, self.keeper = test[roles.ADMIN], test[roles.LP], test[roles.KEEPER]
        self.trader, self.background = (test[index] for index in roles.TRADERS)
        # nothing here is paused or role-gated: the guardian's and the stranger's accounts are free
        self.second_lp, self.cross_trader = test[roles.GUARDIAN], test[roles.STRANGER]
        self.reporters = roles.reporters_of(test)
        self.rng = random.Random(seed)
        self.protocol = deploy_protocol(project, self.admin)
        self.engine = self.protocol.engine
        self.vault = self.protocol.vault
        self.token = self.protocol.token
        self.oracles, self.prices, self.market_ids = [], [], []
        for feed, price, _ in MARKETS:
            self.oracles.append(
                deploy_oracle(
                    project,
                    self.admin,
                    self.reporters,
                    description=feed,
                    decimals=ORACLE_DECIMALS,
                    quorum=QUORUM,
                    max_deviation_bps=MAX_DEVIATION_BPS,
                    max_report_age=MAX_REPORT_AGE,
                )
            )
            self.prices.append(float(price))
        # the clock starts after the deployments, which take a while on a loaded machine
        self.clock = chain.pending_timestamp + 60
        self.tick(advance=0)
        for oracle in self.oracles:
            config = MarketConfig(oracle=oracle.address).with_(mark_window=MARK_WINDOW)
            self.market_ids.append(add_market(self.protocol, self.admin, config, atomic_trading=True))

    def tick(self, advance: int = TICK) -> list:
        """One heartbeat: in every market the 3 reporters sign an observation each (off chain)
        and the first transmits them in one transaction (S9); all markets in the same second."""
        self.clock += advance
        receipts = []
        for i, oracle in enumerate(self.oracles):
            self.prices[i] *= 1 + self.rng.uniform(-0.0005, 0.0005)
            quotes = [int(self.prices[i] * (1 + self.rng.uniform(-0.0001, 0.0001)) * 10**ORACLE_DECIMALS)
                      for _ in self.reporters]
            self.chain.pending_timestamp = self.clock
            receipts.append(transmit_round(oracle, quotes, self.reporters, self.reporters[0],
                                           observed_at=self.clock))
        return receipts

    def wide_transmissions(self, rounds: int = 2) -> list:
        """A BTC oracle with 7 reporters (quorum 4; the six beside reporter 0 are keys of this
        script, they only sign) and `rounds` transmissions of 7 observations, one second apart
        from the heartbeat's second on (the last is a steady round: it reads the previous round
        and writes a fresh one). The heartbeat clock is left as it is."""
        from eth_account import Account
        from eth_utils import keccak

        signers = [self.reporters[0]] + [
            Account.from_key(keccak(text=f"vyperp gas benchmark reporter {i}")) for i in range(1, WIDE_REPORTERS)]
        oracle = deploy_oracle(self.project, self.admin, [s.address for s in signers], decimals=ORACLE_DECIMALS,
                               quorum=WIDE_QUORUM, max_deviation_bps=MAX_DEVIATION_BPS,
                               max_report_age=MAX_REPORT_AGE)
        receipts = []
        for r in range(rounds):
            clock = self.clock + 1 + r
            self.chain.pending_timestamp = clock
            quotes = [int(self.prices[0] * (1 + self.rng.uniform(-0.0001, 0.0001)) * 10**ORACLE_DECIMALS)
                      for _ in signers]
            round_id, observations = sign_round(oracle, quotes, signers, observed_at=clock)
            receipts.append(oracle.transmit(round_id, transmission(observations), sender=self.reporters[0]))
        return receipts

    def next_block(self):
        """Puts the next transaction in the heartbeat's second, after the reports."""
        self.chain.pending_timestamp = self.clock

    def limit(self, market: int, size_delta: int) -> int:
        """A 2 % slippage bound on the trade's side."""
        price = to_wad(round(self.prices[market], 6))
        return price * 102 // 100 if size_delta > 0 else price * 98 // 100

    def fund(self, account, units: int, spender):
        self.token.mint(account, units, sender=self.admin)
        self.token.approve(spender, units, sender=account)

    def trade(self, account, market: int, size):
        """A trade one heartbeat after the previous transaction; size in base units."""
        self.tick()
        self.next_block()
        delta = to_wad(size)
        return self.engine.modify_position(
            self.market_ids[market], delta, self.limit(market, delta), sender=account
        )

    def close(self, account, market: int):
        self.tick()
        self.next_block()
        size = self.engine.open_positions(account, 0, self.market_ids[market]).size
        return self.engine.close_position(
            self.market_ids[market], self.limit(market, -size), sender=account
        )

    def later(self, send):
        """Runs `send()` one heartbeat after the previous transaction."""
        self.tick()
        self.next_block()
        return send()

    def wait(self, seconds: int):
        """Lets `seconds` pass: one jump of the clock, then HISTORY_SECONDS of heartbeats, so the
        oracles end with the same history as at the start."""
        self.tick(advance=max(seconds - HISTORY_SECONDS, TICK))
        for _ in range(HISTORY_SECONDS // TICK - 1):
            self.tick()


def usd(amount: int) -> int:
    return amount * 10**6


def core_benchmarks(net: SteadyMarkets, _sections: list[Section]) -> Section:
    """Collateral, trading, funding, vault and oracle costs."""
    eng, vault = net.engine, net.vault
    section = Section("Core operations")

    net.fund(net.lp, usd(10_000_000), vault)
    vault.deposit(usd(10_000_000), net.lp, sender=net.lp)
    # Ten minutes of history, so the TWAP searches a realistic number of rounds.
    for _ in range(HISTORY_SECONDS // TICK):
        net.tick()
    # Open interest on both sides of every market, so market aggregates are not first writes.
    for account, side in ((net.admin, 1), (net.background, -2)):
        net.fund(account, usd(2_000_000), eng)
        eng.deposit(usd(2_000_000), 0, sender=account)
        for m, (_, _, size) in enumerate(MARKETS):
            net.trade(account, m, side * size)

    trader = net.trader
    net.fund(trader, usd(1_000_000), eng)
    section.add(
        "collateral deposit (first, empty account)",
        net.later(lambda: eng.deposit(usd(300_000), 0, sender=trader)),
    )
    section.add(
        "collateral deposit (repeat)",
        net.later(lambda: eng.deposit(usd(100_000), 0, sender=trader)),
    )
    section.add(
        "collateral withdraw (no positions)",
        net.later(lambda: eng.withdraw(usd(50_000), 0, sender=trader)),
    )

    size = MARKETS[0][2]
    opened = section.add(
        "open position (account's first)", net.trade(trader, 0, size), TARGETS["open"], traced=True
    )
    market = net.market_ids[0]
    snapshot = eng.open_positions(trader, 0, market).funding_snapshot
    index = eng.funding_index(market)
    if snapshot != index:
        section.intro.append(
            f"Caveat: the opened position's funding snapshot is {snapshot}, not the market's funding index "
            f"{index}, so this open skips a 0→x write a correct open needs (about +20,000 gas) and the "
            "position's next trade makes it instead (the `funding_snapshot` 0→x write of the increase)."
        )
    increased = section.add(
        "increase position", net.trade(trader, 0, size), TARGETS["modify"], traced=True
    )
    section.add("reduce position", net.trade(trader, 0, -size), TARGETS["modify"], traced=True)
    section.add(
        "collateral withdraw (1 open position)",
        net.later(lambda: eng.withdraw(usd(10_000), 0, sender=trader)),
        traced=True,
    )
    section.add("close position", net.close(trader, 0), TARGETS["close"], traced=True)
    net.trade(trader, 0, size)
    section.add(
        "flip position (long → short)",
        net.trade(trader, 0, -2 * size),
        note="one trade of −2× the long",
        traced=True,
    )
    net.close(trader, 0)

    single_checkpoint = section.add(
        "funding checkpoint (one market)",
        net.later(lambda: eng.checkpoint_funding([net.market_ids[0]], sender=net.keeper)),
        TARGETS["checkpoint"],
        traced=True,
    )
    every_market = section.add(
        f"funding checkpoint ({len(MARKETS)} markets, one call)",
        net.later(lambda: eng.checkpoint_funding(net.market_ids, sender=net.keeper)),
    )
    every_market.note = (
        f"≈{fmt_gas((every_market.gas - single_checkpoint.gas) // (len(MARKETS) - 1))} per extra market"
    )

    # Cross margin: the same trades while the account already holds two other markets.
    cross = net.cross_trader
    net.fund(cross, usd(1_000_000), eng)
    eng.deposit(usd(1_000_000), 0, sender=cross)
    net.trade(cross, 1, MARKETS[1][2])
    net.trade(cross, 2, MARKETS[2][2])
    cross_open = net.trade(cross, 0, size)
    section.add(
        "open position, holding 2 other markets",
        cross_open,
        note=f"+{fmt_gas(cross_open.gas_used - opened.gas)} vs first open",
        traced=True,
    )
    cross_increase = net.trade(cross, 0, size)
    section.add(
        "increase position, holding 2 other markets",
        cross_increase,
        note=f"+{fmt_gas(cross_increase.gas_used - increased.gas)} vs increase "
        f"(≈{fmt_gas((cross_increase.gas_used - increased.gas) // 2)} per extra market held)",
        traced=True,
    )

    # LP vault, valued over three markets with open interest.
    lp2 = net.second_lp
    net.fund(lp2, usd(1_000_000), vault)
    section.add(
        "vault deposit (new LP)",
        net.later(lambda: vault.deposit(usd(500_000), lp2, sender=lp2)),
        traced=True,
    )
    section.add(
        "vault deposit (repeat)", net.later(lambda: vault.deposit(usd(500_000), lp2, sender=lp2))
    )
    # Redemptions are requested, then claimed after the vault's withdrawal delay (1 h).
    shares = vault.balanceOf(lp2)
    section.add(
        "vault request_redeem (all the shares)",
        net.later(lambda: vault.request_redeem(shares, sender=lp2)),
    )
    net.wait(vault.withdrawal_delay())
    section.add(
        "vault redeem (half the shares)",
        net.later(lambda: vault.redeem(shares // 2, lp2, lp2, sender=lp2)),
        traced=True,
    )
    section.add(
        "vault withdraw (assets)",
        net.later(lambda: vault.withdraw(usd(100_000), lp2, lp2, sender=lp2)),
    )

    # S9: one transmission per round carries the reporters' signed observations; the oracle
    # recovers each signer and publishes the median (the report-based oracle took one
    # transaction per reporter: 85,312 for the report that opened a round, 63,828 per re-write).
    transmissions = net.tick()
    section.add("oracle transmit (3 signed observations, median, new round)", transmissions[0], target=80_000,
                traced=True, note="replaces 3 reports (85,312 + 2 × 63,828)")
    wide = net.wide_transmissions()
    section.add(f"oracle transmit ({WIDE_REPORTERS} signed observations, median, new round)", wide[-1],
                note=f"{WIDE_REPORTERS} reporters, quorum {WIDE_QUORUM}")
    return section


def liquidation_benchmarks(net: SteadyMarkets, _sections: list[Section]) -> Section:
    """One liquidation (full and partial) and the extra cost of each account in a batch.

    The liquidated accounts are subaccounts of one owner: every subaccount has its own
    collateral and positions, so each costs what a separate owner would.
    """
    eng = net.engine
    section = Section("Liquidation")
    owner = net.second_lp
    market = net.market_ids[0]
    # (subaccount, collateral, BTC): 0 small (closed in full, into bad debt), 1 large (closed
    # in part), 2 small with equity left for the reward (closed in full), then a batch
    books = [(0, 7_700, "0.5"), (1, 32_000, "2"), (2, 9_500, "0.5")]
    books += [(3 + i, 16_000, "1") for i in range(BATCH_SIZE)]
    net.fund(owner, usd(sum(c for _, c, _ in books)), eng)
    for sub, collateral, size in books:
        eng.deposit(usd(collateral), sub, sender=owner)
        net.tick()
        net.next_block()
        delta = to_wad(size)
        eng.modify_position(market, delta, net.limit(0, delta), sub, sender=owner)
    # the BTC index falls 1 % a heartbeat to 10 % below, then holds for a mark window
    start = net.prices[0]
    while net.prices[0] > start * 0.90:
        net.prices[0] *= 0.99
        net.tick()
    for _ in range(MARK_WINDOW // TICK + 1):
        net.tick()
    # The keeper holds collateral already, as after its first liquidation: a liquidator's
    # very first reward writes a fresh slot (+20,000 gas, once per liquidator).
    net.fund(net.keeper, usd(1), eng)
    eng.deposit(usd(1), 0, sender=net.keeper)
    refs = [(owner.address, sub) for sub, _, _ in books]
    statuses = net.protocol.lens.account_statuses(refs)
    if not all(status.liquidatable for status in statuses):
        raise click.ClickException("liquidation benchmark: the price drop left an account healthy")

    def liquidation(operation: str, subaccount: int, note: str) -> Row:
        row = section.add(
            operation,
            net.later(lambda: eng.liquidate(owner, subaccount, sender=net.keeper)),
            TARGETS["liquidate"],
            note=note,
            traced=True,
        )
        row.note += liquidation_outcome(eng, row.receipt)
        return row

    single = liquidation(
        "liquidate one-position account (closed in full)", 0,
        "75,000 notional, below the partial-liquidation threshold",
    )
    liquidation(
        "liquidate one-position account (closed in part)", 1,
        "300,000 notional: just enough closes to reach 1.25 × maintenance",
    )
    liquidation("liquidate one-position account (closed in full, reward paid)", 2, "75,000 notional")
    batch = net.later(lambda: eng.liquidate_many(refs[3:], sender=net.keeper))
    section.add(f"liquidate_many, {BATCH_SIZE} one-position accounts", batch)
    one_in_batch = net.later(lambda: eng.liquidate_many(refs[1:2], sender=net.keeper))
    extra = (batch.gas_used - single.gas) // (BATCH_SIZE - 1)
    section.rows.append(
        Row(
            "extra gas per account in a batch",
            extra,
            TARGETS["batch_extra"],
            note=f"(batch of {BATCH_SIZE} − single full liquidation) / {BATCH_SIZE - 1}",
        )
    )
    section.add("liquidate_many over an account no longer liquidatable", one_in_batch, note="skipped")
    return section


def liquidation_outcome(engine, receipt) -> str:
    """What the liquidation paid, from its events (a reward credit and bad debt cost gas)."""
    (liquidation,) = receipt.events.filter(engine.Liquidation)
    shortfall = sum(event.shortfall for event in receipt.events.filter(engine.BadDebt))
    if shortfall:
        return f"; the loss exceeded the collateral: bad debt {shortfall / 10**18:,.2f}, reward {liquidation.reward / 10**18:,.2f}"
    return f"; reward {liquidation.reward / 10**18:,.2f} credited to the liquidator"


def order_book_benchmarks(_net: SteadyMarkets, _sections: list[Section]) -> Section:
    """Commit, execute and cancel on the OrderBook, over its own protocol and market.

    One market without atomic trading over a devnet oracle (M = I), a seeded LP vault and two
    funded traders, each with an order already committed so that no measured commit is the
    book's first write. Every execution fills at the first oracle round after the commit (or
    the arming), published in the block before: the fill-round search reads two rounds.
    """
    from ape import accounts, chain, project

    admin, trader, other, lp, keeper, reporter = (
        accounts.test_accounts[i]
        for i in (roles.ADMIN, *roles.TRADERS, roles.LP, roles.KEEPER, roles.REPORTERS[0]))
    protocol = deploy_protocol(project, admin)
    feed = deploy_oracle(project, admin, [reporter])
    transmit_round(feed, 150_000 * 10**8, [reporter], reporter)
    market = add_market(protocol, admin, MarketConfig(oracle=feed.address, mark_window=0, max_price_age=3600))
    book = deploy_order_book(
        protocol,
        admin,
        project=project,
        settings={market: OrderSettings(min_keeper_fee=Decimal(1))},
    )
    token, engine = protocol.token, protocol.engine
    token.mint(lp, 10**13, sender=admin)
    token.approve(protocol.vault, 10**13, sender=lp)
    protocol.vault.deposit(10**13, lp, sender=lp)
    for account in (trader, other):
        token.mint(account, 10**12, sender=admin)
        token.approve(engine, 10**11, sender=account)
        engine.deposit(10**11, sender=account)
        token.approve(book, 10**11, sender=account)

    def commit(account, kind, size, acceptable, trigger=0, lifetime=600, **flags):
        expiry = chain.pending_timestamp + lifetime
        return book.commit_order(market, int(kind), to_wad(size), acceptable, to_wad(trigger), expiry, ORDER_KEEPER_FEE,
                                 flags.get("reduce_only", False), flags.get("post_only", False), False,
                                 sender=account)

    def fresh_price(value=150_000):
        chain.mine(deltatime=ORDER_ROUND_GAP)
        transmit_round(feed, value * 10**8, [reporter], reporter)

    def order_id(receipt):
        return receipt.events.filter(book.OrderCommitted)[0].order_id

    rows = []
    commit(other, OrderKind.LIMIT, 1, to_wad(100_000))  # the book's counters are warm from here on
    first = commit(trader, OrderKind.MARKET, 1, ORDER_ANY_BUY)
    rows.append(("commit market order", first.gas_used, "keeper fee pulled in, 3 storage words"))
    fresh_price()
    executed = book.execute(order_id(first), sender=keeper)
    rows.append(("execute market order (open)", executed.gas_used, "the market's first trade: its aggregates are fresh writes"))
    stop = commit(trader, OrderKind.STOP_LOSS, -1, 0, trigger=140_000)
    rows.append(("commit stop-loss", stop.gas_used, "reads the position it protects"))
    limit = commit(trader, OrderKind.LIMIT, -1, to_wad(140_000), lifetime=86400)
    rows.append(("commit limit order", limit.gas_used, ""))
    cancelled = book.cancel(order_id(limit), sender=trader)
    rows.append(("cancel (owner, fee refunded)", cancelled.gas_used, "S8: refused while the order is executable, so it reads the round"))
    fresh_price(139_000)
    armed = book.execute(order_id(stop), sender=keeper)
    rows.append(("arm stop-loss", armed.gas_used, "trigger on the index at the latest round; no fee"))
    fresh_price(139_000)
    triggered = book.execute(order_id(stop), sender=keeper)
    rows.append(("execute stop-loss (close)", triggered.gas_used, "at the first round after the arming"))

    batch = [order_id(commit(acc, OrderKind.MARKET, size, ORDER_ANY_BUY if size > 0 else 0))
             for acc, size in ((trader, 1), (other, -1), (trader, 1), (other, -1), (trader, 1))]
    fresh_price()
    many = book.execute_many(batch, sender=keeper)
    rows.append((f"execute_many, {len(batch)} market orders", many.gas_used,
                 f"{many.gas_used // len(batch):,} per order; one fee transfer"))
    waiting = [order_id(commit(trader, OrderKind.LIMIT, 1, to_wad(100_000))) for _ in range(5)]
    fresh_price()
    skipped = book.execute_many(waiting, sender=keeper)
    rows.append((f"execute_many, {len(waiting)} limit orders not due", skipped.gas_used, "all skipped (OrderSkipped)"))
    expiring = commit(trader, OrderKind.MARKET, 1, ORDER_ANY_BUY, lifetime=60)
    chain.mine(deltatime=60)
    expired = book.cancel(order_id(expiring), sender=keeper)
    rows.append(("cancel expired (anyone, fee refunded to the owner)", expired.gas_used, ""))
    section = Section("Orders (OrderBook)")
    section.intro.append(
        "Its own protocol and market (no atomic trading, M = I). `execute` includes the engine's "
        "trade (see the core operations) and the keeper-fee transfer."
    )
    section.rows = [Row(name, gas, note=note) for name, gas, note in rows]
    return section


def setup_lines(network_choice: str) -> list[str]:
    return [
        (
            f"Local anvil through ape-foundry (`{network_choice}`): Engine, LiquidityVault and three markets "
            f"(BTC, ETH, SOL) with `MarketConfig` defaults, so the mark is the oracle TWAP over {MARK_WINDOW} s "
            "and max_price_age is 60 s."
        ),
        (
            f"Each market's PriceOracle has 3 reporters, quorum {QUORUM}, max_report_age {MAX_REPORT_AGE} s; every "
            f"{TICK} s (all markets in the same second) the three sign an observation each and one transmits them "
            f"(S9), for {HISTORY_SECONDS // 60} minutes before the first measurement and between all measurements. "
            f"The {WIDE_REPORTERS}-observation row uses a separate BTC oracle with {WIDE_REPORTERS} reporters, "
            f"quorum {WIDE_QUORUM}."
        ),
        (
            "LP vault seeded with 10,000,000 dUSD; two background accounts hold a long and a larger short in every "
            "market. Trades are ≈150,000 of notional (1 BTC) on 350,000 of collateral."
        ),
        (
            f"Every measured transaction runs {TICK} s after the previous one, so each trade also accrues funding "
            "and feeds the price breaker: the realistic path, not the cheapest (same-block) one."
        ),
        (
            "Liquidations: the BTC index falls 10 % and holds for a mark window; the keeper's subaccount 0 "
            "already holds collateral, as after its first liquidation (a liquidator's very first reward "
            "writes a fresh slot: +20,000 gas once)."
        ),
    ]
