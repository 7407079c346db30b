"""The one anvil launcher: the devnet's persistent node and the benchmarks' fresh ones."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from vyperp.devnet import DevnetError
from vyperp.devnet.settings import DevnetSettings

# Anvil's own default: deploys and tests expect cancun-or-later opcodes (transient storage).
HARDFORK = "cancun"


def devnet_options(settings: DevnetSettings, test_config) -> list[str]:
    """anvil with persistent state and the accounts Ape's test config derives (automine: no
    --block-time, which makes Ape treat the node as manual-mining)."""
    return [
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


def rpc_call(url: str, method: str, params: Sequence = (), timeout: float = 5.0):
    """One JSON-RPC request to the node at ``url``: its result, or DevnetError."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError) as error:  # URLError is an OSError
        raise DevnetError(f"no answer from {url} to {method}: {error}") from None
    if "result" not in answer:
        raise DevnetError(f"{url} refused {method}: {answer.get('error')}")
    return answer["result"]


def rpc_answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a JSON-RPC node answers at ``url``."""
    try:
        rpc_call(url, "eth_chainId", timeout=timeout)
    except DevnetError:
        return False
    return True


def keep_time_monotonic(url: str) -> int:
    """Makes the next block of the chain at ``url`` later than its head; returns by how many
    seconds the head was ahead of the wall clock (0: it was not).

    An anvil loaded from ``--state`` forgets its clock offset and mines at wall time, even when
    the saved head is later (the oracle loop and seed-oracles' replays move chain time ahead):
    its next block would go back in time and every oracle round would revert. ``anvil_setTime``
    sets both the clock and the floor anvil keeps block times above, so chain time goes on from
    the head, the lead kept. Call it before anything is sent.
    """
    head = int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    lead = head - int(time.time())
    if lead < 0:
        return 0  # wall time is later: the next block is later than the head anyway
    # + 1: a block at the head's own time would fail every oracle (one round per timestamp)
    rpc_call(url, "anvil_setTime", [head + 1])
    return lead


def start_anvil(
    port: int, options: Sequence[str] = (), *, log: Path | None = None, timeout: float = 15.0
) -> subprocess.Popen:
    """Starts anvil on ``port`` (output to ``log``, else discarded) and waits until it answers;
    refuses a port already taken. Stop it with ``stop_process``."""
    url = f"http://127.0.0.1:{port}"
    if rpc_answers(url):
        raise DevnetError(f"something already answers at {url}: is a devnet running?")
    anvil = shutil.which("anvil")
    if anvil is None:
        raise DevnetError("anvil not on PATH (export PATH=$PWD/node_modules/.bin:$PATH)")
    with log.open("ab") if log is not None else open(os.devnull, "wb") as output:
        process = subprocess.Popen(
            [anvil, "--port", str(port), *options],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped last, after whatever still uses it
        )
    deadline = time.monotonic() + timeout
    while not rpc_answers(url):
        if process.poll() is not None:
            where = f"; see {log}" if log is not None else ""
            raise DevnetError(f"anvil exited ({process.returncode}){where}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise DevnetError(f"anvil did not answer at {url} within {timeout} s")
        time.sleep(0.1)
    return process


@contextmanager
def fresh_anvil(networks, options: Sequence[str] = ("--silent",)) -> Iterator[object]:
    """A new anvil on a free port (cancun, Ape's test mnemonic, anvil's default accounts) with
    Ape connected to it: ape-foundry attaches to an anvil already listening at its host instead
    of starting its own with step tracing."""
    port = free_port()
    process = start_anvil(port, ["--hardfork", HARDFORK, *options])
    try:
        with networks.ethereum.local.use_provider(
            "foundry", provider_settings={"host": f"http://127.0.0.1:{port}"}
        ) as provider:
            yield provider
    finally:
        stop_process(process)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
