"""Counters, latency and logging shared by every keeper.

A keeper wraps each `step` in `metrics.measure()`: the step's wall time is recorded, an exception
counts as an error (logged, then re-raised so the caller sees it), and the keeper reports what it
handled with `handled(n)`, the gas its transactions paid with `spent(gas_used, gas_price)` (from
receipts, reverted ones included: they cost as much), or any other counter with `count(name, n)`.
`as_dict()` gives flat numbers for a bot to publish; `vyperp.keepers.service` serves them to
Prometheus.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class KeeperMetrics:
    """Running totals of one keeper since it started."""

    name: str
    steps: int = 0
    items_handled: int = 0
    errors: int = 0
    last_error: str | None = None
    last_latency: float = 0.0
    max_latency: float = 0.0
    total_latency: float = 0.0
    gas_used: int = 0
    gas_spent_wei: int = 0
    counters: Counter = field(default_factory=Counter)

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"vyperp.keepers.{self.name}")

    @property
    def mean_latency(self) -> float:
        return self.total_latency / self.steps if self.steps else 0.0

    def handled(self, count: int = 1) -> None:
        """Items (reports, markets, accounts...) the current step dealt with."""
        self.items_handled += count

    def spent(self, gas_used: int, gas_price: int) -> None:
        """Gas one mined transaction of this keeper used, at the price it paid per gas (wei)."""
        self.gas_used += gas_used
        self.gas_spent_wei += gas_used * gas_price

    def count(self, name: str, amount: int = 1) -> None:
        """A keeper-specific counter, e.g. markets skipped for a dead feed."""
        self.counters[name] += amount

    @contextmanager
    def measure(self):
        """Times one step; an exception is counted and logged, then propagates."""
        started = time.perf_counter()
        try:
            yield self
        except Exception as error:
            self.errors += 1
            self.last_error = f"{type(error).__name__}: {error}"
            self.log.error("step failed: %s", self.last_error)
            raise
        finally:
            latency = time.perf_counter() - started
            self.steps += 1
            self.last_latency = latency
            self.total_latency += latency
            self.max_latency = max(self.max_latency, latency)

    def as_dict(self) -> dict[str, float | int]:
        """Flat numbers for dashboards and bot results."""
        return {
            "steps": self.steps,
            "items_handled": self.items_handled,
            "errors": self.errors,
            "last_latency_s": round(self.last_latency, 6),
            "mean_latency_s": round(self.mean_latency, 6),
            "max_latency_s": round(self.max_latency, 6),
            "gas_used": self.gas_used,
            "gas_spent_wei": self.gas_spent_wei,
            **{name: value for name, value in sorted(self.counters.items())},
        }
