"""Auto-deleveraging keeper: while `Engine.adl_eligible()`, closes the most profitable positions
just enough to bring traders' profit back under the engine's `adl_target`.

The engine allows `deleverage(market, owner, subaccount, size)` once traders' net unrealized PnL
`N` exceeds `max_pnl_factor` (`f`) times the vault's balance `V`, and then while it exceeds
`adl_target` (`r`) times it; the keeper chooses whom, among accounts at or above maintenance
margin (rule S11: the engine refuses the others, and the keeper stops planning a position the
engine refused). Closing profit `u` in market `m` lowers `N` by `u`, and the vault pays it under
the counterparty cap (rule S2): `u` when the market's net profit `P_m <= f*V`, else
`u * f*V / P_m`. So the vault falls by less than `u`, and the keeper plans with that rule
rather than a closed form: it walks the ranking, closing a position in full while the ratio
stays above `r` afterwards, and the last one partially (the smallest size, found by bisection,
that reaches `N' <= r * V'`, plus `overshoot` against rounding). When even closing every ranked
position would not reach `r`, the plan closes them all, `max_positions` per step.

One step, at the head block: sync the book from events; read eligibility, every market's skew,
`cost_sum` and mark, `V`, `f` and `r` in one post; rank the book's positions by unrealized PnL
(the largest claims on the vault first), confirm the top ones with `position_value` and
`open_positions` at the same block (one post); plan; check (`eth_call`), sign and send the
planned calls in one post. The next step waits for these receipts, then checks again:
deleveraging continues until the engine says it is no longer eligible.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from vyperp.chain import node_url
from vyperp.keepers.account_book import AccountBook, AccountKey, EventSource, _mul_floor
from vyperp.keepers.engine_reads import (
    EngineReads, Head, TransactionSigner, retry_at_next_step,
)
from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.rpc import AbiEvents, AbiMethods, RetryableRpcError, RpcClient

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
class VaultState:
    """What the plan simulates: traders' net PnL `N`, the vault balance `V`, each market's net
    PnL, and the engine's `max_pnl_factor` and `adl_target` (all 18 decimals)."""

    traders_pnl: int
    vault: int
    market_pnl: dict[int, int]
    max_pnl_factor: int
    adl_target: int

    def above_target(self) -> bool:
        return self.traders_pnl > _mul_floor(max(self.vault, 0), self.adl_target)

    def after_close(self, market_id: int, profit: int) -> VaultState:
        """The state after closing `profit` of unrealized profit in `market_id`, paid as the
        engine pays it (rule S2)."""
        market = self.market_pnl.get(market_id, 0)
        cap = _mul_floor(max(self.vault, 0), self.max_pnl_factor)
        paid = profit if market <= cap else profit * cap // market
        return VaultState(self.traders_pnl - profit, self.vault - paid,
                          {**self.market_pnl, market_id: market - profit},
                          self.max_pnl_factor, self.adl_target)


@dataclass
class AdlStep:
    block: int = 0
    eligible: bool = False
    target_profit: int = 0  # the least profit the plan must close to end deleveraging (18 decimals)
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
        # what the plan reads (vault and market figures, positions) and the call it sends
        self.engine = AbiMethods(engine.contract_type, (
            "skew", "cost_sum", "mark_price", "vault_balance", "adl_target", "max_pnl_factor",
            "position_value", "open_positions", "deleverage",
        ))
        self.max_positions = max_positions
        self.overshoot = overshoot
        self.in_flight: set[str] = set()
        # positions whose deleverage the engine refused (an account below maintenance), skipped
        # while this deleveraging episode lasts
        self.refused: set[tuple[AccountKey, int]] = set()
        self.metrics = metrics or KeeperMetrics("adl")

    @classmethod
    def from_deployment(cls, project, deployment, sender, *, provider=None, **options) -> AdlKeeper:
        """An ADL keeper over a manifest (`vyperp.manifest.Deployment`) on Ape's node."""
        if provider is None:
            from ape import networks

            provider = networks.provider
        contracts = deployment.contracts(project)
        return cls(contracts.engine, contracts.lens, sender, rpc=RpcClient(node_url(provider)),
                   deploy_block=deployment.deploy_block, chain_id=deployment.chain_id, **options)

    def step(self) -> AdlStep:
        report = AdlStep()
        with self.metrics.measure(), retry_at_next_step(self.metrics, report):
            self._step(report)
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
            self.refused.clear()
            return
        plan, report.target_profit = self._plan(head, self._vault_state(head))
        report.planned = tuple(plan)
        report.sent = tuple(self._send(plan, head))

    # ---- planning ----

    def _vault_state(self, head: Head) -> VaultState:
        """`N`, `V`, each market's net PnL, `f` and `r` from the engine at the head block."""
        address, tag = self.reads.engine_address, hex(head.number)
        requests = [method.call_request(address, block=tag) for method in
                    (self.engine.vault_balance, self.engine.max_pnl_factor, self.engine.adl_target)]
        for market_id in range(head.market_count):
            requests += [method.call_request(address, market_id, block=tag) for method in
                         (self.engine.skew, self.engine.cost_sum, self.engine.mark_price)]
        results = self.rpc.batch(requests)
        market_pnl = {}
        for market_id in range(head.market_count):
            skew, cost, mark = results[3 + 3 * market_id : 6 + 3 * market_id]
            skew_value = self.engine.skew.decode(skew.unwrap())[0]
            cost_value = self.engine.cost_sum.decode(cost.unwrap())[0]
            if skew_value == 0 and cost_value == 0:
                continue
            mark_value = self.engine.mark_price.decode(mark.unwrap())[0]
            market_pnl[market_id] = _mul_floor(skew_value, mark_value) - cost_value
        return VaultState(
            traders_pnl=sum(market_pnl.values()),
            vault=self.engine.vault_balance.decode(results[0].unwrap())[0],
            market_pnl=market_pnl,
            max_pnl_factor=self.engine.max_pnl_factor.decode(results[1].unwrap())[0],
            adl_target=self.engine.adl_target.decode(results[2].unwrap())[0],
        )

    def _plan(self, head: Head, state: VaultState) -> tuple[list[Deleverage], int]:
        """The deleverage calls, and the least profit they must close (without `overshoot`)."""
        quotes = self.reads.quotes(head.market_count, head.number)
        ranked = sorted(
            (p for p in self.book.positions()
             if quotes[p.market_id].mark is not None
             and (p.key, p.market_id) not in self.refused
             and _mul_floor(p.size, quotes[p.market_id].mark) > p.cost),
            key=lambda p: _mul_floor(p.size, quotes[p.market_id].mark) - p.cost,
            reverse=True,
        )[: self.max_positions]
        if not ranked:
            self.metrics.log.warning("eligible, but the book holds no profitable position")
            return [], 0
        address, tag = self.reads.engine_address, hex(head.number)
        results = self.rpc.batch([
            method.call_request(address, p.key[0], p.key[1], p.market_id, block=tag)
            for p in ranked for method in (self.engine.position_value, self.engine.open_positions)
        ])
        confirmed = []
        for index, position in enumerate(ranked):
            pnl = self.engine.position_value.decode(results[2 * index].unwrap())[0][0]
            size = self.engine.open_positions.decode(results[2 * index + 1].unwrap())[0][0]
            if pnl > 0 and size != 0:
                confirmed.append((pnl, position, abs(size)))
        confirmed.sort(key=lambda item: item[0], reverse=True)

        plan, needed = [], 0
        for pnl, position, size in confirmed:
            if not state.above_target():
                break
            close, profit = size, pnl
            after = state.after_close(position.market_id, pnl)
            if not after.above_target():
                close = _least_size(state, position.market_id, pnl, size)
                profit = pnl * close // size
                needed += profit
                close = min(size, int(Decimal(close) * (1 + self.overshoot)))
                after = state.after_close(position.market_id, pnl * close // size)
            else:
                needed += profit
            plan.append(Deleverage(position.key, position.market_id, close,
                                   pnl if close == size else pnl * close // size))
            state = after
        return plan, needed

    # ---- sending ----

    def _send(self, plan: list[Deleverage], head: Head) -> list[str]:
        calldata = [self.engine.deleverage.calldata(d.market_id, d.key[0], d.key[1], d.size)
                    for d in plan]
        prepared = self.signer.prepare(self.rpc, self.reads.engine_address, calldata, head,
                                       [DELEVERAGE_GAS] * len(calldata))
        signed = []
        for planned, transaction in zip(plan, prepared, strict=True):
            if isinstance(transaction, Exception):
                self.refused.add((planned.key, planned.market_id))
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
            self.metrics.spent(int(receipt["gasUsed"], 16), int(receipt["effectiveGasPrice"], 16))
            if int(receipt["status"], 16) != 1:
                # another keeper (or our own earlier call) may have ended eligibility first
                self.metrics.count("reverted")
                continue
            closed = [log for log in map(self.deleveraged_events.decode, receipt["logs"]) if log]
            self.metrics.handled(len(closed))
            self.metrics.count("deleveraged", len(closed))


def _least_size(state: VaultState, market_id: int, pnl: int, size: int) -> int:
    """The smallest size of a position (profit `pnl` over `size`) whose close brings the state to
    or under the target; `size` itself does (the caller checked)."""
    low, high = 0, size
    while high - low > 1:
        middle = (low + high) // 2
        if state.after_close(market_id, pnl * middle // size).above_target():
            low = middle
        else:
            high = middle
    return high
