"""Fixtures of the contract unit tests (tests/unit), named by role, on titanoboa.

The contracts run in-process (tests/boa_protocol.py): one protocol per module, and every test
inside its own `boa.env.anchor()`, which rolls back state and clock when the test ends. The
fixtures keep the names the Ape suite uses (admin, trader, engine, market, deposit, set_price,
...), and the world they build is the same: one BTC market at 150,000 with atomic trading,
M = I, and a vault seeded with 10,000,000 by the LP.
"""

from decimal import Decimal

import boa
import pytest
from boa_protocol import (
    ORACLE_DECIMALS,
    deploy_boa_protocol,
    deploy_oracle,
    publish_round,
    reporter_account,
)

VAULT_SEED = 10_000_000


def human_units(amount, decimals: int) -> int:
    """A human amount (int, str or Decimal) in token units; exact or it fails."""
    units = Decimal(str(amount)) * 10**decimals
    assert units == units.to_integral_value(), f"{amount} is not a whole number of token units"
    return int(units)


@pytest.fixture(autouse=True)
def isolated():
    """Each test runs inside an anchor: whatever it changes (state, clock) is rolled back."""
    with boa.env.anchor():
        yield


@pytest.fixture(scope="module")
def reporters():
    """Three reporters with known keys (eth_account accounts): they sign observations."""
    return [reporter_account(f"reporter{i}") for i in range(3)]


@pytest.fixture(scope="module")
def protocol(reporters):
    """The module's protocol: market 0 (BTC at 150,000, atomic trading, max_price_age 3600,
    mark_window 0; the oracle's report age is 3600 too) and a vault the LP seeded with 10,000,000.
    Actors hold no tokens: `fund` and `deposit` mint what a test uses."""
    with boa.env.anchor():
        protocol = deploy_boa_protocol(trader_count=2, reporter=reporters[0], fund_actors=False, oracle_max_age=3600)
        units = human_units(VAULT_SEED, protocol.token.decimals())
        protocol.token.mint(protocol.lp, units, sender=protocol.admin)
        protocol.token.approve(protocol.vault, units, sender=protocol.lp)
        protocol.vault.deposit(units, protocol.lp, sender=protocol.lp)
        yield protocol


@pytest.fixture(scope="module")
def admin(protocol):
    return protocol.admin


@pytest.fixture(scope="module")
def guardian(protocol):
    return protocol.guardian


@pytest.fixture(scope="module")
def trader(protocol):
    return protocol.traders[0]


@pytest.fixture(scope="module")
def other_trader(protocol):
    return protocol.traders[1]


@pytest.fixture(scope="module")
def lp(protocol):
    return protocol.lp


@pytest.fixture(scope="module")
def other_lp(protocol):
    return protocol.other_lp


@pytest.fixture(scope="module")
def keeper():
    return boa.env.generate_address("keeper")


@pytest.fixture(scope="module")
def stranger():
    return boa.env.generate_address("stranger")


@pytest.fixture(scope="module")
def engine(protocol):
    """The Engine's own ABI; the facets' entry points are `engine_admin` and `engine_risk`."""
    return protocol.engine


@pytest.fixture(scope="module")
def engine_admin(protocol):
    """EngineAdmin's ABI at the engine (setters, guardian actions, admin views)."""
    return protocol.engine_admin


@pytest.fixture(scope="module")
def engine_risk(protocol):
    """EngineRisk's ABI at the engine (liquidate, liquidate_many, deleverage, adl_eligible)."""
    return protocol.engine_risk


@pytest.fixture(scope="module")
def vault(protocol):
    return protocol.vault


@pytest.fixture(scope="module")
def seeded_vault(protocol):
    """The vault, holding the LP's 10,000,000."""
    return protocol.vault


@pytest.fixture(scope="module")
def lens(protocol):
    return protocol.lens


@pytest.fixture(scope="module")
def token(protocol):
    return protocol.token


@pytest.fixture(scope="module")
def oracle(protocol):
    return protocol.oracle


@pytest.fixture(scope="module")
def market(protocol):
    return 0


@pytest.fixture(scope="module")
def market_config(protocol):
    """Defaults of PROTOCOL.md, with M = I so tests price at the index they set."""
    return protocol.config


@pytest.fixture(scope="module")
def set_price(reporters):
    """Publishes a new round at `price` (human units) on `feed`, transmitted by reporters[0]."""

    def push(feed, price):
        publish_round(feed, int(Decimal(str(price)) * 10**ORACLE_DECIMALS), reporters[:1])

    return push


@pytest.fixture(scope="module")
def new_oracle(admin, reporters):
    """Factory: a PriceOracle (quorum 1, report age 3600, reporters[0] transmits) at `price`."""

    def build(price=150_000, **options):
        feed = deploy_oracle(admin, reporters[:1], **{"max_report_age": 3600, **options})
        publish_round(feed, int(Decimal(str(price)) * 10**ORACLE_DECIMALS), reporters[:1])
        return feed

    return build


@pytest.fixture(scope="module")
def fund(token, admin):
    """Mints collateral (human units) to an account and approves a spender for it."""

    def mint_and_approve(account, amount, spender):
        units = human_units(amount, token.decimals())
        token.mint(account, units, sender=admin)
        token.approve(spender, units, sender=account)
        return units

    return mint_and_approve


@pytest.fixture(scope="module")
def deposit(engine, fund):
    """Deposits collateral (human units) for an account's subaccount; returns the units."""

    def do_deposit(account, amount, subaccount=0):
        units = fund(account, amount, engine)
        engine.deposit(units, subaccount, sender=account)
        return units

    return do_deposit


@pytest.fixture(scope="module")
def add_market(protocol):
    """Lists a market with `config`; returns its id (protocol.add_market)."""
    return protocol.add_market


