"""The devnet's processes: each keeper and the trader simulation is a loop stepping on wall-clock
time in a child process (`ape run devnet loop <name>`), writing its status after every step."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vyperp import roles
from vyperp.devnet.settings import NETWORK, NETWORK_CHOICE, DevnetSettings
from vyperp.devnet.status import ProcessStatus
from vyperp.errors import VyperpError


class StepError(VyperpError):
    """A step that partly failed; its message says what did and did not happen."""


@dataclass(frozen=True)
class LoopSpec:
    """A process of the devnet: a builder of its step function and the pause between steps.

    ``build(context)`` runs in the child once connected and returns ``step() -> str | None``,
    a description of what the step did (None: nothing to do).
    """

    name: str
    build: Callable[[LoopContext], Callable[[], str | None]]
    interval: float


@dataclass
class LoopContext:
    """What a loop's builder gets: the connected project, accounts, manifest and settings."""

    project: object
    accounts: object
    deployment: object
    settings: DevnetSettings


def build_oracle_feeders(context: LoopContext) -> Callable[[], str | None]:
    """Every market's oracle follows its own simulated live market (jump-diffusion), one round
    per market at most every ``oracle_step_seconds`` of chain time. A market whose feed a replay
    claimed (`vyperp.devnet.feed_claims`) is left alone until the replay ends, then followed on
    from the replay's last price."""
    from vyperp.devnet.feed_claims import holder_of, unless_claimed
    from vyperp.keepers.oracle_feeder import (
        FeedMode,
        OracleFeeder,
        SimulatedSource,
        signers_among_test_accounts,
    )
    from vyperp.sim.paths import JumpDiffusion

    model = JumpDiffusion(annual_volatility=0.6, jumps_per_year=365, jump_stdev=0.01)
    feeders = {
        name: OracleFeeder(
            context.project.PriceOracle.at(entry.oracle),
            signers_among_test_accounts(context.accounts, entry.reporters),
            SimulatedSource(
                model, seed=1 + entry.id, step_seconds=context.settings.oracle_step_seconds
            ),
            mode=FeedMode.LIVE,
        )
        for name, entry in context.deployment.markets.items()
    }
    state_dir = context.settings.paths.root
    claimed: set[str] = set()

    def step() -> str | None:
        published, failures = [], []
        for name, feeder in feeders.items():
            with unless_claimed(state_dir, name) as ours:
                if not ours:
                    if name not in claimed:
                        claimed.add(name)
                        published.append(f"{name} left to {holder_of(state_dir, name)}")
                    continue
                if name in claimed:
                    claimed.discard(name)
                    published.append(f"{name} resumed")
                # one market's failure (counted by its feeder) must not starve the others
                try:
                    feed_round = feeder.step()
                except Exception as error:  # noqa: BLE001 - logged, reported, retried next step
                    failures.append(f"{name}: {type(error).__name__}")
                    continue
            if feed_round is not None:
                published.append(f"{name} {feed_round.price:f}")
        if failures:
            raise StepError("; ".join(failures + published))
        return ", ".join(published) or None

    return step


def build_funding_keeper(context: LoopContext) -> Callable[[], str | None]:
    """One `checkpoint_funding` for every usable market per funding interval."""
    from vyperp.contracts import engine_contract
    from vyperp.keepers.funding import FundingKeeper

    keeper = FundingKeeper(
        engine_contract(context.project, context.deployment.engine),
        context.accounts.test_accounts[roles.FUNDING_KEEPER],
    )

    def step() -> str | None:
        checkpoint = keeper.step()
        if checkpoint is None:
            return None
        return f"checkpointed markets {list(checkpoint.market_ids)} at {checkpoint.timestamp}"

    return step


def build_order_keeper(context: LoopContext) -> Callable[[], str | None]:
    """Executes due orders in one `execute_many` per step."""
    from vyperp.keepers.orders import OrderKeeper

    keeper = OrderKeeper(
        context.project.OrderBook.at(context.deployment.order_book),
        context.accounts.test_accounts[roles.ORDER_KEEPER],
    )

    def step() -> str | None:
        execution = keeper.step()
        if execution is None:
            return None
        return ", ".join(f"order {i} {outcome.name.lower()}" for i, outcome in execution.outcomes.items())

    return step


def build_liquidation_keepers(context: LoopContext) -> Callable[[], str | None]:
    """The liquidator (book from events, one batched confirmation, `liquidate_many`) and the
    ADL keeper, in one process so that they share one signer without nonce clashes."""
    from vyperp.keepers.adl import AdlKeeper
    from vyperp.keepers.liquidator import Liquidator

    signer = context.accounts.test_accounts[roles.LIQUIDATION_KEEPER]
    liquidator = Liquidator.from_deployment(
        context.project,
        context.deployment,
        signer,
        checkpoint_path=context.settings.paths.root / "liquidator.json",
    )
    adl = AdlKeeper.from_deployment(context.project, context.deployment, signer)

    def step() -> str | None:
        done = [liquidator.step().describe(), adl.step().describe()]
        return "; ".join(line for line in done if line) or None

    return step


def build_trader_simulation(context: LoopContext) -> Callable[[], str | None]:
    """Simulated traders (generated test accounts) opening and closing, and an LP depositing."""
    from vyperp.sdk import Vyperp
    from vyperp.sim.traders import TraderSimulation

    sdk = Vyperp.connect(context.project, NETWORK, root=context.settings.deployments)
    simulation = TraderSimulation.with_test_accounts(sdk, context.accounts.test_accounts)
    simulation.fund(context.accounts.test_accounts[roles.ADMIN])

    def step() -> str | None:
        actions = simulation.step()
        return "; ".join(str(action) for action in actions) or None

    return step


# Keepers run on every devnet; a liquidator or order keeper is one more line here.
KEEPERS: tuple[LoopSpec, ...] = (
    LoopSpec("oracle", build_oracle_feeders, interval=1.0),
    LoopSpec("funding", build_funding_keeper, interval=5.0),
    LoopSpec("orders", build_order_keeper, interval=2.0),
    LoopSpec("liquidator", build_liquidation_keepers, interval=1.0),
)
SIMULATIONS: tuple[LoopSpec, ...] = (LoopSpec("traders", build_trader_simulation, interval=4.0),)
PROCESSES: dict[str, LoopSpec] = {spec.name: spec for spec in KEEPERS + SIMULATIONS}


def loop_command(name: str, settings: DevnetSettings) -> list[str]:
    """The child process of one loop, attached through ``settings.child_env()``."""
    return [
        str(Path(sys.executable).with_name("ape")),
        "run", "devnet", "loop", name,
        "--network", NETWORK_CHOICE,
        "--state-dir", str(settings.paths.root),
        "--deployments", str(settings.deployments),
        "--oracle-step", str(settings.oracle_step_seconds),
    ]  # fmt: skip


def run_loop(
    name: str,
    step: Callable[[], str | None],
    *,
    interval: float,
    status_dir: Path,
    log: Callable[[str], None] = print,
    duration: float | None = None,
) -> ProcessStatus:
    """Steps every ``interval`` seconds until SIGINT/SIGTERM, ``duration``, or the supervisor
    (the parent process) is gone. A failing step is logged and counted; the loop goes on."""
    status = ProcessStatus(
        name=name, pid=os.getpid(), interval=interval, started_at=time.time(),
        updated_at=time.time(),
    )  # fmt: skip
    status_dir.mkdir(parents=True, exist_ok=True)
    parent = os.getppid()
    deadline = None if duration is None else time.monotonic() + duration
    with _stop_on_signals() as stopping:
        while not stopping() and os.getppid() == parent:
            started = time.monotonic()
            try:
                action = step()
            except Exception as error:  # noqa: BLE001 - a devnet process outlives one bad step
                status.errors += 1
                status.last_error = f"{type(error).__name__}: {error}"[:300]
                log(f"{name}: step failed: {status.last_error}")
            else:
                if action:
                    status.last_action, status.last_action_at = action, time.time()
                    log(f"{name}: {action}")
            status.steps += 1
            status.updated_at = time.time()
            status.save(status_dir)
            if deadline is not None and time.monotonic() >= deadline:
                break
            pause = interval - (time.monotonic() - started)
            while pause > 0 and not stopping():
                time.sleep(min(pause, 0.2))
                pause -= 0.2
    status.stopped = True
    status.save(status_dir)
    return status


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM end the loop after its current step instead of interrupting a
    transaction halfway."""
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, frame: received.append(number))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield lambda: bool(received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
