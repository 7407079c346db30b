"""`ape run devnet up` as a subprocess: a first start deploys on a fresh anvil whose state lives in
a temporary directory; a second start resumes that chain (same manifest, block height kept,
nothing redeployed), and no process outlives a run; a chain whose time ran ahead of the wall clock
resumes with time going on from its head. Then the parts on their own: stale feeds re-published
on resume, a loop's status, the supervisor's restarts."""

import contextlib
import dataclasses
import itertools
import json
import os
import re
import signal
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vyperp.devnet import supervisor as supervisor_module
from vyperp.devnet.anvil import devnet_options, free_port, rpc_answers, start_anvil, stop_process
from vyperp.devnet.loops import run_loop
from vyperp.devnet.settings import DevnetPaths, DevnetSettings
from vyperp.devnet.status import process_exists, read_statuses
from vyperp.devnet.supervisor import (
    MAX_RESTARTS,
    Devnet,
    outdated_contracts,
    refresh_stale_prices,
)
from vyperp.keepers.oracle_feeder import signers_among_test_accounts
from vyperp.oracle_signing import transmit_round

REPO = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))


@pytest.fixture(scope="module")
def devnet_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("devnet")
    state, deployments = root / "state", root / "deployments"
    yield state, deployments
    # A supervisor that died (a timeout) leaves anvil behind: end it by its recorded pid.
    pid_file = state / "anvil.pid"
    if pid_file.is_file() and process_exists(pid := int(pid_file.read_text())):
        os.kill(pid, signal.SIGKILL)


def devnet_up(port: int, state: Path, deployments: Path, *options: str) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "APE_FOUNDRY_HOST"}
    finished = subprocess.run(
        [APE, "run", "devnet", "up", "--port", str(port), "--state-dir", str(state),
         "--deployments", str(deployments), "--no-dashboard", *options],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return finished.stdout


def block(pattern: str, output: str) -> int:
    return int(re.search(pattern, output).group(1))


@dataclasses.dataclass(frozen=True)
class CreatedDevnet:
    port: int
    state: Path
    deployments: Path
    output: str


@pytest.fixture(scope="module")
def created_devnet(devnet_dirs) -> CreatedDevnet:
    """The module's one deploy: a devnet created and run with its oracle loop for 10 s."""
    state, deployments = devnet_dirs
    port = free_port()
    output = devnet_up(port, state, deployments, "--process", "oracle", "--oracle-step", "1",
                       "--duration", "10")  # fmt: skip
    return CreatedDevnet(port, state, deployments, output)


def test_devnet_deploys_then_resumes_the_same_chain(created_devnet):
    port, state, deployments, first = dataclasses.astuple(created_devnet)
    manifest_file = deployments / "ethereum_local.json"

    assert "devnet created at block 0" in first
    assert "deployed: DevnetUSD, EngineAdmin, EngineRisk, Engine, LiquidityVault, EngineLens" in first
    manifest = json.loads(manifest_file.read_text())
    assert set(manifest["markets"]) == {"BTC-USD", "ETH-USD", "SOL-USD"}
    assert state.joinpath("state.json").stat().st_size > 0
    (oracle,) = read_statuses(state / "status")
    # the feeder ran as its own process against the devnet and published rounds
    assert oracle.name == "oracle" and oracle.errors == 0 and oracle.stopped
    # (a step lists the markets it published: those whose next round was due, any of the three)
    assert oracle.steps > 0 and oracle.last_action is not None
    assert set(re.findall(r"([A-Z]+-USD) ", oracle.last_action)) <= set(manifest["markets"])
    assert re.findall(r"([A-Z]+-USD) ", oracle.last_action)
    assert "oracle: " in (state / "logs" / "oracle.log").read_text()
    assert "started oracle" in (state / "logs" / "devnet.log").read_text()
    stopped_at = block(r"stopping at block (\d+)", first)
    assert stopped_at > manifest["deploy_block"]

    second = devnet_up(port, state, deployments, "--no-processes", "--duration", "0")
    assert f"devnet resumed at block {stopped_at};" in second
    assert "deployment found on the chain: nothing deployed" in second
    assert json.loads(manifest_file.read_text()) == manifest  # same addresses

    # nothing is left running: anvil is gone (and its pid file), and so is the feeder
    assert not rpc_answers(f"http://127.0.0.1:{port}")
    assert not (state / "anvil.pid").exists()
    assert not process_exists(oracle.pid)


@contextlib.contextmanager
def devnet_chain(port: int, state: Path, networks) -> Iterator[object]:
    """The devnet's own anvil (same options) on its saved chain with Ape attached, without the
    supervisor; stopped with SIGINT, so it saves the chain as the devnet's does."""
    from ape import config

    settings = DevnetSettings(paths=DevnetPaths(state), port=port)
    process = start_anvil(port, devnet_options(settings, config.get_config("test")))
    try:
        with networks.ethereum.local.use_provider(
            "foundry", provider_settings={"host": settings.url}
        ) as provider:
            yield provider
    finally:
        stop_process(process)


def test_a_chain_whose_time_ran_ahead_of_the_wall_clock_resumes_and_keeps_time_monotonic(
    created_devnet, tmp_path, project, networks, chain
):
    from ape import accounts  # the account manager: reporters are found among its test accounts

    # a copy of the module's devnet chain and manifest (its status files stay behind)
    state, deployments = tmp_path / "state", tmp_path / "deployments"
    state.mkdir()
    shutil.copy(created_devnet.state / "state.json", state / "state.json")
    shutil.copytree(created_devnet.deployments, deployments)
    markets = json.loads((deployments / "ethereum_local.json").read_text())["markets"]
    port = free_port()
    # what a replay (seed-oracles) leaves behind: rounds an hour ahead of the wall clock
    with devnet_chain(port, state, networks):
        chain.pending_timestamp = int(time.time()) + 3600
        for market in markets.values():
            oracle = project.PriceOracle.at(market["oracle"])
            signers = signers_among_test_accounts(accounts, market["reporters"])
            transmit_round(oracle, int(oracle.latestAnswer()), signers, signers[0])
        ahead_head = chain.blocks.head.timestamp
    assert ahead_head > time.time() + 3500

    resumed = devnet_up(port, state, deployments, "--process", "oracle", "--oracle-step", "1",
                        "--duration", "6")  # fmt: skip
    assert "devnet resumed at block" in resumed
    assert re.search(r"chain time is 3\d{3} s ahead of the wall clock", resumed)
    (oracle_status,) = read_statuses(state / "status")
    assert oracle_status.steps > 0 and oracle_status.errors == 0, oracle_status.last_error
    with devnet_chain(port, state, networks):
        head = chain.blocks.head.timestamp
        rounds = {
            name: project.PriceOracle.at(market["oracle"]).latestTimestamp()
            for name, market in markets.items()
        }
    # every market got a round after the old head's: chain time never went back
    assert head > ahead_head
    assert all(timestamp > ahead_head for timestamp in rounds.values()), rounds


def test_stale_feeds_are_republished_at_their_last_answer(project, sdk, chain):
    from ape import accounts  # the account manager: reporters are found among its test accounts

    before = {state.name: state.index_price for state in sdk.markets()}
    # a resumed chain: its head block is as old as the last session, the next one is now
    # (600 s later: longer than every market's max_price_age)
    chain.pending_timestamp = chain.blocks.head.timestamp + 600
    assert all(price is not None for price in before.values())

    assert refresh_stale_prices(project, accounts, sdk.deployment) == list(before)
    assert {state.name: state.index_price for state in sdk.markets()} == before
    assert refresh_stale_prices(project, accounts, sdk.deployment) == []  # all fresh: no-op


def test_a_loop_counts_failed_steps_records_its_last_action_and_marks_itself_stopped(tmp_path):
    outcomes = itertools.chain([RuntimeError("feed down"), "published"], itertools.repeat(None))

    def step():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    lines = []
    final = run_loop("probe", step, interval=0.01, status_dir=tmp_path, log=lines.append,
                     duration=0.5)  # fmt: skip
    (saved,) = read_statuses(tmp_path)
    assert saved == final
    assert saved.steps >= 3 and saved.errors == 1 and saved.stopped
    assert saved.last_error == "RuntimeError: feed down" and saved.last_action == "published"
    assert lines[:2] == ["probe: step failed: RuntimeError: feed down", "probe: published"]


def test_supervisor_restarts_a_mock_crashing_loop_then_gives_up(tmp_path, monkeypatch):
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    monkeypatch.setattr(supervisor_module, "loop_command", lambda name, settings: crash)
    supervisor = Devnet(DevnetSettings(paths=DevnetPaths(tmp_path)), log=lambda line: None)
    supervisor.start_loop("oracle")
    for restart in range(1, MAX_RESTARTS + 1):
        supervisor.children["oracle"].wait(10)
        assert supervisor.given_up() == []
        supervisor.supervise()
        assert supervisor.restarts["oracle"] == restart
    supervisor.children["oracle"].wait(10)
    supervisor.supervise()  # no fourth restart
    assert supervisor.restarts["oracle"] == MAX_RESTARTS
    assert supervisor.given_up() == ["oracle"]
    assert "oracle exited (3); restart 3 of 3" in (tmp_path / "logs" / "devnet.log").read_text()


def test_contracts_on_the_chain_are_checked_against_the_compiled_project(project, sdk, chain):
    deployment = sdk.deployment
    assert outdated_contracts(project, deployment, chain.provider.get_code) == []
    # a manifest whose engine address holds other code, as after contracts/ changed
    moved = dataclasses.replace(deployment, engine=deployment.lens)
    assert outdated_contracts(project, moved, chain.provider.get_code) == ["Engine"]
