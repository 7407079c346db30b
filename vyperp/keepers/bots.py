"""What the Silverback bots in bots/ share: settings from the environment, set-up in Silverback's
startup handler, one step at a time on blocks and from a cron, the keeper in ``bot.state``, its
state checkpointed in the bot's Silverback session folder, step results as Silverback metrics,
and the operator's endpoint (`vyperp.keepers.service`).

A bot file only says how to build its keeper (``keeper_bot(bot, "funding", build)``); nothing
touches the chain or the manifest at import time. At startup the handler reads the settings,
loads the manifest, builds the keeper, puts it in ``bot.state`` and starts the endpoint.

Settings (environment; ``silverback run --env-file FILE`` reads them from a file):
    VYPERP_MANIFEST            the deployment manifest (default deployments/<ecosystem>_<network>.json)
    VYPERP_METRICS_PORT        port of /metrics and /healthz; unset: not served
    VYPERP_METRICS_HOST        address they listen on (default 127.0.0.1)
    VYPERP_MAX_BLOCKS_BEHIND   /healthz fails beyond this many blocks behind the head (default 20)
    VYPERP_MAX_STEP_AGE        ... or when the last successful step is older, in s (default 180)
    VYPERP_MAX_TX_GAS          gas limit of one liquidate_many (liquidator; default 12,000,000)
The network, RPC URL and signing account are Silverback's own: ``--network``/
``SILVERBACK_NETWORK_CHOICE`` (``ethereum:sepolia:https://...`` names a node by URL),
``--account``/``SILVERBACK_SIGNER_ALIAS``, and ``SILVERBACK_BOT_NAME`` names the session folder.

State. Silverback (0.7.38) checkpoints only its own keys (last block seen and processed, last
nonce) to ``.silverback-sessions/<bot>/<ecosystem>/<network>/state.json``; ``bot.state`` itself
lives in memory. A keeper with state of its own (the liquidator's account book and transactions
in flight) saves it after each step that changed it, in that same folder (``context.state_dir``),
and loads it in the startup handler, so a restarted bot resumes from the block it last read.

Steps. Blocks and a one-minute cron trigger steps (an idle automining devnet makes no blocks).
Silverback runs handlers concurrently; a trigger that arrives while a step runs is dropped (the
running step reads the newest head itself), so no keeper sends from two steps at once. A failing
step is counted and logged by the keeper's metrics and retried at the next trigger rather than
raised: Silverback halts a bot after ``--max-exceptions`` consecutive failures, which would turn a
node's outage into a crash loop; /healthz reports a keeper that keeps failing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from silverback.state import StateSnapshot

from vyperp.errors import VyperpError
from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.service import KeeperService, StepClock

DEFAULT_MAX_BLOCKS_BEHIND = 20
DEFAULT_MAX_STEP_AGE = 180.0  # three cron periods


class BotConfigError(VyperpError):
    """A setting of a keeper bot is missing or malformed."""


@dataclass(frozen=True)
class BotSettings:
    manifest: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    max_blocks_behind: int = DEFAULT_MAX_BLOCKS_BEHIND
    max_step_age: float = DEFAULT_MAX_STEP_AGE
    max_tx_gas: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BotSettings:
        def number(name: str, kind: type, default):
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise BotConfigError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
            if value <= 0:
                raise BotConfigError(f"{name}={raw!r} must be positive")
            return value

        manifest = environ.get("VYPERP_MANIFEST", "").strip()
        if manifest and not Path(manifest).is_file():
            raise BotConfigError(f"VYPERP_MANIFEST={manifest!r}: no such file")
        return cls(
            manifest=Path(manifest) if manifest else None,
            metrics_port=number("VYPERP_METRICS_PORT", int, None),
            metrics_host=environ.get("VYPERP_METRICS_HOST", "").strip() or "127.0.0.1",
            max_blocks_behind=number("VYPERP_MAX_BLOCKS_BEHIND", int, DEFAULT_MAX_BLOCKS_BEHIND),
            max_step_age=number("VYPERP_MAX_STEP_AGE", float, DEFAULT_MAX_STEP_AGE),
            max_tx_gas=number("VYPERP_MAX_TX_GAS", int, None),
        )


@dataclass(frozen=True)
class BotContext:
    """What a bot's builder gets in the startup handler."""

    project: Any
    deployment: Any  # vyperp.manifest.Deployment
    signer: Any  # the bot's --account (None for the oracle bot: its reporters sign)
    settings: BotSettings
    state_dir: Path  # the bot's Silverback session folder


@dataclass
class KeeperRun:
    """A built keeper as the bot steps it: ``step()`` returns the keeper's report (a report with
    a ``retryable_error`` met a node that did not answer: not a success)."""

    step: Callable[[], Any]
    metrics: Sequence[KeeperMetrics]
    accounts: Sequence[str]  # the accounts that pay its gas: their balances are exported


def keeper_bot(bot, name: str, build: Callable[[BotContext], KeeperRun]) -> None:
    """Registers the startup, step and shutdown handlers of a keeper bot on ``bot``."""
    from ape import chain, project

    step_lock = threading.Lock()

    @bot.on_startup()
    def start_keeper(startup_state: StateSnapshot):
        from vyperp.chain import node_url
        from vyperp.keepers.rpc import RpcClient
        from vyperp.manifest import Deployment, ManifestError

        settings = BotSettings.from_env()
        _log_keepers_to_stdout()
        identifier = bot.identifier
        state_dir = (Path.cwd() / ".silverback-sessions" / identifier.name / identifier.ecosystem
                     / identifier.network)
        state_dir.mkdir(parents=True, exist_ok=True)
        network = f"{identifier.ecosystem}:{identifier.network}"
        try:
            deployment = (Deployment.from_json(json.loads(settings.manifest.read_text()))
                          if settings.manifest else Deployment.load(network))
        except (KeyError, TypeError, ValueError) as error:
            raise ManifestError(f"malformed manifest {settings.manifest}: {error}") from error
        if deployment.chain_id != chain.chain_id:
            raise ManifestError(f"the manifest is for chain {deployment.chain_id}, the node is "
                                f"chain {chain.chain_id}")
        run = build(BotContext(project, deployment, bot.signer, settings, state_dir))
        clock = StepClock()
        service = KeeperService(name, run.metrics, clock, rpc=RpcClient(node_url(bot.provider)),
                                accounts=run.accounts, max_blocks_behind=settings.max_blocks_behind,
                                max_step_age=settings.max_step_age)
        if settings.metrics_port is not None:
            service.serve(settings.metrics_host, settings.metrics_port)
        bot.state.keeper, bot.state.clock, bot.state.service = run, clock, service
        # what Silverback checkpointed: the last block the previous session processed
        return {"resumed_after_block": startup_state.last_block_processed}

    def step(block_number: int | None) -> dict | None:
        run, clock = bot.state.keeper, bot.state.clock
        if not step_lock.acquire(blocking=False):
            return None
        try:
            before = _totals(run.metrics)
            started = time.perf_counter()
            try:
                report = run.step()
            except Exception:  # noqa: BLE001 - counted and logged by the keeper; see the docstring
                report, failed = None, True
            else:
                failed = bool(getattr(report, "retryable_error", None))
            if not failed:
                clock.succeeded(chain.blocks.head.number if block_number is None else block_number)
            after = _totals(run.metrics)
            # the step's own figures: Silverback logs and records them as the handler's result
            result = {key: value - before.get(key, 0) for key, value in after.items()
                      if value != before.get(key, 0)}
            result["latency_s"] = round(time.perf_counter() - started, 6)
            return result
        finally:
            step_lock.release()

    @bot.on_(chain.blocks)
    def step_on_block(block):
        return step(block.number)

    @bot.cron("* * * * *")
    def step_every_minute(minute):
        return step(None)

    @bot.on_shutdown()
    def stop_keeper():
        bot.state.service.close()


def _log_keepers_to_stdout() -> None:
    """The keepers log through Python logging (`vyperp.keepers.*`), which Ape's and Silverback's
    logger does not carry: without a handler their info lines (what was sent, a resume) are lost."""
    logger = logging.getLogger("vyperp")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _totals(metrics: Sequence[KeeperMetrics]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for keeper in metrics:
        for key in ("steps", "errors", "items_handled", "gas_used", "gas_spent_wei"):
            totals[key] = totals.get(key, 0) + getattr(keeper, key)
        for key, value in keeper.counters.items():
            totals[key] = totals.get(key, 0) + value
    return totals

