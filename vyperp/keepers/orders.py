"""Order keeper: executes the OrderBook's due orders, one view call and one transaction per step.

A step asks `OrderBook.executable_orders(cursor, scan)` at the pending block (where the
transaction lands, so expiry and the observation window are judged at its time) for the ids an
`execute_many` would act on now: orders whose fill round (the first oracle round after their
commit or arming, rule S8) is published and in the window, resting orders whose trigger holds at
the latest round (the batch arms them; they fill one round later, on a later step), and orders that
are over (expired, round out of the window, operator revoked, nothing to reduce), which the
contract removes with the fee refunded to their owner. It sends them in one `execute_many` (at
most `OrderBook.MAX_BATCH` = 64). The keeper earns the fee of each order it fills and nothing
else. The engine's own checks run only at execution: a pause, halt, breaker or capacity refusal
leaves the order pending at its round, any other refusal removes it (fee refunded), and neither
makes the batch revert.

Cursor. Ids are never reused, so the keeper scans from the lowest id it last saw pending
(`first_pending`); when a scan stops at a full page it resumes there on the next step, and wraps
back to the cursor once it reaches the newest order.

In flight. An id is marked in flight from before its transaction is sent until the receipt (or
the error) returns, and steps skip marked ids: a second step that runs meanwhile (Silverback runs
handlers concurrently) never sends the same order twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from vyperp.keepers.metrics import KeeperMetrics
from vyperp.orders import Outcome

MAX_BATCH = 64  # OrderBook.MAX_BATCH
SCAN = 1000  # OrderBook.MAX_SCAN


@dataclass(frozen=True)
class Execution:
    """One execute_many transaction and what it did to each order."""

    order_ids: tuple[int, ...]
    outcomes: dict[int, Outcome]
    fees_earned: int  # token units
    receipt: object

    def ids_with(self, outcome: Outcome) -> list[int]:
        return [order_id for order_id, result in self.outcomes.items() if result is outcome]


class OrderKeeper:
    """Sends each step's executable orders in one `execute_many`."""

    def __init__(self, book, sender, *, chain=None, metrics: KeeperMetrics | None = None,
                 scan: int = SCAN, batch: int = MAX_BATCH, receipt_timeout: int = 120):
        if chain is None:
            from ape import chain
        if not 0 < scan <= SCAN or not 0 < batch <= MAX_BATCH:
            raise ValueError(f"scan must be in (0, {SCAN}] and batch in (0, {MAX_BATCH}]")
        self.book = book
        self.sender = sender
        self.chain = chain
        self.scan = scan
        self.batch = batch
        self.receipt_timeout = receipt_timeout
        self.metrics = metrics or KeeperMetrics("orders")
        self.cursor = 0  # lowest id seen pending
        self.resume: int | None = None  # where a scan cut short by a full page continues
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._in_flight)

    def due(self) -> list[int]:
        """Ids executable at the pending block, from one view call; moves the cursor."""
        start = self.cursor if self.resume is None else self.resume
        page = self.book.executable_orders(start, self.scan, block_id="pending")
        next_id = int(self.book.next_order_id(block_id="pending"))
        if self.resume is None:
            self.cursor = int(page.first_pending)
        scanned_to = int(page.scanned_to)
        self.resume = scanned_to if scanned_to < next_id else None
        return [int(order_id) for order_id in page.ids]

    def step(self) -> Execution | None:
        """Executes what is due now; None when nothing new is."""
        with self.metrics.measure():
            with self._lock:
                ids = [i for i in self.due() if i not in self._in_flight][: self.batch]
                if not ids:
                    return None
                self._in_flight.update(ids)
            try:
                receipt = self.book.execute_many(ids, sender=self.sender)
                if receipt.block_number is None or receipt.block_number < 0:
                    # a node that does not mine at once (Ape then returns before the block):
                    # the ids stay in flight until the transaction is in a block
                    receipt = self.chain.provider.get_receipt(receipt.txn_hash, timeout=self.receipt_timeout)
            finally:
                with self._lock:
                    self._in_flight.difference_update(ids)
            return self._record(ids, receipt)

    def _record(self, ids: list[int], receipt) -> Execution:
        self.metrics.spent(receipt.gas_used, receipt.gas_price)
        # from the events, not the return value: that needs a tracing node
        outcomes: dict[int, Outcome] = {}
        fees = 0
        for event in receipt.events.filter(self.book.OrderExecuted):
            outcomes[int(event.order_id)] = Outcome.EXECUTED
            fees += event.keeper_fee
        for event in receipt.events.filter(self.book.OrderArmed):
            outcomes[int(event.order_id)] = Outcome.ARMED
        for event in receipt.events.filter(self.book.OrderCancelled):
            # the fee of a removed order goes back to its owner
            outcomes[int(event.order_id)] = Outcome(event.outcome)
        for event in receipt.events.filter(self.book.OrderSkipped):
            outcomes.setdefault(int(event.order_id), Outcome(event.outcome))
        outcomes = {order_id: outcomes[order_id] for order_id in ids}
        for outcome in Outcome:
            count = sum(1 for result in outcomes.values() if result is outcome)
            if count:
                self.metrics.count(outcome.name.lower(), count)
        self.metrics.handled(sum(1 for result in outcomes.values() if result in _ACTED))
        self.metrics.count("fees_earned_units", fees)
        self.metrics.log.info("execute_many %s -> %s", ids, [o.name for o in outcomes.values()])
        return Execution(order_ids=tuple(ids), outcomes=outcomes, fees_earned=fees, receipt=receipt)


_ACTED = (Outcome.EXECUTED, Outcome.CANCELLED, Outcome.EXPIRED, Outcome.ARMED)
