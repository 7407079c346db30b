"""The in-process protocol of the titanoboa suites (tests/unit and tests/fuzz).

The contracts run on titanoboa's embedded EVM: a deployment takes milliseconds and every test
rolls its state and clock back with `boa.env.anchor()`. Ape on anvil (tests/e2e) keeps what
needs a node: deployment scripts, the SDK, the CLI, keepers and the devnet.
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import boa
from boa.contracts.event_decoder import RawLogEntry
from hypothesis import settings
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak

from vyperp.oracle_signing import transmit_round
from vyperp.params import MarketConfig

TOKEN_DECIMALS = 6
ORACLE_DECIMALS = 8
START_PRICE = 150_000
# Python-side funding of every actor: far more than any test spends.
ACTOR_TOKENS = 10**12 * 10**TOKEN_DECIMALS
MAX_UINT256 = 2**256 - 1
ERROR_SELECTOR = bytes.fromhex("08c379a0")
# `make fuzz` (VYPERP_FUZZ=long): ten times the examples of `make test`, drawn afresh each run.
LONG_FUZZ = os.environ.get("VYPERP_FUZZ") == "long"


# The Hypothesis profiles, loaded by every boa test module through this one: "ci" draws the same
# examples on every run (a red `make test` is reproducible, a green one is not luck), "long" draws
# fresh ones. Neither has a deadline: py-evm steps vary with machine load.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("long", derandomize=False, deadline=None, print_blob=True)
settings.load_profile("long" if LONG_FUZZ else "ci")


def examples(ci_budget: int) -> int:
    """A property's Hypothesis example count: `ci_budget` in `make test`, ten times it in `make fuzz`."""
    return ci_budget * 10 if LONG_FUZZ else ci_budget


@cache
def contract(name: str):
    """The deployer of contracts/<name>.vy, compiled once per process: `boa.load_partial` costs
    about 3 s a call even with titanoboa's disk cache, a deploy from it 50 ms."""
    return boa.load_partial(f"contracts/{name}.vy")


def oracle_answer(price) -> int:
    """A human price as the oracle's 8-decimal answer."""
    return int(price * 10**ORACLE_DECIMALS)


def reporter_account(label: str):
    """A reporter with a known private key (it signs observations): an eth_account account."""
    return Account.from_key(keccak(text=f"vyperp fuzz reporter {label}"))


def now() -> int:
    """The timestamp the next call runs at."""
    return boa.env.evm.patch.timestamp


def advance_to(timestamp: int):
    """Moves the clock forward to `timestamp`: the next call runs at it. Like a chain's clock it
    never goes back."""
    assert timestamp >= now(), f"{timestamp} is before now ({now()})"
    boa.env.time_travel(seconds=timestamp - now())


def publish_round(oracle, answer: int, reporters):
    """Publishes one oracle round with `answer` (8 decimals): the one place the boa suites make
    an oracle publish, so a change of how rounds reach the oracle changes only this helper.
    Rule S9: `reporters` (eth_account accounts) each sign an observation of `answer` and the
    first sends them in one `transmit`. A round is written once per block: when the latest
    round already has the current timestamp, the clock first moves to the next block, one
    second later."""
    if oracle.latestRound() != 0 and oracle.latestTimestamp() == now():
        boa.env.time_travel(blocks=1, block_delta=1)
    transmit_round(oracle, answer, reporters, reporters[0].address)


def decoded_reason(data) -> str:
    """The reason string of revert data (`Error(string)`), "" when it carries none."""
    if isinstance(data, bytes) and data[:4] == ERROR_SELECTOR:
        return abi_decode(["string"], data[4:])[0]
    return ""


def _boa_error_reason(error: boa.BoaError) -> str:
    vm_error = error.stack_trace.last_frame.vm_error
    return decoded_reason(vm_error.args[0] if vm_error.args else b"")


def revert_reason(call):
    """Runs `call`; None when it succeeds, else its revert reason ("" when it has none)."""
    try:
        call()
    except boa.BoaError as error:
        return _boa_error_reason(error)
    return None


@contextmanager
def reverts(reason: str | None = None):
    """Asserts that the block reverts, with exactly `reason` when one is given. Unlike
    `boa.reverts` it decodes the revert data itself, so a reason raised in a facet the engine
    delegates to (which boa cannot map to source) is matched all the same."""
    try:
        yield
    except boa.BoaError as error:
        actual = _boa_error_reason(error)
        if reason is not None:
            assert actual == reason, f"reverted with {actual!r}, expected {reason!r}"
        return
    raise AssertionError(f"did not revert (expected {reason!r})")


def events(contract, name):
    """Decoded events named `name` in `contract`'s last call: read them right after the
    transaction, since a view is a call too. A log that the address's registered ABI (the
    Engine's, for a facet's events) cannot decode is decoded with `contract`'s own ABI."""
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


def single(contract, name):
    """The one `name` event of `contract`'s last call (a facet's events: pass the facet's ABI
    at the engine, `engine_admin` or `engine_risk`)."""
    logs = events(contract, name)
    assert len(logs) == 1, logs
    return logs[0]


@dataclass
class BoaProtocol:
    """A deployed protocol (all titanoboa): the engine stack, and when built by
    `deploy_boa_protocol` its BTC market 0, that market's oracle and funded actors."""

    token: object
    engine: object
    engine_admin: object
    engine_risk: object
    vault: object
    lens: object
    admin: str
    guardian: str
    oracle: object = None
    config: MarketConfig | None = None
    reporter: object = None  # an eth_account account: it signs observations and sends them
    lp: str | None = None
    other_lp: str | None = None
    traders: list = field(default_factory=list)

    revert_reason = staticmethod(revert_reason)
    events = staticmethod(events)

    @property
    def scale(self) -> int:
        """Token units to 18-decimal units."""
        return 10 ** (18 - int(self.token.decimals()))

    def now(self) -> int:
        return now()

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

    def add_market(self, config: MarketConfig, *, atomic_trading=False) -> int:
        """Lists a market; returns its id. Without `atomic_trading` only orders trade in it."""
        market_id = self.engine.market_count()
        self.engine_admin.add_market(config.as_tuple(), sender=self.admin)
        if atomic_trading:
            self.engine_admin.set_atomic_trading(market_id, True, sender=self.admin)
        return market_id

    def seed_vault(self, units: int) -> int:
        """LP deposit into the vault; returns the shares minted."""
        return self.vault.deposit(units, self.lp, sender=self.lp)

    def deposit(self, trader, units: int, subaccount: int = 0):
        self.engine.deposit(units, subaccount, sender=trader)


def deploy_oracle(admin, reporters, *, description="BTC / USD", decimals=ORACLE_DECIMALS, quorum=1,
                  max_deviation_bps=10_000, max_report_age=86_400):
    """A PriceOracle whose `reporters` (eth_account accounts) transmit rounds."""
    with boa.env.prank(admin):
        return contract("PriceOracle").deploy(decimals, description, [r.address for r in reporters], quorum,
                                              max_deviation_bps, max_report_age)


def deploy_engine_stack(admin, guardian, *, token=None, token_decimals=TOKEN_DECIMALS) -> BoaProtocol:
    """Engine with both facets, LP vault and lens over `token` (a new DevnetUSD with
    `token_decimals` unless given), deployed by `admin`; no market yet."""
    with boa.env.prank(admin):
        if token is None:
            token = contract("DevnetUSD").deploy("Devnet USD", "dUSD", token_decimals)
        admin_facet = contract("EngineAdmin").deploy()
        risk_facet = contract("EngineRisk").deploy()
        address = contract("Engine").deploy(token, admin_facet, risk_facet, admin, guardian).address
        engine_admin = contract("EngineAdmin").at(address)
        engine_risk = contract("EngineRisk").at(address)
        # boa decodes an address's logs with the ABI registered last: the Engine's
        engine = contract("Engine").at(address)
        vault = contract("LiquidityVault").deploy(engine, "vyperp LP", "vpLP")
        lens = contract("EngineLens").deploy(engine)
        engine_admin.set_vault(vault)
    return BoaProtocol(token=token, engine=engine, engine_admin=engine_admin, engine_risk=engine_risk,
                       vault=vault, lens=lens, admin=admin, guardian=guardian)


def deploy_boa_protocol(*, token_decimals=TOKEN_DECIMALS, trader_count=4, reporter=None, fund_actors=True,
                        oracle_max_age=86_400, **market_changes) -> BoaProtocol:
    """The engine stack, an oracle (at START_PRICE, `reporter` transmits) and market 0 with atomic
    trading, with `market_changes` over MarketConfig's defaults (mark_window=0 and
    max_price_age=3600 unless given, so a test prices at the index it pushes). With `fund_actors`
    every actor holds ACTOR_TOKENS approved to the engine and the vault. Call inside an anchor."""
    protocol = deploy_engine_stack(boa.env.generate_address("admin"), boa.env.generate_address("guardian"),
                                   token_decimals=token_decimals)
    protocol.reporter = reporter or reporter_account("reporter")
    protocol.lp = boa.env.generate_address("lp")
    protocol.other_lp = boa.env.generate_address("other_lp")
    protocol.traders = [boa.env.generate_address(f"trader{i}") for i in range(trader_count)]
    protocol.oracle = deploy_oracle(protocol.admin, [protocol.reporter], max_report_age=oracle_max_age)
    protocol.push_price(oracle_answer(START_PRICE))

    protocol.config = MarketConfig(oracle=protocol.oracle.address,
                                   **{"mark_window": 0, "max_price_age": 3600, **market_changes})
    protocol.add_market(protocol.config, atomic_trading=True)

    for actor in [protocol.lp, protocol.other_lp, *protocol.traders] if fund_actors else []:
        protocol.token.mint(actor, ACTOR_TOKENS, sender=protocol.admin)
        protocol.token.approve(protocol.engine, MAX_UINT256, sender=actor)
        protocol.token.approve(protocol.vault, MAX_UINT256, sender=actor)
    return protocol
