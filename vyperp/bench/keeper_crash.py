"""Keeper benchmark: how fast the liquidator finds and liquidates a crash's victims among N
accounts on anvil (`ape run keeper_benchmark`, which writes its block of docs/benchmarks.md).

Population. N distinct owner addresses, each with one BTC position opened by a real transaction.
Nothing is written to storage directly: the owners are impersonated (`anvil_autoImpersonateAccount`,
`anvil_setBalance` for gas), the funder deposits for each owner (`deposit(amount, 0, owner)`),
then each owner trades. Transactions go out as `eth_sendTransaction` in JSON-RPC batches of
`SETUP_BLOCK` with automine off, one `evm_mine` per batch; the block gas limit is raised for the
set-up and restored to 30,000,000 before the crash. 70 % of the owners are long and 30 % short,
with leverage spread evenly over 2x-9x; every account has 1,000 dUSD.

Node. Each size runs on its own fresh anvil (`vyperp.devnet.anvil.fresh_anvil`, on a free port),
attached to with Ape (ape-foundry attaches to an anvil already listening at its host). Ape's own anvil runs with
`--steps-tracing`, which made execution about five times slower here (200 accounts: set-up 1.2 s
against 0.2 s, one liquidate_many mined after 1.2 s against 0.3 s); a production node does not
trace.

Measure. The liquidator is built and synced before the crash (its cold start is reported
separately). The crash is one oracle report 10 % down. From the moment that report is sent, the
benchmark steps the keeper in a loop and records when the liquidatable set is known (the first
step's confirmation), when the first and the last `liquidate_many` are mined (an observer polls
receipts on its own connection, whose requests are not counted), and the keeper's JSON-RPC
requests and posts. It then checks the outcome: the accounts liquidated are exactly those the
lens found liquidatable at the crash block, and none is liquidatable afterwards.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import Decimal

from eth_utils import to_checksum_address

from vyperp import roles
from vyperp.chain import node_url
from vyperp.contracts import add_market, deploy_oracle, deploy_protocol
from vyperp.keepers.engine_reads import EngineReads
from vyperp.keepers.liquidator import ACCOUNT_GAS, BASE_GAS, POSITION_GAS, Liquidator
from vyperp.keepers.rpc import AbiMethod, RpcClient
from vyperp.oracle_signing import transmit_round
from vyperp.params import MarketConfig
from vyperp.units import WAD, to_wad

ORACLE_DECIMALS = 8
ENTRY_PRICE = 100_000
CRASH_PRICE = 90_000
COLLATERAL = 1_000  # dUSD per account
LONG_SHARE = 0.7
LEVERAGES = (2, 3, 4, 5, 6, 7, 8, 9)
SETUP_BLOCK = 1_000  # transactions per mined block during set-up
SETUP_GAS = 1_000_000  # gas limit per set-up transaction (a first trade uses over 300,000)
NORMAL_BLOCK_GAS = 30_000_000
FIRST_OWNER = 0x10_0000  # owners are the addresses FIRST_OWNER, FIRST_OWNER + 1, ...


@dataclass
class Population:
    owners: list[str]
    opened: int  # positions opened (successful trades)
    setup_seconds: float
    setup_requests: int


@dataclass
class CrashResult:
    accounts: int
    population: Population
    cold_start_seconds: float
    cold_start_requests: int
    book_events: int
    liquidatable: int
    candidates: int
    report_returned_s: float  # Ape's transmit() returned: the crash block is mined
    set_known_s: float
    crash_step: dict[str, float]  # the first step after the crash: seconds from its start
    first_mined_s: float | None
    last_mined_s: float | None
    transactions: int
    steps: int
    keeper_requests: int
    keeper_posts: int
    gas_per_account: float
    max_tx_gas: int
    exact: bool  # liquidated == liquidatable at the crash block, nothing liquidatable after
    harness_blocks: int  # blocks the observer mined for transactions left in anvil's pool


class CrashMarket:
    """The protocol and one BTC market deployed for the benchmark on a fresh anvil."""

    def __init__(self, project, accounts, provider):
        self.project = project
        test_accounts = accounts.test_accounts
        self.admin, self.lp, self.reporter, self.keeper = (
            test_accounts[roles.ADMIN], test_accounts[roles.LP], test_accounts[roles.REPORTERS[0]],
            test_accounts[roles.KEEPER])
        self.provider = provider
        self.rpc = RpcClient(node_url(provider), timeout=300)
        self.protocol = deploy_protocol(project, self.admin)
        self.deploy_block = provider.get_block("latest").number
        self.oracle = deploy_oracle(project, self.admin, [self.reporter], max_report_age=86_400)
        self.report(ENTRY_PRICE)
        config = MarketConfig(oracle=self.oracle.address, mark_window=0, max_price_age=3600,
                              skew_scale=10_000_000 * WAD)
        self.market = add_market(self.protocol, self.admin, config, atomic_trading=True)
        token, vault = self.protocol.token, self.protocol.vault
        token.mint(self.lp, 10_000_000 * 10**6, sender=self.admin)
        token.approve(vault, 10_000_000 * 10**6, sender=self.lp)
        vault.deposit(10_000_000 * 10**6, self.lp, sender=self.lp)

    def report(self, price: int):
        """One round at `price`, transmitted by the single reporter (quorum 1); a second later
        than the latest round when anvil would mine it in the same second (one round per
        timestamp)."""
        latest = int(self.oracle.latestTimestamp())
        if int(self.oracle.latestRound()) != 0 and self.provider.get_block("pending").timestamp <= latest:
            self.provider.set_timestamp(latest + 1)
        # an explicit limit: Ape caches the block gas limit, which the set-up raises and restores
        return transmit_round(self.oracle, price * 10**ORACLE_DECIMALS, [self.reporter],
                              self.reporter, gas_limit=500_000)

    def open_accounts(self, count: int, seed: int = 1) -> Population:
        """`count` owners with one position each, by real transactions in mined batches."""
        started, requests_before = time.perf_counter(), self.rpc.requests_sent
        engine, token = self.protocol.engine, self.protocol.token
        rng = random.Random(seed)
        owners = [to_checksum_address(f"0x{FIRST_OWNER + i:040x}") for i in range(count)]
        units = COLLATERAL * 10**6
        token.mint(self.admin, units * count, sender=self.admin)
        token.approve(engine, units * count, sender=self.admin)

        deposit = AbiMethod.of(engine.contract_type, "deposit", arity=3)
        trade = AbiMethod.of(engine.contract_type, "modify_position", arity=3)
        self.rpc.call("anvil_autoImpersonateAccount", [True])
        self.rpc.batch([("anvil_setBalance", [owner, hex(10**20)]) for owner in owners])
        admin = str(self.admin.address)
        nonce = int(self.rpc.call("eth_getTransactionCount", [admin, "latest"]), 16)
        deposits = [
            {"from": admin, "to": str(engine.address), "nonce": hex(nonce + i),
             "gas": hex(SETUP_GAS), "data": deposit.calldata(units, 0, owner)}
            for i, owner in enumerate(owners)
        ]
        trades = []
        for owner in owners:
            side = 1 if rng.random() < LONG_SHARE else -1
            leverage = LEVERAGES[rng.randrange(len(LEVERAGES))]
            size = to_wad(Decimal(leverage * COLLATERAL) / ENTRY_PRICE)
            limit = 2**256 - 1 if side > 0 else 0  # a buy's limit is a ceiling, a sell's a floor
            trades.append({"from": owner, "to": str(engine.address), "gas": hex(SETUP_GAS),
                           "data": trade.calldata(self.market, side * size, limit)})
        self.rpc.call("evm_setAutomine", [False])
        self.rpc.call("evm_setBlockGasLimit", [hex(SETUP_BLOCK * SETUP_GAS)])
        try:
            receipts_ok = 0
            for batch in (deposits, trades):
                for start in range(0, len(batch), SETUP_BLOCK):
                    chunk = batch[start : start + SETUP_BLOCK]
                    hashes = [r.unwrap() for r in self.rpc.batch(
                        [("eth_sendTransaction", [tx]) for tx in chunk])]
                    self.rpc.call("evm_mine", [])
                    if batch is trades:
                        receipts = self.rpc.batch(
                            [("eth_getTransactionReceipt", [h]) for h in hashes])
                        receipts_ok += sum(int(r.unwrap()["status"], 16) for r in receipts)
        finally:
            self.rpc.call("evm_setBlockGasLimit", [hex(NORMAL_BLOCK_GAS)])
            self.rpc.call("evm_setAutomine", [True])
            self.rpc.call("anvil_autoImpersonateAccount", [False])
        return Population(owners, receipts_ok, time.perf_counter() - started,
                          self.rpc.requests_sent - requests_before)


def run_crash(project, accounts, provider, count: int, *, seed: int = 1) -> CrashResult:
    """Deploys, opens `count` accounts, crashes the price and measures the liquidator."""
    market = CrashMarket(project, accounts, provider)
    population = market.open_accounts(count, seed)
    protocol = market.protocol
    # the clock moved while the set-up ran: a fresh report keeps the entry price usable
    market.report(ENTRY_PRICE)

    keeper_rpc = RpcClient(node_url(provider))
    cold = time.perf_counter()
    liquidator = Liquidator(protocol.engine, protocol.lens, market.keeper, rpc=keeper_rpc,
                            deploy_block=market.deploy_block, chain_id=provider.chain_id)
    first = liquidator.step()
    cold_seconds = time.perf_counter() - cold
    cold_requests = keeper_rpc.requests_sent
    assert first.candidates == 0, "accounts liquidatable before the crash"

    observer = RpcClient(node_url(provider))
    requests_before, posts_before = keeper_rpc.requests_sent, keeper_rpc.posts
    crash_sent = time.perf_counter()
    crash_block = market.report(CRASH_PRICE).block_number
    report_returned = time.perf_counter() - crash_sent
    steps, set_known, candidates, crash_step = [], None, 0, {}
    mined_at: dict[str, float] = {}
    pending: set[str] = set()
    harness_blocks = 0
    deadline = crash_sent + 120
    while time.perf_counter() < deadline:
        step = liquidator.step()
        steps.append(step)
        if set_known is None and step.block >= crash_block:
            # known once a step has seen the crash block: confirmed, or nothing to confirm
            set_known = (step.confirmed_at or time.perf_counter()) - crash_sent
            candidates, crash_step = step.candidates, step.timings
        pending.update(flight.hash for flight in step.sent)
        harness_blocks += _observe(observer, pending, mined_at)
        settled = not step.sent and not liquidator.in_flight and step.candidates == 0
        if set_known is not None and settled:
            break
    requests = keeper_rpc.requests_sent - requests_before
    posts = keeper_rpc.posts - posts_before

    everyone = [(owner, 0) for owner in population.owners]
    reads = EngineReads(observer, protocol.engine, protocol.lens)
    before, _ = reads.statuses(everyone, crash_block)
    after, _ = reads.statuses(everyone, observer_block(observer))
    doomed = {s.key for s in before if s.liquidatable}
    liquidated = {key for step in steps for key in step.liquidated}
    gas, accounts_sent = _gas(observer, mined_at)
    return CrashResult(
        accounts=count, population=population, cold_start_seconds=cold_seconds,
        cold_start_requests=cold_requests, book_events=liquidator.book.events_applied,
        liquidatable=len(doomed), candidates=candidates, report_returned_s=report_returned,
        set_known_s=set_known or float("nan"), crash_step=crash_step,
        first_mined_s=min(mined_at.values()) - crash_sent if mined_at else None,
        last_mined_s=max(mined_at.values()) - crash_sent if mined_at else None,
        transactions=len(mined_at), steps=len(steps), keeper_requests=requests,
        keeper_posts=posts, gas_per_account=gas / max(accounts_sent, 1),
        max_tx_gas=liquidator.max_tx_gas,
        exact=liquidated == doomed and not any(s.liquidatable for s in after),
        harness_blocks=harness_blocks,
    )


def _observe(observer: RpcClient, pending: set[str], mined_at: dict[str, float],
             timeout: float = 60.0) -> int:
    """Marks the wall time at which each sent transaction is first seen mined; returns how
    many blocks it had to mine itself.

    Anvil's automine mines one block per arriving transaction, filled from its pool up to the
    block gas limit. When a post of many transactions arrives faster than that, the last block
    leaves some in the pool, and nothing mines them until another transaction arrives (a live
    chain puts them in its next block). So when transactions wait in the pool and no block came
    since the last poll, the observer mines one (`evm_mine`), as the next block would.
    """
    deadline = time.perf_counter() + timeout
    nudges, last_block = 0, None
    while pending:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{len(pending)} liquidations not mined after {timeout} s")
        hashes = sorted(pending)
        results = observer.batch(
            [("eth_getTransactionReceipt", [h]) for h in hashes]
            + [("eth_blockNumber", []), ("txpool_status", [])]
        )
        now = time.perf_counter()
        for tx_hash, result in zip(hashes, results, strict=False):
            if result.value is not None:
                mined_at[tx_hash] = now
                pending.discard(tx_hash)
        block, pool = results[-2].unwrap(), results[-1].unwrap()
        if pending and block == last_block and int(pool["pending"], 16) > 0:
            observer.call("evm_mine", [])
            nudges += 1
        last_block = block
        if pending:
            time.sleep(0.005)
    return nudges


def _gas(observer: RpcClient, mined_at: dict[str, float]) -> tuple[int, int]:
    """Gas used by the liquidations and the accounts they covered."""
    receipts = [r.unwrap() for r in observer.batch(
        [("eth_getTransactionReceipt", [h]) for h in mined_at])]
    transactions = [r.unwrap() for r in observer.batch(
        [("eth_getTransactionByHash", [h]) for h in mined_at])]
    gas = sum(int(r["gasUsed"], 16) for r in receipts)
    # liquidate_many((address,uint256)[]): the array length is the third 32-byte word
    accounts = sum(int(t["input"][2 + 8 + 64 : 2 + 8 + 128], 16) for t in transactions)
    return gas, accounts


def observer_block(observer: RpcClient) -> int:
    return int(observer.call("eth_blockNumber"), 16)


def render_markdown(results: list[CrashResult], environment: str) -> str:
    lines = [
        "## Keeper benchmark: liquidations after a crash",
        "",
        "Generated by `ape run keeper_benchmark` (vyperp/bench/keeper_crash.py describes the "
        "set-up).",
        f"{environment}",
        "",
        "Each run: a fresh anvil, N owners with one BTC position each (1,000 dUSD, 70 % long, "
        "leverage 2x-9x), opened by real transactions; then one oracle report 10 % down "
        f"({ENTRY_PRICE:,} to {CRASH_PRICE:,}). Times are wall-clock seconds from sending that "
        "report; the keeper steps in a loop (in production: on every block). Targets at 10,000 "
        "accounts (issue #4): the liquidatable set known within 1 s of the price update, all "
        "of it liquidated within 30 s.",
        "",
        "| accounts | liquidatable | set known (s) | first liquidation mined (s) | last mined (s) "
        "| liquidate_many txs | blocks mined by the harness | keeper steps "
        "| keeper RPC requests (posts) | exact |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.accounts:,} | {r.liquidatable:,} | {r.set_known_s:.3f} | {_s(r.first_mined_s)} "
            f"| {_s(r.last_mined_s)} | {r.transactions} | {r.harness_blocks} | {r.steps} "
            f"| {r.keeper_requests:,} "
            f"({r.keeper_posts}) | {'yes' if r.exact else 'NO'} |")
    lines += [
        "",
        "Inside the first step after the crash (seconds from its start): synced the crash "
        "block's events, valued every account locally, confirmed the candidates on chain, "
        "checked, signed and sent every batch.",
        "",
        "| accounts | crash report mined (Ape returned, s) | synced | valued | confirmed | sent |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r.crash_step
        lines.append(
            f"| {r.accounts:,} | {r.report_returned_s:.3f} | {_s(t.get('synced'))} "
            f"| {_s(t.get('valued'))} | {_s(t.get('confirmed'))} | {_s(t.get('sent'))} |")
    lines += [
        "",
        "| accounts | positions opened | set-up (s) | set-up RPC requests | keeper cold start: "
        "book from events (s) | cold-start requests | book events | candidates confirmed "
        "| gas per liquidated account |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.accounts:,} | {r.population.opened:,} | {r.population.setup_seconds:.1f} "
            f"| {r.population.setup_requests:,} | {r.cold_start_seconds:.2f} "
            f"| {r.cold_start_requests:,} | {r.book_events:,} | {r.candidates:,} "
            f"| {r.gas_per_account:,.0f} |")
    lines += [
        "",
        "- *set known*: the keeper has synced the crash block, valued every account from its "
        "book, and confirmed the candidates with `EngineLens.account_statuses` (500 per call, "
        "all calls in one post).",
        "- *gas per liquidated account* is gas used, after the refunds for cleared storage; "
        "the gas *limit* a batch needs is higher, since refunds are paid only after execution. "
        "Each closed position settles its funding in the same write as its close, so the "
        "figure does not depend on how long ago funding last accrued.",
        "- *keeper RPC requests* count JSON-RPC requests from the crash to the end, all in "
        "batched posts: per step one post for the head (block, gas price, nonce), one for the "
        "market count, one `eth_getLogs`, one for quotes and receipts, one for the statuses, "
        "one for the `eth_call` checks of all batches, one for the raw transactions.",
        "- *set-up*: owners impersonated, deposits and trades as `eth_sendTransaction` in "
        "batches of 1,000 per mined block (automine off), block gas limit raised for the "
        "set-up only; no storage is written directly.",
        "- *exact*: the accounts liquidated are exactly those the lens reports liquidatable at "
        "the crash block, and none is liquidatable at the end.",
        f"- Batches: at most 64 accounts (`MAX_LIQUIDATION_BATCH`) and {results[0].max_tx_gas:,} "
        "gas per `liquidate_many`; the gas limit is the keeper's model ("
        f"{ACCOUNT_GAS:,} per account and {POSITION_GAS:,} per position, plus {BASE_GAS:,}), "
        "each batch is checked once with `eth_call`, then "
        "all of a step's batches are signed and sent in one post. Anvil automines a block per "
        "arriving transaction, filled from its pool up to the block gas limit; transactions "
        "that arrive faster than that and are left in the pool wait for the next arrival, so "
        "the observer mines a block (`evm_mine`) when they wait and no block came since its "
        "last poll, as a live chain's next block would (*blocks mined by the harness*).",
        "",
    ]
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
