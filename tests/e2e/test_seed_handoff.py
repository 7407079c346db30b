"""`ape run seed-oracles` beside a running devnet (`ape run devnet up` as a subprocess: anvil, the
deploy and every loop as processes). The oracle loop hands BTC-USD's feed to the replay and takes
it back after; the replay starts at BTC's on-chain price, moves chain time only as its path says,
keeps ETH-USD and SOL-USD usable at every one of its blocks, and no transaction fails on a nonce.
Before it, the claim on its own, between real processes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vyperp.devnet.anvil import free_port
from vyperp.devnet.feed_claims import holder_of, unless_claimed
from vyperp.devnet.status import process_exists, read_statuses
from vyperp.keepers.rpc import AbiEvents, AbiMethod, RpcClient
from vyperp.sim.paths import PricePath

REPO = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))
STEPS = 20  # 12 s apart in btc.csv: four minutes of chain time
LOOPS = {"oracle", "funding", "orders", "liquidator", "traders"}


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


# A replay's side of a claim, as `ape run seed-oracles` takes it, in a process of its own.
CLAIMER = """
import sys, time
from pathlib import Path
from vyperp.devnet.feed_claims import claim_feeds
waiting = lambda market, holder: print("waiting for", market, "held by", holder, flush=True)
with claim_feeds(Path(sys.argv[1]), ["BTC-USD"], "replay of BTC-USD", on_wait=waiting):
    print("claimed", flush=True)
    time.sleep(60)
"""


def test_a_claim_waits_for_the_loops_round_and_ends_with_its_process(tmp_path):
    with unless_claimed(tmp_path, "BTC-USD") as ours:  # the loop, sending a round
        assert ours
        claimer = subprocess.Popen([sys.executable, "-c", CLAIMER, str(tmp_path)], cwd=REPO,
                                   env={**os.environ, "PYTHONPATH": str(REPO)},
                                   stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert claimer.stdout.readline().startswith("waiting for BTC-USD")
    try:
        assert claimer.stdout.readline() == "claimed\n"  # once the round is sent
        with unless_claimed(tmp_path, "BTC-USD") as ours:
            assert not ours  # the loop leaves BTC alone
        with unless_claimed(tmp_path, "ETH-USD") as ours:
            assert ours  # and feeds the rest
        assert holder_of(tmp_path, "BTC-USD") == f"replay of BTC-USD (pid {claimer.pid})"
    finally:
        claimer.kill()  # SIGKILL: no exit handler runs
        claimer.wait()
    with unless_claimed(tmp_path, "BTC-USD") as ours:
        assert ours  # the kernel dropped the claim with the process


@pytest.fixture
def devnet(tmp_path):
    """A full devnet (every loop) on a free port; stopped, and anvil ended, after the test."""
    state, deployments = tmp_path / "state", tmp_path / "deployments"
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if key != "APE_FOUNDRY_HOST"}
    with (tmp_path / "devnet.out").open("w") as output:
        supervisor = subprocess.Popen(
            [APE, "run", "devnet", "up", "--port", str(port), "--state-dir", str(state),
             "--deployments", str(deployments), "--no-dashboard"],
            cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield port, state, deployments
    finally:
        supervisor.send_signal(signal.SIGTERM)  # the devnet stops its loops, then anvil
        supervisor.wait(60)
        pid_file = state / "anvil.pid"
        if pid_file.is_file() and process_exists(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


def test_a_replay_takes_over_one_feed_of_the_running_devnet_and_hands_it_back(devnet, project):
    port, state, deployments = devnet
    url = f"http://127.0.0.1:{port}"
    manifest_file = deployments / "ethereum_local.json"

    def every_loop_stepped():
        statuses = read_statuses(state / "status")
        return {s.name for s in statuses if s.steps > 0} == LOOPS

    wait_for(every_loop_stepped, 45, "every loop's first step")
    manifest = json.loads(manifest_file.read_text())
    markets = manifest["markets"]
    rpc = RpcClient(url)
    oracle_type, engine_type = project.PriceOracle.contract_type, project.Engine.contract_type
    latest_round = AbiMethod.of(oracle_type, "latestRound")
    round_data = AbiMethod.of(oracle_type, "getRoundData")
    index_price = AbiMethod.of(engine_type, "index_price")
    btc = markets["BTC-USD"]["oracle"]

    def btc_round() -> int:
        return latest_round.decode(rpc.call(*latest_round.call_request(btc)))[0]

    wait_for(lambda: btc_round() > 1, 15, "the oracle loop's first BTC round")

    replay = subprocess.run(
        [APE, "run", "seed-oracles", "--market", "BTC-USD", "--csv", "data/paths/btc.csv",
         "--steps", str(STEPS), "--deployments", str(deployments), "--state-dir", str(state),
         "--network", "ethereum:local:foundry"],
        cwd=REPO, env={**os.environ, "APE_FOUNDRY_HOST": url}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    output = replay.stdout + replay.stderr
    assert replay.returncode == 0, output[-3000:]
    assert "nonce" not in output.lower()
    first, last = map(int, re.search(r"rounds (\d+)\.\.(\d+)", replay.stdout).groups())
    assert last - first + 1 == STEPS  # consecutive: nobody else wrote BTC's feed meanwhile

    reads = [round_data.call_request(btc, r) for r in range(first - 1, last + 1)]
    rounds = [
        (answer, updated_at)
        for _, answer, _, updated_at, _ in (round_data.decode(r.unwrap()) for r in rpc.batch(reads))
    ]
    start_price = rounds[0][0]  # BTC's price when the replay took the feed over
    replayed = rounds[1:]
    path = PricePath.load(REPO / "data" / "paths" / "btc.csv").head(STEPS)
    scaled = path.scaled(start_price / 10**8, price_decimals=8)
    # the path's returns applied to the on-chain price, from its first point on
    assert [answer for answer, _ in replayed] == [int(p.price.scaleb(8)) for p in scaled]
    assert replayed[0][0] == start_price
    # chain time moved exactly as the path says
    assert [t - replayed[0][1] for _, t in replayed] == [p.t for p in path]

    # At every block of the replay's rounds, the other markets' prices stay usable.
    answer_updated = AbiEvents(oracle_type, ["AnswerUpdated"])
    logs = rpc.call("eth_getLogs", [{"address": btc, "fromBlock": "0x0", "toBlock": "latest",
                                     "topics": answer_updated.topics}])  # fmt: skip
    blocks = {
        decoded.args["roundId"]: decoded.block_number
        for decoded in map(answer_updated.decode, logs)
    }
    others = [entry["id"] for name, entry in markets.items() if name != "BTC-USD"]
    reads = [
        index_price.call_request(manifest["engine"], market_id, block=hex(blocks[r]))
        for r in range(first, last + 1)
        for market_id in others
    ]
    failed = [result.error for result in rpc.batch(reads) if result.error is not None]
    assert failed == []

    # The oracle loop takes BTC back from where the replay left it.
    resumed = wait_for(lambda: btc_round() > last and btc_round(), 15, "BTC's feed to resume")
    _, resumed_answer, _, _, _ = round_data.decode(rpc.call(*round_data.call_request(btc, resumed)))
    assert abs(resumed_answer / replayed[-1][0] - 1) < 0.01
    oracle_log = (state / "logs" / "oracle.log").read_text()
    assert "nonce" not in oracle_log.lower() and "Timestamp error" not in oracle_log
    (oracle_status,) = [s for s in read_statuses(state / "status") if s.name == "oracle"]
    assert oracle_status.errors == 0, oracle_status.last_error
