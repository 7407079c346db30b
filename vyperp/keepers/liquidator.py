"""Liquidator: finds every account below maintenance margin from a local book and liquidates them
in batch transactions.

One step, at the head block N:
1. sync the book with the engine's events through N (`eth_getLogs` in block ranges, one post);
2. read every market's mark, pending funding index and mmr at N, and the receipts of this
   keeper's transactions in flight (one post);
3. value every open account locally and rank them by equity / maintenance margin; the ones below
   `1 + candidate_margin` are candidates (the book is exact to the wei, the margin only absorbs a
   missed event);
4. confirm the candidates with `EngineLens.account_statuses` at N, 500 per call, one post;
5. pack the confirmed accounts, worst first, into `liquidate_many` transactions of at most 64
   accounts and `max_tx_gas` gas (gas per account is measured: docs/benchmarks-keepers.md),
   run each once with `eth_call` (a revert with a reason is final and shows here, before
   anything is spent), sign them and send them all in one post, without waiting for receipts.

In flight. An account in a sent transaction is not sent again until its receipt is in or the
node no longer knows the transaction (dropped, or the post never arrived). Another liquidator
may win the race: `liquidate_many` skips accounts it finds healthy or flat, so the receipt shows
no `Liquidation` from this keeper for them; they count as `already_liquidated` (handled), not as
errors.

Errors. A node that does not answer, or refuses a transaction for a reason a later attempt fixes
(nonce too low, underpriced), ends the step as `retryable`: counted, logged, nothing is lost, the
next step starts over from the checkpointed block. A transaction that reverts with a reason is
final: counted as `reverted`, its accounts freed for the next step to judge again.

Restarts. With `checkpoint_path`, the book (through its last block) and the transactions in flight
are saved after every step and loaded at start, so a restarted keeper reads events only from the
next block on and neither misses nor repeats a liquidation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from vyperp.chain import node_url
from vyperp.keepers.account_book import AccountBook, AccountKey, EventSource, Valuation
from vyperp.keepers.engine_reads import (
    EngineReads, Head, TransactionSigner, retry_at_next_step,
)
from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.rpc import AbiEvents, AbiMethod, RetryableRpcError, RpcClient

# Engine.MAX_LIQUIDATION_BATCH
MAX_BATCH_ACCOUNTS = 64
# Gas limit of liquidate_many: a fixed part, per account, per position closed. A one-position
# account needs about 105,000 of limit (eth_estimateGas of 64 on anvil: 6,682,572) though it uses
# 53,000 once storage refunds are counted (docs/benchmarks-keepers.md), plus ~20,000 per position
# when funding is to settle. These pack the batches and are each transaction's limit; a batch
# that still runs out of gas in its check is re-estimated (TransactionSigner.prepare).
BASE_GAS = 60_000
ACCOUNT_GAS = 70_000
POSITION_GAS = 70_000
DEFAULT_MAX_TX_GAS = 12_000_000  # well under anvil's 30M block: several batches per block


@dataclass
class InFlight:
    """A sent liquidate_many whose outcome is not known yet."""

    hash: str
    nonce: int
    accounts: tuple[AccountKey, ...]

    def to_json(self) -> dict:
        return {"hash": self.hash, "nonce": self.nonce,
                "accounts": [list(key) for key in self.accounts]}

    @classmethod
    def from_json(cls, data: dict) -> InFlight:
        return cls(hash=data["hash"], nonce=int(data["nonce"]),
                   accounts=tuple((owner, int(sub)) for owner, sub in data["accounts"]))


@dataclass
class LiquidationStep:
    """What one step saw and did, with wall-clock marks (perf_counter) for latency figures."""

    block: int = 0
    events_applied: int = 0
    candidates: int = 0
    confirmed: tuple[AccountKey, ...] = ()
    sent: tuple[InFlight, ...] = ()
    liquidated: tuple[AccountKey, ...] = ()  # receipts in this step: liquidated by this keeper
    already_liquidated: tuple[AccountKey, ...] = ()  # receipts in this step: skipped on chain
    retryable_error: str | None = None
    started_at: float = 0.0
    confirmed_at: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str | None:
        """One line for logs and status files; None when the step had nothing to do."""
        if self.retryable_error:
            return f"node unavailable at block {self.block}: {self.retryable_error}"
        parts = []
        if self.liquidated or self.already_liquidated:
            parts.append(f"{len(self.liquidated)} liquidated, {len(self.already_liquidated)} "
                         "already liquidated")
        if self.sent:
            accounts = sum(len(flight.accounts) for flight in self.sent)
            parts.append(f"sent {len(self.sent)} liquidate_many for {accounts} accounts")
        return f"block {self.block}: " + "; ".join(parts) if parts else None


class Liquidator:
    """Keeps a book of the engine's accounts and liquidates those below maintenance margin."""

    def __init__(self, engine, lens, sender, *, rpc: RpcClient, deploy_block: int,
                 chain_id: int, checkpoint_path: Path | None = None,
                 candidate_margin: float = 0.05, max_tx_gas: int = DEFAULT_MAX_TX_GAS,
                 log_range: int = 5_000, metrics: KeeperMetrics | None = None):
        self.rpc = rpc
        self.reads = EngineReads(rpc, engine, lens)
        self.signer = TransactionSigner(sender, chain_id)
        self.events = EventSource(rpc, self.reads.engine_address, engine.contract_type,
                                  range_size=log_range)
        self.liquidation_events = AbiEvents(engine.contract_type, ("Liquidation",))
        self.liquidate_many = AbiMethod.of(engine.contract_type, "liquidate_many")
        self.candidate_margin = candidate_margin
        self.max_tx_gas = max_tx_gas
        self.metrics = metrics or KeeperMetrics("liquidator")
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.in_flight: dict[str, InFlight] = {}
        self.deploy_block = deploy_block
        self.book = self._restore() or self._new_book()

    @classmethod
    def from_deployment(cls, project, deployment, sender, *, provider=None,
                        checkpoint_path: Path | None = None, **options) -> Liquidator:
        """A liquidator over a manifest (`vyperp.manifest.Deployment`) on Ape's connected node."""
        if provider is None:
            from ape import networks

            provider = networks.provider
        contracts = deployment.contracts(project)
        return cls(contracts.engine, contracts.lens, sender, rpc=RpcClient(node_url(provider)),
                   deploy_block=deployment.deploy_block, chain_id=deployment.chain_id,
                   checkpoint_path=checkpoint_path, **options)

    # ---- step ----

    def step(self) -> LiquidationStep:
        """Sync, value, confirm and liquidate once; see the module docstring."""
        report = LiquidationStep(started_at=time.perf_counter())
        in_flight_before = set(self.in_flight)
        with self.metrics.measure():
            with retry_at_next_step(self.metrics, report):
                self._step(report)
            # Blocks without events need no save: re-reading them after a restart finds nothing.
            if report.events_applied or set(self.in_flight) != in_flight_before:
                self._save()
        return report

    def _step(self, report: LiquidationStep) -> None:
        head = self.reads.head(self.signer.address)
        report.block = head.number
        if head.number < self.book.last_block:
            # the chain is shorter than the book (a devnet restarted without its state)
            self.metrics.log.warning("head %d is behind the book (%d): rebuilding from block %d",
                                     head.number, self.book.last_block, self.deploy_block)
            self.book, self.in_flight = self._new_book(), {}
        report.events_applied = self.events.sync(self.book, head.number)
        report.timings["synced"] = time.perf_counter() - report.started_at

        quote_requests = self.reads.quote_requests(head.market_count, head.number)
        receipt_requests = [(method, [flight.hash]) for flight in self.in_flight.values()
                            for method in ("eth_getTransactionReceipt", "eth_getTransactionByHash")]
        results = self.rpc.batch(quote_requests + receipt_requests)
        quotes = self.reads.decode_quotes(results[: len(quote_requests)], head.market_count)
        self._settle_in_flight(results[len(quote_requests):], report)

        busy = {key for flight in self.in_flight.values() for key in flight.accounts}
        valued, unpriced = self.book.value(quotes)
        if unpriced:
            self.metrics.count("unpriced_accounts", len(unpriced))
        candidates = sorted(
            (v for v in valued if v.key not in busy
             and v.equity < v.maintenance_margin * (1 + self.candidate_margin)),
            key=lambda v: v.margin_ratio,
        )
        report.candidates = len(candidates)
        report.timings["valued"] = time.perf_counter() - report.started_at
        if not candidates:
            return

        statuses, failures = self.reads.statuses([v.key for v in candidates], head.number)
        for failure in failures:
            self.metrics.count("confirm_failed")
            self.metrics.log.warning("lens refused a chunk of candidates: %s", failure)
        liquidatable = {status.key for status in statuses if status.liquidatable}
        confirmed = [v for v in candidates if v.key in liquidatable]
        report.confirmed = tuple(v.key for v in confirmed)
        report.confirmed_at = time.perf_counter()
        report.timings["confirmed"] = report.confirmed_at - report.started_at
        self.metrics.count("confirmed", len(confirmed))
        if confirmed:
            report.sent = tuple(self._send(self._pack(confirmed), head))
            report.timings["sent"] = time.perf_counter() - report.started_at

    # ---- sending ----

    def _pack(self, confirmed: list[Valuation]) -> list[list[Valuation]]:
        """Worst first, into batches that fit the account and gas bounds."""
        batches: list[list[Valuation]] = []
        gas = 0
        for valuation in confirmed:
            cost = _account_gas(valuation)
            full = not batches or len(batches[-1]) == MAX_BATCH_ACCOUNTS
            if full or gas + cost > self.max_tx_gas:
                batches.append([])
                gas = BASE_GAS
            batches[-1].append(valuation)
            gas += cost
        return batches

    def _send(self, batches: list[list[Valuation]], head: Head) -> list[InFlight]:
        calldata = [self.liquidate_many.calldata([list(v.key) for v in batch]) for batch in batches]
        limits = [BASE_GAS + sum(_account_gas(v) for v in batch) for batch in batches]
        prepared = self.signer.prepare(self.rpc, self.reads.engine_address, calldata, head, limits)
        signed = []
        for batch, transaction in zip(batches, prepared, strict=True):
            if isinstance(transaction, Exception):
                self._count_send_error(transaction, batch)
            else:
                signed.append((batch, transaction))
        # Recorded before the post: should the post fail midway, the receipts decide next step.
        flights = []
        for batch, transaction in signed:
            flight = InFlight(transaction.hash, transaction.nonce, tuple(v.key for v in batch))
            self.in_flight[flight.hash] = flight
            flights.append(flight)
        refusals = self.signer.post(self.rpc, [transaction for _, transaction in signed])
        for (batch, transaction), refusal in zip(signed, refusals, strict=True):
            if refusal is not None:
                del self.in_flight[transaction.hash]
                flights = [f for f in flights if f.hash != transaction.hash]
                self._count_send_error(refusal, batch)
        sent_accounts = sum(len(f.accounts) for f in flights)
        self.metrics.count("transactions_sent", len(flights))
        self.metrics.count("accounts_sent", sent_accounts)
        if flights:
            self.metrics.log.info("sent %d liquidate_many for %d accounts at block %d",
                                  len(flights), sent_accounts, head.number)
        return flights

    def _count_send_error(self, error: Exception, batch: list[Valuation]) -> None:
        if isinstance(error, RetryableRpcError):
            self.metrics.count("retryable_errors")
            self.metrics.log.warning("batch of %d not sent, retrying next step: %s", len(batch),
                                     error)
        else:
            self.metrics.count("reverted")
            self.metrics.log.error("batch of %d refused by the engine: %s", len(batch), error)

    # ---- outcomes ----

    def _settle_in_flight(self, results, report: LiquidationStep) -> None:
        liquidated, skipped = [], []
        flights = list(self.in_flight.values())
        for index, flight in enumerate(flights):
            receipt = results[2 * index].unwrap()
            if receipt is None:
                if results[2 * index + 1].unwrap() is None:  # the node never got it, or dropped it
                    del self.in_flight[flight.hash]
                    self.metrics.count("dropped")
                    self.metrics.log.warning("transaction %s unknown to the node: accounts freed",
                                             flight.hash)
                continue
            del self.in_flight[flight.hash]
            self.metrics.spent(int(receipt["gasUsed"], 16), int(receipt["effectiveGasPrice"], 16))
            if int(receipt["status"], 16) != 1:
                self.metrics.count("reverted")
                self.metrics.log.error("liquidate_many %s reverted in block %d (gas used %d)",
                                       flight.hash, int(receipt["blockNumber"], 16),
                                       int(receipt["gasUsed"], 16))
                continue
            ours = {
                (log.args["owner"], log.args["subaccount"])
                for log in map(self.liquidation_events.decode, self._engine_logs(receipt))
                if log is not None and log.args["liquidator"] == self.signer.address
            }
            liquidated += [key for key in flight.accounts if key in ours]
            skipped += [key for key in flight.accounts if key not in ours]
        report.liquidated, report.already_liquidated = tuple(liquidated), tuple(skipped)
        self.metrics.handled(len(liquidated) + len(skipped))
        self.metrics.count("liquidated", len(liquidated))
        self.metrics.count("already_liquidated", len(skipped))
        if liquidated or skipped:
            self.metrics.log.info("liquidated %d accounts; %d were already liquidated or healthy",
                                  len(liquidated), len(skipped))

    def _engine_logs(self, receipt: dict) -> list[dict]:
        engine = self.reads.engine_address.lower()
        return [log for log in receipt["logs"] if log["address"].lower() == engine]

    # ---- checkpoint ----

    def _new_book(self) -> AccountBook:
        return AccountBook(self.reads.engine_address, self.reads.read_collateral_scale(),
                           self.deploy_block)

    def _save(self) -> None:
        if self.checkpoint_path is None:
            return
        partial = self.checkpoint_path.with_suffix(".tmp")
        partial.write_text(json.dumps({
            "book": self.book.to_json(),
            "in_flight": [flight.to_json() for flight in self.in_flight.values()],
        }))
        partial.replace(self.checkpoint_path)

    def _restore(self) -> AccountBook | None:
        if self.checkpoint_path is None or not self.checkpoint_path.is_file():
            return None
        data = json.loads(self.checkpoint_path.read_text())
        if data["book"]["engine"] != self.reads.engine_address:
            self.metrics.log.warning("checkpoint %s is for another engine: rebuilding",
                                     self.checkpoint_path)
            return None
        self.in_flight = {f["hash"]: InFlight.from_json(f) for f in data["in_flight"]}
        book = AccountBook.from_json(data["book"])
        self.metrics.log.info("resumed from block %d with %d accounts", book.last_block,
                              len(book.accounts))
        return book


def _account_gas(valuation: Valuation) -> int:
    return ACCOUNT_GAS + POSITION_GAS * valuation.position_count
