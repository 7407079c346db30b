"""Commands that act on the devnet, with no devnet answering: one line saying so and how to start
it, a non-zero exit, and no anvil started in its place (ape-foundry starts one at
``APE_FOUNDRY_HOST``, or on a free port without it, when nothing answers there).

The refusals run in-process (CliRunner); one runs as `ape run` in a subprocess, the way a user
meets it, while the devnet's port is watched for a node answering.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from vyperp.cli.devnet import cli as devnet
from vyperp.cli.orders import cli as orders
from vyperp.cli.seed import cli as seed_oracles
from vyperp.cli.trade import cli as trade
from vyperp.devnet.anvil import free_port, rpc_answers, start_anvil, stop_process

REPO = Path(__file__).resolve().parents[2]
NETWORK = ["--network", "ethereum:local:foundry"]

COMMANDS = {
    "trade markets": (trade, ["markets"]),
    "trade deposit": (trade, ["deposit", "100", "--account", "TEST::2"]),
    "orders list": (orders, ["list", "--account", "TEST::2"]),
    "seed-oracles": (seed_oracles, ["--market", "BTC-USD", "--generate", "--steps", "2"]),
    "devnet dashboard": (devnet, ["dashboard", "--duration", "1"]),
}


def run_without_provider(command, args, tmp_path, environment):
    """The command as a shell runs it: no provider in the click context, so it connects itself."""
    return CliRunner(mix_stderr=False).invoke(
        command, [*args, *NETWORK, "--deployments", str(tmp_path)], env=environment
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_refuses_in_one_line_when_the_devnet_it_points_at_is_down(name, tmp_path):
    command, args = COMMANDS[name]
    url = f"http://127.0.0.1:{free_port()}"

    result = run_without_provider(command, args, tmp_path, {"APE_FOUNDRY_HOST": url})

    assert result.exit_code != 0
    assert lines(result.stdout) == []
    assert lines(result.stderr) == [
        f"error: no devnet answers at {url}: start it with "
        f"`DEVNET_PORT={url.rsplit(':', 1)[1]} make devnet`"
    ]
    assert not rpc_answers(url)


def test_without_apefoundry_host_a_command_refuses_instead_of_starting_an_empty_anvil(tmp_path):
    devnet_port = free_port()  # where the devnet would be (DEVNET_PORT), with nothing there
    environment = {"APE_FOUNDRY_HOST": None, "DEVNET_PORT": str(devnet_port)}

    result = run_without_provider(trade, ["markets"], tmp_path, environment)

    assert result.exit_code != 0
    assert lines(result.stderr) == [
        f"error: no devnet answers at http://127.0.0.1:{devnet_port}: start it with "
        f"`DEVNET_PORT={devnet_port} make devnet`, then "
        f"`export APE_FOUNDRY_HOST=http://127.0.0.1:{devnet_port}`"
    ]


def test_without_apefoundry_host_a_command_names_the_running_devnet_to_attach_to(tmp_path):
    devnet_port = free_port()
    anvil = start_anvil(devnet_port, ["--silent"])  # a devnet's node, answering at DEVNET_PORT
    try:
        environment = {"APE_FOUNDRY_HOST": None, "DEVNET_PORT": str(devnet_port)}
        result = run_without_provider(trade, ["markets"], tmp_path, environment)
    finally:
        stop_process(anvil)

    assert result.exit_code != 0
    assert lines(result.stderr) == [
        f"error: APE_FOUNDRY_HOST is not set: `export APE_FOUNDRY_HOST=http://127.0.0.1:"
        f"{devnet_port}` to attach to the devnet answering there"
    ]


def test_ape_run_against_a_stopped_devnet_prints_one_line_and_starts_no_anvil(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("ape")), "run", "trade", "markets", *NETWORK,
         "--deployments", str(tmp_path)],
        cwd=REPO, env={**os.environ, "APE_FOUNDRY_HOST": url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # watched for the whole run: an anvil started there would answer for a second or more
    answered = []

    def watch():
        while process.poll() is None:
            answered.append(rpc_answers(url, timeout=0.1))
            time.sleep(0.1)  # a refused connection returns at once: do not spin

    watcher = threading.Thread(target=watch)
    watcher.start()
    stdout, stderr = process.communicate(timeout=60)
    watcher.join()

    assert process.returncode != 0
    assert lines(stdout) == []
    assert lines(stderr) == [
        f"error: no devnet answers at {url}: start it with "
        f"`DEVNET_PORT={url.rsplit(':', 1)[1]} make devnet`"
    ]
    assert answered and not any(answered)
