"""Funding keeper: keeps every market's funding index fresh with one checkpoint transaction.

Cadence. A step reads, in one Multicall3 call, every market's `last_funding_time` and whether its
price is usable (`Engine.mark_price`: the index checks `checkpoint_funding` runs, and the outlier
halt of S4, under which the mark reverts as the checkpoint would). When some usable
market's funding is `interval` seconds old or older at the next block's time, one
`checkpoint_funding(ids)` transaction accrues *all* usable markets. Checkpointing the ones not yet
due keeps the markets in phase, so the keeper sends one transaction per interval rather than one
per market. The price is re-accruing a market a trade touched since: about 66,000 gas per market
(three markets: 199,153 gas on anvil, against 21,000 saved per transaction not sent). Run `step()`
often (every block): a checkpoint lands at the first step at or after the deadline.

Dead feeds and halts. `checkpoint_funding` reverts for the whole list when one market's index is
unusable (zero, stale, from the future) or halted (an outlier beyond the breaker move, until the
feed's rounds confirm it or the guardian resumes the market), so such markets are left out and counted as `skipped`: one dead
feed never blocks the others, and the market resumes at the first step after its feed recovers
(or the admin points it at a working oracle). A halted market whose feed has since published
`halt_confirmations` rounds that agree with the new price is confirmed first (`confirm_price`,
permissionless; preflighted, so nothing is sent until the rounds agree) and then checkpointed
with the others: a real move needs no guardian. Usability is read at the pending block, where the
checkpoint lands. Should a feed still go stale between the read and the transaction, the gas
estimate reverts before anything is sent: the step fails (counted as an error) and the next step
reads again.
"""

from __future__ import annotations

from dataclasses import dataclass

from vyperp.chain import ensure_multicall
from vyperp.keepers.metrics import KeeperMetrics

DEFAULT_INTERVAL = 60  # PROTOCOL.md: every market at least once a minute


@dataclass(frozen=True)
class MarketFunding:
    """What the keeper knows about one market at a step."""

    market_id: int
    last_funding_time: int
    usable: bool  # the engine can read its index now, and it is not an outlier (S4)
    halted: bool = False  # the index is an outlier awaiting confirmation or the guardian


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint transaction."""

    timestamp: int
    market_ids: tuple[int, ...]
    skipped: tuple[int, ...]  # unusable index: left out
    receipt: object


class FundingKeeper:
    """Checkpoints every usable market at least once per `interval` seconds of chain time."""

    def __init__(self, engine, sender, *, interval: int = DEFAULT_INTERVAL, chain=None,
                 metrics: KeeperMetrics | None = None):
        if chain is None:
            from ape import chain
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.engine = engine
        self.sender = sender
        self.interval = interval
        self.chain = chain
        self.metrics = metrics or KeeperMetrics("funding")
        ensure_multicall(chain.provider)

    def markets(self) -> list[MarketFunding]:
        """Every market's funding clock and whether its index is usable at the next block.

        One call to the engine and one multicall, however many markets.
        """
        from ape_ethereum.multicall import Call

        count = int(self.engine.market_count())
        if count == 0:
            return []
        call = Call()
        for market_id in range(count):
            call.add(self.engine.last_funding_time, market_id, allowFailure=False)
            call.add(self.engine.mark_price, market_id, allowFailure=True)
            call.add(self.engine.is_halted, market_id, allowFailure=True)
        # Judged at the pending block: the checkpoint lands there, and a feed fresh at the head
        # block may already be stale at the next one.
        results = list(call(block_id="pending"))
        return [
            MarketFunding(
                market_id=market_id,
                last_funding_time=int(results[3 * market_id]),
                usable=results[3 * market_id + 1] is not None,
                halted=bool(results[3 * market_id + 2]),
            )
            for market_id in range(count)
        ]

    def is_due(self, markets: list[MarketFunding], now: int) -> bool:
        return any(m.usable and now - m.last_funding_time >= self.interval for m in markets)

    def step(self, now: int | None = None) -> Checkpoint | None:
        """Checkpoints all usable markets when one is due at `now` (default: the next block's time)."""
        with self.metrics.measure():
            now = int(self.chain.pending_timestamp) if now is None else now
            markets = self.markets()
            if self._confirm_halted(markets):
                markets = self.markets()
            if not self.is_due(markets, now):
                return None
            return self._checkpoint(markets, now)

    def _confirm_halted(self, markets: list[MarketFunding]) -> list[int]:
        """Sends confirm_price for each halted market whose rounds now confirm its price."""
        from ape.exceptions import ContractLogicError

        confirmed = []
        for market in markets:
            if not market.halted:
                continue
            try:  # preflight: reverts "engine_admin: price not confirmed" until the rounds agree
                self.engine.confirm_price.call(market.market_id, sender=self.sender)
            except ContractLogicError:
                continue
            receipt = self.engine.confirm_price(market.market_id, sender=self.sender)
            self.metrics.spent(receipt.gas_used, receipt.gas_price)
            confirmed.append(market.market_id)
        if confirmed:
            self.metrics.count("confirmed", len(confirmed))
            self.metrics.log.info("confirmed the new price of halted markets %s", confirmed)
        return confirmed

    def _checkpoint(self, markets: list[MarketFunding], now: int) -> Checkpoint | None:
        # The engine lists at most 64 markets (MAX_MARKETS), which is also how many one
        # checkpoint_funding takes (MAX_CHECKPOINT_MARKETS): one transaction always fits.
        usable = tuple(m.market_id for m in markets if m.usable)
        skipped = tuple(m.market_id for m in markets if not m.usable)
        if skipped:
            self.metrics.count("skipped", len(skipped))
            self.metrics.log.warning("markets %s skipped: their index is unusable", list(skipped))
        if not usable:
            return None
        receipt = self.engine.checkpoint_funding(list(usable), sender=self.sender)
        self.metrics.spent(receipt.gas_used, receipt.gas_price)
        self.metrics.handled(len(usable))
        self.metrics.log.info("checkpointed markets %s at %d", list(usable), receipt.timestamp)
        return Checkpoint(timestamp=int(receipt.timestamp), market_ids=usable, skipped=skipped,
                          receipt=receipt)
