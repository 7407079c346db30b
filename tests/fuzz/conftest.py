"""Fixtures of the titanoboa property suite (tests/fuzz): one in-process protocol per module.

These tests run on titanoboa's embedded EVM, not on anvil. They use no Ape fixture, so they
run the same under `ape test tests/fuzz` and under `pytest tests/fuzz -p no:ape_test`. Each
deployment is made once per module; tests isolate every Hypothesis example with
`boa.env.anchor()`, which rolls back state and the block clock in microseconds.
"""

from dataclasses import dataclass, field

import boa
import pytest
from boa.contracts.event_decoder import RawLogEntry
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak

from vyperp.oracle_signing import transmit_round
from vyperp.params import MarketConfig
from vyperp.units import WAD

TOKEN_DECIMALS = 6
ORACLE_DECIMALS = 8
START_PRICE = 150_000
# Python-side funding of every actor: far more than any example spends.
ACTOR_TOKENS = 10**12 * 10**TOKEN_DECIMALS
MAX_UINT256 = 2**256 - 1
ERROR_SELECTOR = bytes.fromhex("08c379a0")


def oracle_answer(price) -> int:
    """A human price as the oracle's 8-decimal answer."""
    return int(price * 10**ORACLE_DECIMALS)


def reporter_account(label: str):
    """A reporter with a known private key (it signs observations): an eth_account account."""
    return Account.from_key(keccak(text=f"vyperp fuzz reporter {label}"))


def publish_round(oracle, answer: int, reporters):
    """Publishes one oracle round with `answer` (8 decimals): the one place these tests make
    the oracle publish, so a change of how rounds reach the oracle changes only this helper.
    Rule S9: `reporters` (eth_account accounts) each sign an observation of `answer` and the
    first sends them in one `transmit`. A round is written once per block: when the latest
    round already has the current timestamp, the clock first moves to the next block, one
    second later (where the report-based oracle re-wrote the round in place)."""
    if oracle.latestRound() != 0 and oracle.latestTimestamp() == boa.env.evm.patch.timestamp:
        boa.env.time_travel(blocks=1, block_delta=1)
    transmit_round(oracle, answer, reporters, reporters[0].address)


@dataclass
class BoaProtocol:
    """A deployed protocol with one BTC market and funded actors (all titanoboa)."""

    token: object
    oracle: object
    engine: object
    engine_admin: object
    engine_risk: object
    vault: object
    lens: object
    config: MarketConfig
    admin: str
    guardian: str
    reporter: object  # an eth_account account: it signs observations and sends them
    lp: str
    other_lp: str
    traders: list = field(default_factory=list)

    @property
    def scale(self) -> int:
        return 10 ** (18 - TOKEN_DECIMALS)

    @staticmethod
    def revert_reason(call):
        """Runs `call`; None when it succeeds, else its revert reason ("" when it has none)."""
        try:
            call()
        except boa.BoaError as error:
            vm_error = error.stack_trace.last_frame.vm_error
            data = vm_error.args[0] if vm_error.args else b""
            if isinstance(data, bytes) and data[:4] == ERROR_SELECTOR:
                return abi_decode(["string"], data[4:])[0]
            return ""
        return None

    @staticmethod
    def events(contract, name):
        """Decoded events named `name` that `contract` emitted in its last call. A log that the
        address's registered ABI (the Engine's, for a facet's events) cannot decode is decoded
        with `contract`'s own ABI."""
        decoded = []
        for log in contract.get_logs(strict=False):
            if isinstance(log, RawLogEntry):
                try:
                    log = contract.decode_log(log)
                except Exception:  # another contract's event that neither ABI knows
                    continue
            if type(log).__name__ == name:
                decoded.append(log)
        return decoded

    def now(self) -> int:
        return boa.env.evm.patch.timestamp

    def push_price(self, answer: int):
        publish_round(self.oracle, answer, [self.reporter])

    def set_market(self, **changes) -> MarketConfig:
        """Replaces market 0's parameters with the fixture config plus `changes`. A change that
        S10 queues (it tightens while positions are open) is waited out and applied."""
        config = self.config.with_(**changes)
        self.engine_admin.set_market_params(0, config.as_tuple(), sender=self.admin)
        if self.engine_admin.pending_market_params(0)[1]:
            self.apply_queued(0)
        return config

    def apply_queued(self, key: int):
        """Moves the clock to when the change queued under `key` is due, publishes a fresh round
        at the oracle's last answer (the wait outlasts max_price_age) and applies the change."""
        effective_at = self.engine_admin.pending_change(key)[1]
        boa.env.time_travel(seconds=max(0, effective_at - self.now()))
        self.push_price(self.oracle.latestRoundData()[1])
        self.engine_admin.apply_change(key, sender=self.admin)

    def seed_vault(self, units: int) -> int:
        """LP deposit into the vault; returns the shares minted."""
        return self.vault.deposit(units, self.lp, sender=self.lp)

    def deposit(self, trader, units: int):
        self.engine.deposit(units, sender=trader)


# tests/conftest.py's autouse fixtures prepare anvil; these tests never touch it, so the
# same names are overridden here (which also lets plain pytest run without Ape's fixtures).
@pytest.fixture(autouse=True)
def rewind_clock():
    """No anvil clock to rewind: titanoboa's clock is rolled back by each anchor."""


@pytest.fixture(scope="session", autouse=True)
def shared_state():
    """No shared anvil deployment: each module deploys its own in titanoboa."""


@pytest.fixture(scope="module")
def boa_protocol():
    """Token, oracle, engine, vault, lens and market 0, deployed once per module inside an anchor."""
    with boa.env.anchor():
        admin = boa.env.generate_address("admin")
        guardian = boa.env.generate_address("guardian")
        reporter = reporter_account("reporter")
        lp = boa.env.generate_address("lp")
        other_lp = boa.env.generate_address("other_lp")
        traders = [boa.env.generate_address(f"trader{i}") for i in range(4)]

        with boa.env.prank(admin):
            token = boa.load("contracts/DevnetUSD.vy", "Devnet USD", "dUSD", TOKEN_DECIMALS)
            oracle = boa.load(
                "contracts/PriceOracle.vy", ORACLE_DECIMALS, "BTC / USD", [reporter.address], 1, 10_000, 86_400
            )
            admin_facet = boa.load("contracts/EngineAdmin.vy")
            risk_facet = boa.load("contracts/EngineRisk.vy")
            engine = boa.load("contracts/Engine.vy", token, admin_facet, risk_facet, admin, guardian)
            engine_admin = boa.load_partial("contracts/EngineAdmin.vy").at(engine.address)
            engine_risk = boa.load_partial("contracts/EngineRisk.vy").at(engine.address)
            # boa decodes an address's logs with the ABI registered last: the Engine's
            engine = boa.load_partial("contracts/Engine.vy").at(engine.address)
            vault = boa.load("contracts/LiquidityVault.vy", engine, "vyperp LP", "vpLP")
            lens = boa.load("contracts/EngineLens.vy", engine)
            engine_admin.set_vault(vault)
        publish_round(oracle, oracle_answer(START_PRICE), [reporter])

        # Mark = index so a test prices at the index it pushes; a 100 % breaker move cannot
        # trip while tests keep the price inside a band narrower than 2x.
        config = MarketConfig(oracle=oracle.address, mark_window=0, max_price_age=3600, breaker_move=WAD)
        engine_admin.add_market(config.as_tuple(), sender=admin)
        engine_admin.set_atomic_trading(0, True, sender=admin)

        for actor in [lp, other_lp, *traders]:
            token.mint(actor, ACTOR_TOKENS, sender=admin)
            token.approve(engine, MAX_UINT256, sender=actor)
            token.approve(vault, MAX_UINT256, sender=actor)

        yield BoaProtocol(
            token=token,
            oracle=oracle,
            engine=engine,
            engine_admin=engine_admin,
            engine_risk=engine_risk,
            vault=vault,
            lens=lens,
            config=config,
            admin=admin,
            guardian=guardian,
            reporter=reporter,
            lp=lp,
            other_lp=other_lp,
            traders=traders,
        )
