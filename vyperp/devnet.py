"""The devnet: a persistent anvil with vyperp deployed, its keepers, a trader simulation and a
live dashboard, supervised by one process (`ape run devnet up`, which `make devnet` runs).

Processes. The supervisor starts anvil itself with ``--state`` (chain state saved on exit and
every ``state_interval`` seconds, loaded on the next start) on a fixed port, then attaches Ape to
it: ape-foundry connects to an anvil already listening at ``APE_FOUNDRY_HOST`` instead of
starting its own, which leaves ``host: auto`` in ape-config.yaml (a free port per test run)
untouched. It deploys (``deploy_network`` is idempotent: a resumed chain keeps its manifest),
then starts every entry of ``PROCESSES`` as a child ``ape run devnet loop <name>`` with the same
``APE_FOUNDRY_HOST``, each logging to ``<state dir>/logs/<name>.log``. A liquidator or an order
keeper is one more ``LoopSpec`` in ``KEEPERS``.

Why plain loops rather than ``silverback run``: a devnet's automining anvil makes blocks only
when a transaction arrives, so block handlers stall on an idle chain and the fastest cron is a
minute, while the oracle must publish every few seconds to keep prices fresh (and to move chain
time). A loop steps on wall-clock time. The bots in bots/ drive the same keeper classes for
operators who want Silverback.

Status. Each loop writes ``<state dir>/status/<name>.json`` after every step (what it last
did, steps, errors); the dashboard shows it beside the chain's figures without any RPC request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vyperp import roles
from vyperp.errors import VyperpError

DEFAULT_PORT = 8545
DEFAULT_STATE_DIR = Path(".devnet")
NETWORK = "ethereum:local"
NETWORK_CHOICE = "ethereum:local:foundry"
# A loop that keeps exiting (a build error) is left down after this many restarts.
MAX_RESTARTS = 3
# Anvil's own default: deploys and tests expect cancun-or-later opcodes (transient storage).
HARDFORK = "cancun"


# ---- paths and settings ----


@dataclass(frozen=True)
class DevnetPaths:
    """Where one devnet keeps its chain state, logs and process status."""

    root: Path = DEFAULT_STATE_DIR

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def status(self) -> Path:
        return self.root / "status"

    @property
    def anvil_pid(self) -> Path:
        return self.root / "anvil.pid"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        for directory in (self.root, self.logs, self.status):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class DevnetSettings:
    """One devnet: its port, its files, and what runs on it."""

    paths: DevnetPaths = field(default_factory=DevnetPaths)
    port: int = DEFAULT_PORT
    deployments: Path = Path("deployments")
    config: Path = Path("config/markets.yaml")
    # seconds between anvil's state dumps, so even a killed anvil loses little
    state_interval: int = 10
    oracle_step_seconds: int = 5
    processes: tuple[str, ...] | None = None  # names from PROCESSES; None: all of them

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def child_env(self) -> dict[str, str]:
        """The environment that attaches a child's Ape to this devnet's anvil."""
        # unbuffered, so each process's log shows its steps as they happen
        return {**os.environ, "APE_FOUNDRY_HOST": self.url, "PYTHONUNBUFFERED": "1"}


# ---- anvil ----


def anvil_command(settings: DevnetSettings, test_config) -> list[str]:
    """anvil with persistent state and the accounts Ape's test config derives (automine: no
    --block-time, which makes Ape treat the node as manual-mining)."""
    return [
        "anvil",
        "--port", str(settings.port),
        "--state", str(settings.paths.state),
        "--state-interval", str(settings.state_interval),
        "--mnemonic", test_config.mnemonic,
        "--accounts", str(test_config.number_of_accounts),
        "--derivation-path", test_config.hd_path.rstrip("/") + "/",
        "--balance", str(test_config.balance // 10**18),
        "--hardfork", HARDFORK,
        "--block-base-fee-per-gas", "0",
        "--gas-price", "0",
    ]  # fmt: skip


def rpc_answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a JSON-RPC node answers at ``url``."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def start_anvil(
    settings: DevnetSettings, test_config, *, timeout: float = 15.0
) -> subprocess.Popen:
    """Starts the devnet's anvil and waits until it answers; refuses a port already taken."""
    if rpc_answers(settings.url):
        raise DevnetError(f"something already answers at {settings.url}: is a devnet running?")
    settings.paths.create()
    with settings.paths.log("anvil").open("ab") as log:
        process = subprocess.Popen(
            anvil_command(settings, test_config),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor stops it last, after whatever still uses it
        )
    deadline = time.monotonic() + timeout
    while not rpc_answers(settings.url):
        if process.poll() is not None:
            log_file = settings.paths.log("anvil")
            raise DevnetError(f"anvil exited ({process.returncode}); see {log_file}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise DevnetError(f"anvil did not answer at {settings.url} within {timeout} s")
        time.sleep(0.1)
    # for an operator (or a test) to find an anvil whose supervisor was killed
    settings.paths.anvil_pid.write_text(str(process.pid))
    return process


def stop_process(process: subprocess.Popen, *, timeout: float = 10.0) -> int:
    """SIGINT (anvil dumps its state, loops finish their step), then SIGKILL after ``timeout``.

    Signals go to the child's whole process group (it was started in a session of its own):
    node_modules/.bin/anvil is a node shim in front of the real binary, and both must stop.
    """
    if process.poll() is None:
        _signal_group(process, signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
    return process.returncode


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # already gone


class DevnetError(VyperpError):
    """The devnet cannot start as asked."""


# ---- processes ----


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
    per market at most every ``oracle_step_seconds`` of chain time."""
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

    def step() -> str | None:
        published, failures = [], []
        for name, feeder in feeders.items():
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


class StepError(VyperpError):
    """A step that partly failed; its message says what did and did not happen."""


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


# ---- status files ----


@dataclass
class ProcessStatus:
    """What a loop last did, as its status file records it."""

    name: str
    pid: int
    interval: float
    started_at: float
    updated_at: float
    steps: int = 0
    errors: int = 0
    last_action: str | None = None
    last_action_at: float | None = None
    last_error: str | None = None
    stopped: bool = False

    def save(self, directory: Path) -> None:
        """Written atomically, so a reader never sees half a file."""
        partial = directory / f".{self.name}.json.tmp"
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(directory / f"{self.name}.json")

    def alive(self, now: float | None = None) -> bool:
        """Running and stepping: its process exists and it wrote within a few intervals."""
        now = time.time() if now is None else now
        return (
            not self.stopped
            and process_exists(self.pid)
            and now - self.updated_at < 3 * self.interval + 30
        )


def read_statuses(directory: Path) -> list[ProcessStatus]:
    """Every status file under ``directory``, by name."""
    statuses = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            statuses.append(ProcessStatus(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # a file from another version, or removed while listing
    return statuses


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- a loop process ----


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


# ---- the supervisor ----


@dataclass
class DevnetRun:
    """What one start of the devnet found and did."""

    resumed: bool  # the state file existed
    start_block: int
    deployed: list[str]
    manifest: Path


class Devnet:
    """Starts anvil, deploys, starts the loops; `stop()` ends them in reverse order."""

    def __init__(self, settings: DevnetSettings, log: Callable[[str], None] = print):
        self.settings = settings
        self._echo = log
        self.anvil: subprocess.Popen | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self._provider_context = None
        self.provider = None

    def log(self, message: str) -> None:
        """To the terminal, and to <state dir>/logs/devnet.log, which outlives the scrollback."""
        self._echo(message)
        self.settings.paths.create()
        with self.settings.paths.log("devnet").open("a") as log_file:
            log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def start(self, project, accounts, networks, config_manager) -> DevnetRun:
        """Anvil up, Ape attached, the protocol deployed (or found), the loops started."""
        settings = self.settings
        resumed = settings.paths.state.is_file()
        self.anvil = start_anvil(settings, config_manager.get_config("test"))
        self.log(
            f"anvil {'resumed from' if resumed else 'started with'} {settings.paths.state} "
            f"at {settings.url} (pid {self.anvil.pid})"
        )
        # ape-foundry reads it at connect: this process attaches like its children
        os.environ["APE_FOUNDRY_HOST"] = settings.url
        self._provider_context = networks.parse_network_choice(NETWORK_CHOICE)
        self.provider = self._provider_context.__enter__()
        start_block = self.provider.get_block("latest").number
        report = self._deploy(project, accounts)
        if outdated := outdated_contracts(project, report.deployment, self.provider.get_code):
            self.log(
                f"WARNING: the chain runs older code than contracts/ for {', '.join(outdated)}; "
                "stop the devnet and `make devnet-reset` to deploy the current contracts"
            )
        refreshed = refresh_stale_prices(project, accounts, report.deployment)
        if refreshed:
            self.log(f"re-published the last price of stale feeds: {', '.join(refreshed)}")
        for name in PROCESSES if settings.processes is None else settings.processes:
            self.start_loop(name)
        return DevnetRun(
            resumed=resumed,
            start_block=start_block,
            deployed=report.deployed,
            manifest=report.deployment.path_for(NETWORK, settings.deployments),
        )

    def _deploy(self, project, accounts):
        from vyperp.network_deploy import NetworkPlan, deploy_network

        test_accounts = accounts.test_accounts
        report = deploy_network(
            project,
            NetworkPlan.load(NETWORK, self.settings.config),
            test_accounts[roles.ADMIN],
            reporters=roles.reporters_of(test_accounts),
            local_accounts=test_accounts,
            root=self.settings.deployments,
            log=self.log,
        )
        if not report.changed_anything:
            self.log("deployment found on the chain: nothing deployed")
        return report

    def start_loop(self, name: str) -> subprocess.Popen:
        if name not in PROCESSES:
            raise DevnetError(f"unknown devnet process {name!r} (known: {', '.join(PROCESSES)})")
        self.settings.paths.create()
        with self.settings.paths.log(name).open("ab") as log:
            process = subprocess.Popen(
                loop_command(name, self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.settings.child_env(),
                # a terminal's Ctrl-C reaches only the supervisor, which orders the stop
                start_new_session=True,
            )
        self.children[name] = process
        self.log(f"started {name} (pid {process.pid}), log {self.settings.paths.log(name)}")
        return process

    def stop(self) -> None:
        """Loops first (they finish their step), then anvil, which dumps its state on exit."""
        for name, process in reversed(list(self.children.items())):
            code = stop_process(process)
            self.log(f"stopped {name} ({code})")
        self.children.clear()
        if self._provider_context is not None:
            with suppress(Exception):  # a dead anvil has no head block to report
                self.log(f"stopping at block {self.provider.get_block('latest').number}")
            self._provider_context.__exit__(None, None, None)
            self._provider_context = self.provider = None
        if self.anvil is not None:
            code = stop_process(self.anvil)
            self.settings.paths.anvil_pid.unlink(missing_ok=True)
            self.log(f"stopped anvil ({code}); state in {self.settings.paths.state}")
            self.anvil = None

    def supervise(self) -> None:
        """Restarts a loop that exited, at most ``MAX_RESTARTS`` times; after that it stays
        down (the dashboard shows it) and its log says why. A dead anvil ends the devnet."""
        if self.anvil is not None and self.anvil.poll() is not None:
            raise DevnetError(f"anvil exited ({self.anvil.returncode}); see its log")
        for name, process in list(self.children.items()):
            if process.poll() is None:
                continue
            if self.restarts.get(name, 0) >= MAX_RESTARTS:
                continue
            self.restarts[name] = self.restarts.get(name, 0) + 1
            self.log(
                f"{name} exited ({process.returncode}); restart {self.restarts[name]} of "
                f"{MAX_RESTARTS}, see {self.settings.paths.log(name)}"
            )
            self.start_loop(name)

    def given_up(self) -> list[str]:
        """Loops that exited after their last restart."""
        return [
            name
            for name, process in self.children.items()
            if process.poll() is not None and self.restarts.get(name, 0) >= MAX_RESTARTS
        ]


def wait(duration: float | None, on_tick: Callable[[], None] = lambda: None) -> None:
    """Sleeps until ``duration`` passed, calling ``on_tick`` every second; Ctrl-C ends it."""
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        on_tick()
        time.sleep(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic())))


def outdated_contracts(project, deployment, code_at: Callable[[str], bytes]) -> list[str]:
    """The manifest's contracts whose code on the chain is not the project's compiled code (a
    chain resumed after contracts/ changed). Vyper appends immutables after the runtime code,
    so deployed code starts with the compiled runtime code."""
    addresses = {
        "Engine": deployment.engine,
        "EngineAdmin": deployment.engine_admin,
        "EngineRisk": deployment.engine_risk,
        "LiquidityVault": deployment.vault,
        "EngineLens": deployment.lens,
        "OrderBook": deployment.order_book,
    }
    addresses.update(
        {f"PriceOracle {name}": entry.oracle for name, entry in deployment.markets.items()}
    )
    outdated = []
    for label, address in addresses.items():
        if address is None:
            continue  # a manifest from before the admin facet or the order book
        compiled = getattr(project, label.split()[0]).contract_type.runtime_bytecode.bytecode
        if not bytes(code_at(address)).startswith(bytes.fromhex(compiled.removeprefix("0x"))):
            outdated.append(label)
    return outdated


def refresh_stale_prices(project, accounts, deployment) -> list[str]:
    """Re-publishes the latest answer of every devnet feed the engine cannot use (a resumed
    chain's feeds are as old as its last session), so trading works before the oracle loop's
    first round. One multicall finds them; for each, `quorum` reporters sign an observation of the
    latest answer and the first of them transmits the round (rule S9)."""
    from ape_ethereum.multicall import Call

    from vyperp.chain import ensure_multicall
    from vyperp.contracts import engine_contract
    from vyperp.keepers.oracle_feeder import signers_among_test_accounts
    from vyperp.oracle_signing import transmit_round

    ensure_multicall()
    engine = engine_contract(project, deployment.engine)
    call = Call()
    for entry in deployment.markets.values():
        call.add(engine.index_price, entry.id)
    stale = [
        (name, entry)
        # judged at the pending block: a resumed chain's head still carries its old time
        for (name, entry), price in zip(
            deployment.markets.items(), call(block_id="pending"), strict=True
        )
        if price is None and entry.reporters  # a feed without reporters is not ours to feed
    ]
    refreshed = []
    for name, entry in stale:
        oracle = project.PriceOracle.at(entry.oracle)
        answer = int(oracle.latestAnswer())
        if answer <= 0:
            continue  # never priced: the deploy's initial_price or seed-oracles does that
        refreshed.append(name)
        signers = signers_among_test_accounts(accounts, entry.reporters)[: oracle.quorum()]
        transmit_round(oracle, answer, signers, signers[0])
    return refreshed


def status_lines(statuses: Sequence[ProcessStatus]) -> str:
    """One line per loop, for runs without the dashboard."""
    return "\n".join(
        f"{s.name}: {'stopped' if s.stopped else 'alive' if s.alive() else 'down'}, "
        f"{s.steps} steps, {s.errors} errors, "
        f"last: {s.last_action or '-'}"
        for s in statuses
    )

