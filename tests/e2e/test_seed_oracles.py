"""Seeding oracles: a path replays exactly, in-process and through `ape run seed-oracles`; the
other feeds are held usable while a replay moves time; an absolute path the oracle would clamp
is refused."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ape_ethereum.multicall import Call

from vyperp.chain import ensure_multicall
from vyperp.contracts import deploy_oracle
from vyperp.keepers.oracle_feeder import HeldFeeds, OracleFeeder, PathSource, pin_next_block
from vyperp.oracle_signing import transmit_round
from vyperp.sim.paths import PricePath

ROOT = Path(__file__).resolve().parents[2]
PATHS = ROOT / "data" / "paths"


@pytest.fixture
def feed(project, admin, reporters):
    """A devnet-style feed: three reporters, quorum 2, 5 % deviation bound, 60 s report age."""
    return deploy_oracle(project, admin, reporters, quorum=2, max_deviation_bps=500,
                         max_report_age=60)


def rounds_of(feed, first: int, last: int) -> list[tuple[int, int]]:
    """(answer, updated_at) of rounds first..last in one multicall."""
    ensure_multicall()
    call = Call()
    for round_id in range(first, last + 1):
        call.add(feed.getRoundData, round_id)
    return [(int(answer), int(updated_at)) for _, answer, _, updated_at, _ in call()]


def expected_rounds(path: PricePath, start: int, decimals: int = 8) -> list[tuple[int, int]]:
    return [(int(p.price.scaleb(decimals)), start + p.t) for p in path]


def test_seeding_replays_the_btc_path_exactly(feed, reporters, chain):
    path = PricePath.load(PATHS / "btc.csv").head(40)
    feeder = OracleFeeder(feed, reporters, PathSource(path))
    rounds = feeder.run()
    assert len(rounds) == 40 and not any(r.clamped for r in rounds)
    # the path's clock starts at the feeder's first step (the chain's time then)
    assert rounds_of(feed, 1, 40) == expected_rounds(path, feeder.start)
    assert feed.latestRound() == 40


def test_a_pin_another_sender_overtook_leaves_the_time_to_the_chain(chain):
    now = int(chain.pending_timestamp)
    assert pin_next_block(chain, now + 30, now) == now + 30  # ahead of the chain: pinned
    chain.mine()
    # another sender's block went past the target since `now` was read: no "Timestamp error"
    observed_at = pin_next_block(chain, now + 20, now + 20)
    assert observed_at >= now + 30 == chain.blocks.head.timestamp


def test_held_feeds_are_republished_at_the_replays_time_before_they_go_stale(
        project, admin, feed, reporters):
    other = deploy_oracle(project, admin, reporters, quorum=2, max_deviation_bps=500,
                          max_report_age=60)
    transmit_round(other, 3_000 * 10**8, reporters, reporters[0])
    held = HeldFeeds({"ETH-USD": (other, reporters, 120)})
    path = PricePath.of([(t, 100) for t in range(0, 300, 12)])  # 25 points, 288 s
    rounds = OracleFeeder(feed, reporters, PathSource(path)).run(
        on_round=lambda published: held.refresh(published.timestamp))
    republished = rounds_of(other, 2, int(other.latestRound()))
    # every 60 s (half its max age) of the replay's time, at one of the replay's timestamps
    assert held.republished == 4
    assert [answer for answer, _ in republished] == [3_000 * 10**8] * 4
    replay_times = {r.timestamp for r in rounds}
    assert all(updated_at in replay_times for _, updated_at in republished)
    updates = [rounds_of(other, 1, 1)[0][1]] + [updated_at for _, updated_at in republished]
    assert all(0 < later - earlier <= 72 for earlier, later in zip(updates, updates[1:]))


def test_ape_run_seed_oracles_replays_the_crash_from_the_current_price_and_refuses_a_jump(
        feed, reporters, chain, tmp_path):
    transmit_round(feed, 150_000 * 10**8, reporters, reporters[0])
    before = int(feed.latestRound())
    manifest = {
        "network": "ethereum:local", "chain_id": chain.chain_id, "deploy_block": 0,
        "token": feed.address, "engine": feed.address, "engine_admin": None,
        "vault": feed.address, "lens": feed.address,
        "markets": {"BTC-USD": {"id": 0, "oracle": feed.address, "oracle_decimals": 8,
                                "reporters": [r.address for r in reporters]}},
    }
    (tmp_path / "ethereum_local.json").write_text(json.dumps(manifest))
    start = chain.blocks.head.timestamp
    steps = 60  # 12 s apart: reaches the bottom of the crash with its 2 % steps

    def seed_oracles(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(Path(sys.executable).with_name("ape")), "run", "seed-oracles",
             "--market", "BTC-USD", *options,
             "--deployments", str(tmp_path), "--state-dir", str(tmp_path / "devnet"),
             "--network", "ethereum:local:foundry",
             # attach to this test's anvil instead of starting one
             "--provider-settings", json.dumps({"host": chain.provider.uri})],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    # crash.csv's own prices start at 1.0: as absolute prices, a jump the oracle would clamp
    refused = seed_oracles("--csv", str(PATHS / "crash.csv"), "--absolute")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "Error: the path starts at 1.000000, 100.0% from BTC-USD's 150000.00000000; a round may "
        "move it 5% at most: drop --absolute to replay its moves from 150000.00000000")
    assert int(feed.latestRound()) == before  # nothing sent

    result = seed_oracles("--csv", str(PATHS / "crash.csv"), "--steps", str(steps))
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"BTC-USD: {steps} rounds" in result.stdout

    crash = PricePath.load(PATHS / "crash.csv").scaled(150_000).head(steps)
    published = rounds_of(feed, before + 1, before + steps)
    first_time = published[0][1]
    assert first_time >= start
    assert published == expected_rounds(crash, first_time)
    assert published[-1][0] < 150_000 * 10**8 * 0.9  # the crash is under way
