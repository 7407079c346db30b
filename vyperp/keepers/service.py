"""What an operator watches of a running keeper: Prometheus metrics and a health check, served on
one HTTP port.

- ``GET /metrics``: the Prometheus text format. Per keeper (label ``keeper``): steps, errors,
  items handled, step latency (a summary: count and sum, plus the last and the largest), gas
  used and wei spent by its transactions, each keeper-specific counter (label ``event``), the
  block of its last successful step, the head block and each signing account's balance (label
  ``account``). Balances and the head are read when scraped, in one JSON-RPC post.
- ``GET /healthz``: 200 and ``ok`` while the keeper keeps up, 503 and one line per reason
  otherwise: its last successful step is older than ``max_step_age`` seconds (or it has had none
  that long since start), or the head is more than ``max_blocks_behind`` blocks past the block
  of its last successful step, or the node does not answer. A stopped process does not answer at
  all, which every probe also counts as a failure.

The server runs in a daemon thread of the bot's process: it answers while a step is stuck (a
hung node), which is when the health check matters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.rpc import RpcClient, RpcError


@dataclass
class StepClock:
    """When a keeper last stepped successfully, and at which block (the bots' step wrapper
    records it; a step that failed, or only met a node that did not answer, does not count)."""

    started_at: float = field(default_factory=time.time)
    last_success_at: float | None = None
    last_success_block: int | None = None

    def succeeded(self, block: int) -> None:
        self.last_success_at = time.time()
        self.last_success_block = block


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...]
    head: int | None
    balances: dict[str, int]


class KeeperService:
    """Metrics and health of one keeper process (one or several keeper objects, one signer set)."""

    def __init__(self, name: str, metrics: Sequence[KeeperMetrics], clock: StepClock, *,
                 rpc: RpcClient, accounts: Sequence[str], max_blocks_behind: int,
                 max_step_age: float):
        self.name = name
        self.metrics = list(metrics)
        self.clock = clock
        self.rpc = rpc
        self.accounts = list(accounts)
        self.max_blocks_behind = max_blocks_behind
        self.max_step_age = max_step_age
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self._server: ThreadingHTTPServer | None = None

    # ---- health ----

    def health(self) -> Health:
        reasons = []
        head, balances = None, {}
        try:
            answers = [result.unwrap() for result in self.rpc.batch(
                [("eth_blockNumber", [])]
                + [("eth_getBalance", [account, "latest"]) for account in self.accounts])]
            head = int(answers[0], 16)
            balances = {account: int(answer, 16)
                        for account, answer in zip(self.accounts, answers[1:], strict=True)}
        except RpcError as error:
            reasons.append(f"node unavailable: {error}")
        now = time.time()
        clock = self.clock
        if clock.last_success_at is None:
            if now - clock.started_at > self.max_step_age:
                reasons.append(f"no successful step in the {now - clock.started_at:.0f} s since "
                               f"start (limit {self.max_step_age:g} s)")
        elif now - clock.last_success_at > self.max_step_age:
            reasons.append(f"last successful step {now - clock.last_success_at:.0f} s ago "
                           f"(limit {self.max_step_age:g} s)")
        if head is not None and clock.last_success_block is not None:
            behind = head - clock.last_success_block
            if behind > self.max_blocks_behind:
                reasons.append(f"{behind} blocks behind the head {head} "
                               f"(limit {self.max_blocks_behind})")
        return Health(not reasons, tuple(reasons), head, balances)

    # ---- Prometheus ----

    def collect(self):
        """The registry's collector: everything read at scrape time."""
        health = self.health()
        families = {
            "steps": CounterMetricFamily("vyperp_keeper_steps", "Steps run", labels=["keeper"]),
            "errors": CounterMetricFamily("vyperp_keeper_errors", "Steps that failed",
                                          labels=["keeper"]),
            "items": CounterMetricFamily("vyperp_keeper_items_handled",
                                         "Items (accounts, orders, markets, reports) handled",
                                         labels=["keeper"]),
            "gas": CounterMetricFamily("vyperp_keeper_gas_used", "Gas used by mined transactions",
                                       labels=["keeper"]),
            "wei": CounterMetricFamily("vyperp_keeper_gas_spent_wei",
                                       "Wei paid for gas by mined transactions", labels=["keeper"]),
            "latency": SummaryMetricFamily("vyperp_keeper_step_latency_seconds",
                                           "Wall time of steps", labels=["keeper"]),
            "last": GaugeMetricFamily("vyperp_keeper_step_latency_last_seconds",
                                      "Wall time of the latest step", labels=["keeper"]),
            "max": GaugeMetricFamily("vyperp_keeper_step_latency_max_seconds",
                                     "Longest step since start", labels=["keeper"]),
            "events": CounterMetricFamily("vyperp_keeper_events",
                                          "Keeper-specific counters (liquidated, skipped, ...)",
                                          labels=["keeper", "event"]),
        }
        for metrics in self.metrics:
            label = [metrics.name]
            families["steps"].add_metric(label, metrics.steps)
            families["errors"].add_metric(label, metrics.errors)
            families["items"].add_metric(label, metrics.items_handled)
            families["gas"].add_metric(label, metrics.gas_used)
            families["wei"].add_metric(label, metrics.gas_spent_wei)
            families["latency"].add_metric(label, metrics.steps, metrics.total_latency)
            families["last"].add_metric(label, metrics.last_latency)
            families["max"].add_metric(label, metrics.max_latency)
            for event, value in sorted(metrics.counters.items()):
                families["events"].add_metric([metrics.name, event], value)
        yield from families.values()

        process = [self.name]
        last_block = GaugeMetricFamily("vyperp_keeper_last_success_block",
                                       "Block of the last successful step", labels=["bot"])
        last_time = GaugeMetricFamily("vyperp_keeper_last_success_timestamp_seconds",
                                      "Unix time of the last successful step", labels=["bot"])
        if self.clock.last_success_at is not None:
            last_block.add_metric(process, self.clock.last_success_block)
            last_time.add_metric(process, self.clock.last_success_at)
        yield last_block
        yield last_time
        healthy = GaugeMetricFamily("vyperp_keeper_healthy", "1 while /healthz passes",
                                    labels=["bot"])
        healthy.add_metric(process, int(health.healthy))
        yield healthy
        head = GaugeMetricFamily("vyperp_keeper_head_block", "Head block of the node",
                                 labels=["bot"])
        if health.head is not None:
            head.add_metric(process, health.head)
        yield head
        balance = GaugeMetricFamily("vyperp_keeper_signer_balance_wei",
                                    "Balance of a signing account", labels=["bot", "account"])
        for account, wei in health.balances.items():
            balance.add_metric([self.name, account], wei)
        yield balance

    # ---- HTTP ----

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Serves /metrics and /healthz from a daemon thread; returns the server."""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path == "/metrics":
                    self._reply(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    health = service.health()
                    body = "ok\n" if health.healthy else "".join(f"{r}\n" for r in health.reasons)
                    self._reply(200 if health.healthy else 503, body.encode(), "text/plain")
                else:
                    self._reply(404, b"/metrics or /healthz\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scrapes every few seconds would flood the bot's log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"{self.name}-metrics",
                         daemon=True).start()
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
