"""The supervisor of `ape run devnet up`: starts anvil, deploys (or finds the deployment),
starts the loops, restarts a loop that exits, and stops everything in reverse order."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from vyperp import roles
from vyperp.devnet import DevnetError
from vyperp.devnet.anvil import devnet_options, keep_time_monotonic, start_anvil, stop_process
from vyperp.devnet.loops import PROCESSES, loop_command
from vyperp.devnet.settings import NETWORK, NETWORK_CHOICE, DevnetSettings

# A loop that keeps exiting (a build error) is left down after this many restarts.
MAX_RESTARTS = 3


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
        settings.paths.create()
        self.anvil = start_anvil(
            settings.port,
            devnet_options(settings, config_manager.get_config("test")),
            log=settings.paths.log("anvil"),
        )
        # for an operator (or a test) to find an anvil whose supervisor was killed
        settings.paths.anvil_pid.write_text(str(self.anvil.pid))
        self.log(
            f"anvil {'resumed from' if resumed else 'started with'} {settings.paths.state} "
            f"at {settings.url} (pid {self.anvil.pid})"
        )
        if resumed and (lead := keep_time_monotonic(settings.url)):
            self.log(f"chain time is {lead} s ahead of the wall clock: it goes on from there")
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
