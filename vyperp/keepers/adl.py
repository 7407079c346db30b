"""Auto-deleveraging keeper: while `Engine.adl_eligible()`, closes the most profitable positions
just enough to make deleveraging ineligible again.

The engine allows `deleverage(market, owner, subaccount, size)` while the insurance fund is empty
and traders' net unrealized PnL `N` exceeds `r` (`adl_ratio`) times the vault's balance `V`; the
keeper chooses whom. Closing profit `u` at the mark realizes it from the vault, so `N` and `V`
both fall by `u`, and eligibility ends once

    N - u <= r * (V - u)   <=>   u >= (N - r*V) / (1 - r)        (r < 1)

One step, at the head block: sync the book from events; read eligibility, `N` (from every
market's skew, `cost_sum` and mark, as the engine sums it), `V` and `r` in one post; rank the
book's positions by unrealized PnL (the largest claims on the vault first), confirm the top ones
with `position_value` and `open_positions` at the same block (one post); plan full closes down
the ranking and a partial close of the last one so the closed profit reaches the target with a
small overshoot (`overshoot`, against rounding); check (`eth_call`), sign and send the planned
calls in one post. With `r >= 1` closing profit cannot restore the inequality, so the plan closes
the ranked positions in full, `max_positions` per step. The next step waits for these receipts,
then checks again: deleveraging continues until the engine says it is no longer eligible.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from vyperp.keepers.account_book import AccountBook, AccountKey, EventSource, _mul_floor
from vyperp.keepers.engine_reads import EngineReads, Head, TransactionSigner
from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.rpc import AbiEvents, AbiMethod, RetryableRpcError, RpcClient, node_url

WAD = 10**18
# Gas limit of one deleverage (one funding settlement, one position closed) with room to spare.
DELEVERAGE_GAS = 250_000


@dataclass(frozen=True)
class Deleverage:
    """One planned `deleverage` call and the profit it is expected to realize (18 decimals)."""

    key: AccountKey
    market_id: int
    size: int  # unsigned
    expected_profit: int


@dataclass
class AdlStep:
    block: int = 0
    eligible: bool = False
    target_profit: int = 0  # what must be closed to end eligibility (18 decimals)
    planned: tuple[Deleverage, ...] = ()
    sent: tuple[str, ...] = ()  # transaction hashes
    waiting: int = 0  # transactions of earlier steps still without a receipt
    retryable_error: str | None = None

    def describe(self) -> str | None:
        """One line for logs and status files; None when the step had nothing to do."""
        if self.retryable_error:
            return f"node unavailable at block {self.block}: {self.retryable_error}"
        if self.sent:
            return f"block {self.block}: deleveraging {len(self.sent)} positions"
        return None


class AdlKeeper:
    """Deleverages the most profitable positions while the engine allows it."""

    def __init__(self, engine, lens, sender, *, rpc: RpcClient, deploy_block: int, chain_id: int,
                 max_positions: int = 16, overshoot: Decimal = Decimal("0.01"),
                 metrics: KeeperMetrics | None = None):
        self.rpc = rpc
        self.reads = EngineReads(rpc, engine, lens)
        self.signer = TransactionSigner(sender, chain_id)
        self.events = EventSource(rpc, self.reads.engine_address, engine.contract_type)
        self.deleveraged_events = AbiEvents(engine.contract_type, ("Deleveraged",))
        self.book = AccountBook(self.reads.engine_address, self.reads.read_collateral_scale(),
                                deploy_block)
        engine_type = engine.contract_type
        self.skew = AbiMethod.of(engine_type, "skew")
        self.cost_sum = AbiMethod.of(engine_type, "cost_sum")
        self.vault_balance = AbiMethod.of(engine_type, "vault_balance")
        self.liquidation_params = AbiMethod.of(engine_type, "liquidation_params")
        self.position_value = AbiMethod.of(engine_type, "position_value")
        self.open_positions = AbiMethod.of(engine_type, "open_positions")
        self.deleverage = AbiMethod.of(engine_type, "deleverage")
        self.max_positions = max_positions
        self.overshoot = overshoot
        self.in_flight: set[str] = set()
        self.metrics = metrics or KeeperMetrics("adl")

    @classmethod
    def from_deployment(cls, project, deployment, sender, *, provider=None, **options) -> AdlKeeper:
        """An ADL keeper over a manifest (`vyperp.deployment.Deployment`) on Ape's node."""
        if provider is None:
            from ape import networks

            provider = networks.provider
        contracts = deployment.contracts(project)
        return cls(contracts.engine, contracts.lens, sender, rpc=RpcClient(node_url(provider)),
                   deploy_block=deployment.deploy_block, chain_id=deployment.chain_id, **options)

    def step(self) -> AdlStep:
        report = AdlStep()
        with self.metrics.measure():
            try:
                self._step(report)
            except RetryableRpcError as error:
                report.retryable_error = str(error)
                self.metrics.count("retryable_errors")
                self.metrics.log.warning("node unavailable, retrying next step: %s", error)
        return report

    def _step(self, report: AdlStep) -> None:
        head = self.reads.head(self.signer.address)
        report.block = head.number
        self.events.sync(self.book, head.number)
        self._collect_receipts()
        report.waiting = len(self.in_flight)
        if self.in_flight:
            return
        report.eligible = self.reads.is_adl_eligible(head.number)
        if not report.eligible:
            return
        target, ratio = self._target(head)
        report.target_profit = target
        plan = self._plan(head, target, ratio)
        report.planned = tuple(plan)
        report.sent = tuple(self._send(plan, head))

    # ---- planning ----

    def _target(self, head: Head) -> tuple[int, int]:
        """Profit to close, and adl_ratio, from the engine's own aggregates at the head block."""
        engine, tag = self.reads.engine_address, hex(head.number)
        requests = [self.vault_balance.call_request(engine, block=tag),
                    self.liquidation_params.call_request(engine, block=tag)]
        for market_id in range(head.market_count):
            requests += [self.skew.call_request(engine, market_id, block=tag),
                         self.cost_sum.call_request(engine, market_id, block=tag),
                         self.reads.mark_price.call_request(engine, market_id, block=tag)]
        results = self.rpc.batch(requests)
        vault = self.vault_balance.decode(results[0].unwrap())[0]
        ratio = self.liquidation_params.decode(results[1].unwrap())[0][-1]  # adl_ratio, last field
        net = 0
        for market_id in range(head.market_count):
            skew, cost, mark = results[2 + 3 * market_id : 5 + 3 * market_id]
            skew_value = self.skew.decode(skew.unwrap())[0]
            cost_value = self.cost_sum.decode(cost.unwrap())[0]
            if skew_value == 0 and cost_value == 0:
                continue
            mark_value = self.reads.mark_price.decode(mark.unwrap())[0]
            net += _mul_floor(skew_value, mark_value) - cost_value
        excess = net - _mul_floor(max(vault, 0), ratio)
        if ratio >= WAD:
            return excess, ratio
        return -((-excess * WAD) // (WAD - ratio)), ratio

    def _plan(self, head: Head, target: int, ratio: int) -> list[Deleverage]:
        quotes = self.reads.quotes(head.market_count, head.number)
        ranked = sorted(
            (p for p in self.book.positions()
             if quotes[p.market_id].mark is not None
             and _mul_floor(p.size, quotes[p.market_id].mark) > p.cost),
            key=lambda p: _mul_floor(p.size, quotes[p.market_id].mark) - p.cost,
            reverse=True,
        )[: self.max_positions]
        if not ranked:
            self.metrics.log.warning("eligible, but the book holds no profitable position")
            return []
        engine, tag = self.reads.engine_address, hex(head.number)
        results = self.rpc.batch([
            method.call_request(engine, p.key[0], p.key[1], p.market_id, block=tag)
            for p in ranked for method in (self.position_value, self.open_positions)
        ])
        confirmed = []
        for index, position in enumerate(ranked):
            pnl = self.position_value.decode(results[2 * index].unwrap())[0][0]
            size = self.open_positions.decode(results[2 * index + 1].unwrap())[0][0]
            if pnl > 0 and size != 0:
                confirmed.append((pnl, position, abs(size)))
        confirmed.sort(key=lambda item: item[0], reverse=True)

        goal = int(Decimal(target) * (1 + self.overshoot))
        plan, closed = [], 0
        for pnl, position, size in confirmed:
            if ratio < WAD and closed >= goal:
                break
            remaining = goal - closed
            if ratio >= WAD or pnl <= remaining:
                close = size
            else:  # the share of the position whose profit covers what remains, rounded up
                close = min(size, -((-size * remaining) // pnl))
            expected = pnl if close == size else pnl * close // size
            plan.append(Deleverage(position.key, position.market_id, close, expected))
            closed += expected
        return plan

    # ---- sending ----

    def _send(self, plan: list[Deleverage], head: Head) -> list[str]:
        calldata = [self.deleverage.calldata(d.market_id, d.key[0], d.key[1], d.size) for d in plan]
        prepared = self.signer.prepare(self.rpc, self.reads.engine_address, calldata, head,
                                       [DELEVERAGE_GAS] * len(calldata))
        signed = []
        for planned, transaction in zip(plan, prepared, strict=True):
            if isinstance(transaction, Exception):
                self.metrics.count("reverted")
                self.metrics.log.error("deleverage of %s in market %d refused: %s", planned.key,
                                       planned.market_id, transaction)
            else:
                signed.append(transaction)
        self.in_flight.update(tx.hash for tx in signed)
        for transaction, refusal in zip(signed, self.signer.post(self.rpc, signed), strict=True):
            if refusal is not None:
                self.in_flight.discard(transaction.hash)
                self.metrics.count("retryable_errors" if isinstance(refusal, RetryableRpcError)
                                   else "reverted")
                self.metrics.log.warning("deleverage not sent: %s", refusal)
        sent = [tx.hash for tx in signed if tx.hash in self.in_flight]
        self.metrics.count("transactions_sent", len(sent))
        if sent:
            profit = Decimal(sum(d.expected_profit for d in plan)) / WAD
            self.metrics.log.info("deleveraging %d positions for %s of profit at block %d",
                                  len(sent), f"{profit:,.2f}", head.number)
        return sent

    def _collect_receipts(self) -> None:
        if not self.in_flight:
            return
        hashes = sorted(self.in_flight)
        results = self.rpc.batch([
            request for h in hashes
            for request in (("eth_getTransactionReceipt", [h]), ("eth_getTransactionByHash", [h]))
        ])
        for index, tx_hash in enumerate(hashes):
            receipt = results[2 * index].unwrap()
            if receipt is None:
                if results[2 * index + 1].unwrap() is None:
                    self.in_flight.discard(tx_hash)
                    self.metrics.count("dropped")
                continue
            self.in_flight.discard(tx_hash)
            if int(receipt["status"], 16) != 1:
                # another keeper (or our own earlier call) may have ended eligibility first
                self.metrics.count("reverted")
                continue
            closed = [log for log in map(self.deleveraged_events.decode, receipt["logs"]) if log]
            self.metrics.handled(len(closed))
            self.metrics.count("deleveraged", len(closed))

