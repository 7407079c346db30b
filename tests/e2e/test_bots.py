"""The Silverback bots of bots/ as an operator runs them: `silverback run <bot>` as a process
against an anvil of their own (started with the devnet's launcher, anvil's default base fee, the
protocol deployed from config/markets.yaml), watched through their /metrics and /healthz.

- the funding bot checkpoints every market when due, exports its counters, gas and its account's
  balance, and fails its health check once its account runs dry and the head moves on without it;
- the liquidator bot liquidates an account a price drop made liquidatable; stopped and restarted
  under the same bot name it resumes from its checkpoint (in its Silverback session folder) and
  sends nothing again, though it was killed (SIGKILL: nothing saved on the way out);
- a malformed setting stops a bot at startup with one line, before it sends anything.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from vyperp import roles
from vyperp.devnet.anvil import HARDFORK, free_port, start_anvil, stop_process
from vyperp.network_deploy import NetworkPlan, deploy_network
from vyperp.units import to_wad

REPO = Path(__file__).resolve().parents[2]
SILVERBACK = str(Path(sys.executable).with_name("silverback"))
SESSIONS = REPO / ".silverback-sessions"


@pytest.fixture(scope="module")
def bot_network(networks, project, accounts, tmp_path_factory):
    """A fresh anvil with the protocol deployed, Ape connected to it; (url, manifest, deployment)."""
    port = free_port()
    anvil = start_anvil(port, ["--hardfork", HARDFORK])
    url = f"http://127.0.0.1:{port}"
    root = tmp_path_factory.mktemp("bot-deployments")
    try:
        with networks.ethereum.local.use_provider("foundry", provider_settings={"host": url}):
            plan = NetworkPlan.load("ethereum:local", REPO / "config" / "markets.yaml")
            report = deploy_network(project, plan, accounts[roles.ADMIN],
                                    reporters=roles.reporters_of(accounts),
                                    local_accounts=accounts, root=root)
            yield url, root / "ethereum_local.json", report.deployment
    finally:
        stop_process(anvil)


class Bot:
    """One `silverback run` process, its log and its operator endpoint."""

    def __init__(self, name: str, account: int | None, url: str, manifest: Path, log: Path, *,
                 bot_name: str, **settings: str):
        self.port = free_port()
        self.log_path = log
        self.bot_name = bot_name
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("SILVERBACK_", "VYPERP_"))}
        environment.update(APE_FOUNDRY_HOST=url, SILVERBACK_BOT_NAME=bot_name,
                           VYPERP_MANIFEST=str(manifest), VYPERP_METRICS_PORT=str(self.port),
                           **settings)
        command = [SILVERBACK, "run", name, "--network", "ethereum:local:foundry"]
        if account is not None:
            command += ["--account", f"TEST::{account}"]
        with log.open("ab") as output:
            self.process = subprocess.Popen(command, cwd=REPO, env=environment, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def state_dir(self) -> Path:
        return SESSIONS / self.bot_name / "ethereum" / "local"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_until_serving(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                self.get("/healthz")
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"no endpoint within {timeout} s:\n{self.log()}")

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of /metrics, None when absent."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample.split("{")[0] == name and all(f'{k}="{v}"' in sample for k, v in labels.items()):
                return float(value)
        return None

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL: what a crash or an OOM kill does; nothing gets to save on the way out."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def run_bot(bot_network, tmp_path):
    """Starts bots (each with a new Silverback bot name unless given one); stops them and
    removes their session folders after the test."""
    url, manifest, _ = bot_network
    started = []

    def start(name, account=None, *, bot_name=None, **settings):
        bot = Bot(name, account, url, manifest, tmp_path / f"{name}.log",
                  bot_name=bot_name or f"test-{name}-{uuid.uuid4().hex[:8]}", **settings)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.kill()
        shutil.rmtree(SESSIONS / bot.bot_name, ignore_errors=True)


def wait_for(condition, timeout: float, what: str, bot: Bot, poke=None):
    """Polls ``condition``; ``poke`` (e.g. mine a block) runs every second meanwhile: a block
    mined before the bot's block subscription was up reaches it only through its minute cron."""
    deadline = time.monotonic() + timeout
    poked = time.monotonic()
    while time.monotonic() < deadline:
        if value := condition():
            return value
        if poke is not None and time.monotonic() - poked > 1:
            poke()
            poked = time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s; bot log:\n{bot.log()[-4000:]}")


def mine(chain, blocks: int = 1, seconds: int = 6) -> None:
    """``blocks`` empty blocks, ``seconds`` apart, after the head."""
    chain.provider.make_request("evm_mine", [chain.blocks.head.timestamp + seconds])
    if blocks > 1:
        chain.provider.make_request("anvil_mine", [hex(blocks - 1), hex(seconds)])


def test_funding_bot_checkpoints_exports_metrics_and_fails_health_when_it_falls_behind(
        bot_network, run_bot, project, accounts, chain):
    _, _, deployment = bot_network
    engine = deployment.contracts(project).engine
    signer = accounts[roles.FUNDING_KEEPER]
    bot = run_bot("funding", roles.FUNDING_KEEPER, VYPERP_FUNDING_INTERVAL="5",
                  VYPERP_MAX_BLOCKS_BEHIND="3")
    bot.wait_until_serving()
    assert bot.get("/healthz") == (200, "ok\n")
    funded_before = [int(engine.last_funding_time(market_id)) for market_id in range(3)]

    mine(chain)  # 6 s of chain time later: due
    wait_for(lambda: bot.metric("vyperp_keeper_items_handled_total", keeper="funding"), 10,
             "three markets checkpointed", bot, poke=lambda: mine(chain, seconds=1))
    funded = [int(engine.last_funding_time(market_id)) for market_id in range(3)]
    assert all(after > before for after, before in zip(funded, funded_before, strict=True))
    assert bot.metric("vyperp_keeper_errors_total", keeper="funding") == 0
    assert bot.metric("vyperp_keeper_gas_used_total", keeper="funding") > 100_000
    assert bot.metric("vyperp_keeper_gas_spent_wei_total", keeper="funding") > 0
    assert bot.metric("vyperp_keeper_step_latency_seconds_count", keeper="funding") >= 1
    assert bot.metric("vyperp_keeper_signer_balance_wei", account=signer.address) == pytest.approx(
        signer.balance, rel=1e-9)
    assert bot.metric("vyperp_keeper_healthy", bot="funding") == 1
    assert "checkpointed markets [0, 1, 2]" in bot.log()

    # its account runs dry: every due checkpoint now fails, and the head moves on without it
    chain.provider.make_request("anvil_setBalance", [signer.address, "0x0"])
    mine(chain)
    wait_for(lambda: bot.metric("vyperp_keeper_errors_total", keeper="funding"), 10,
             "a failed checkpoint", bot, poke=lambda: mine(chain, seconds=1))
    mine(chain, blocks=4)
    wait_for(lambda: bot.get("/healthz")[0] == 503, 10, "health check failing", bot)
    status, reasons = bot.get("/healthz")
    assert re.search(r"\d+ blocks behind the head \d+ \(limit 3\)", reasons), reasons
    assert "meets or exceeds account balance" in bot.log()
    assert bot.metric("vyperp_keeper_signer_balance_wei", account=signer.address) == 0
    assert bot.metric("vyperp_keeper_healthy", bot="funding") == 0
    assert bot.process.poll() is None  # failed steps are counted, not a reason to halt


def open_liquidatable_long(project, deployment, accounts, chain, round_publisher) -> tuple:
    """A 19x BTC long of test account 2 on subaccount 7, then a 7.4 % drop of BTC's price (below
    its maintenance margin of 2.5 %)."""
    contracts = deployment.contracts(project)
    trader, subaccount = accounts[roles.TRADERS[0]], 7
    contracts.token.approve(contracts.engine, 10_000 * 10**6, sender=trader)
    contracts.engine.deposit(10_000 * 10**6, subaccount, sender=trader)
    btc = deployment.market("BTC-USD")
    contracts.engine.modify_position(btc.id, to_wad(Decimal(2)), to_wad(200_000), subaccount,
                                     sender=trader)
    round_publisher(contracts.oracles["BTC-USD"], 88_000, roles.reporters_of(accounts)[:2])
    mine(chain, seconds=61)  # the mark is a 60 s TWAP: it follows the index a window later
    (status,) = contracts.lens.account_statuses([(trader.address, subaccount)])
    assert status.liquidatable
    return contracts.engine, (trader.address, subaccount)


def test_liquidator_bot_liquidates_and_resumes_from_its_checkpoint_after_a_restart(
        bot_network, run_bot, project, accounts, chain, round_publisher):
    _, _, deployment = bot_network
    liquidator = accounts[roles.LIQUIDATION_KEEPER]
    bot = run_bot("liquidator", roles.LIQUIDATION_KEEPER)
    bot.wait_until_serving()
    engine, account = open_liquidatable_long(project, deployment, accounts, chain, round_publisher)

    wait_for(lambda: bot.metric("vyperp_keeper_events_total", keeper="liquidator",
                                event="liquidated"), 10, "the account liquidated", bot,
             poke=lambda: mine(chain, seconds=1))
    events = list(engine.Liquidation.range(deployment.deploy_block, chain.blocks.head.number + 1))
    assert [(e.owner, e.subaccount, e.liquidator) for e in events] == [(*account, liquidator.address)]
    liquidated_at = events[0].block_number
    assert bot.metric("vyperp_keeper_gas_used_total", keeper="liquidator") > 0
    bot.kill()
    assert (bot.state_dir / "liquidator.json").is_file()  # in the bot's Silverback session folder

    mine(chain, blocks=3)  # blocks the restarted bot did not see
    restarted = run_bot("liquidator", roles.LIQUIDATION_KEEPER, bot_name=bot.bot_name)
    restarted.wait_until_serving()
    wait_for(lambda: restarted.metric("vyperp_keeper_steps_total", keeper="liquidator"), 10,
             "a step after the restart", restarted, poke=lambda: mine(chain, seconds=1))
    resumed = re.findall(r"resumed from block (\d+) with (\d+) accounts", restarted.log())
    assert resumed and int(resumed[-1][0]) >= liquidated_at, restarted.log()[-3000:]
    # nothing sent again: one liquidation on chain, none counted by the restarted keeper
    assert restarted.metric("vyperp_keeper_events_total", keeper="liquidator",
                            event="accounts_sent") is None
    assert len(list(engine.Liquidation.range(deployment.deploy_block,
                                             chain.blocks.head.number + 1))) == 1
    assert restarted.get("/healthz") == (200, "ok\n")


def test_a_malformed_setting_stops_the_bot_at_startup_in_one_line(bot_network, run_bot, accounts):
    signer = accounts[roles.FUNDING_KEEPER]
    nonce = signer.nonce
    bot = run_bot("funding", roles.FUNDING_KEEPER, VYPERP_MAX_BLOCKS_BEHIND="ten")
    assert bot.process.wait(timeout=20) == 1
    assert bot.log().rstrip().endswith("VYPERP_MAX_BLOCKS_BEHIND='ten' is not an integer")
    assert signer.nonce == nonce
