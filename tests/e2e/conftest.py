"""Fixtures of the Ape suite (tests/e2e), on a real anvil: accounts named by role, a protocol
deployed with vyperp's own deploy functions, and the devnet: `ape run deploy`'s logic run once on
the test chain.

The deploy reads the repository's config/markets.yaml and writes its manifest to a temporary
directory, so tests never touch deployments/. Role fixtures (admin = test account 0, trader,
lp, reporters = accounts 6-8, ...) match the accounts the deploy funds and uses.
"""

from decimal import Decimal
from pathlib import Path

import pytest

from vyperp import roles
from vyperp.contracts import add_market, deploy_oracle, deploy_protocol
from vyperp.network_deploy import NetworkPlan, deploy_network
from vyperp.oracle_signing import transmit_round
from vyperp.params import MarketConfig
from vyperp.sdk import Vyperp

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "markets.yaml"
NETWORK = "ethereum:local"


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[roles.ADMIN]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[roles.GUARDIAN]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[roles.TRADERS[0]]


@pytest.fixture(scope="session")
def other_trader(accounts):
    return accounts[roles.TRADERS[1]]


@pytest.fixture(scope="session")
def lp(accounts):
    return accounts[roles.LP]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[roles.KEEPER]


@pytest.fixture(scope="session")
def reporters(accounts):
    return roles.reporters_of(accounts)


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[roles.STRANGER]


# ---------------------------------------------------------------------------
# Protocol deployment (session-scoped; Ape reverts chain state after each test)
# ---------------------------------------------------------------------------

BTC_PRICE = 150_000
ORACLE_DECIMALS = 8


@pytest.fixture(scope="session")
def oracle(project, admin, reporters):
    feed = deploy_oracle(project, admin, reporters[:1])
    publish_round(feed, BTC_PRICE, reporters[:1])
    return feed


def publish_round(oracle, price, reporters):
    """Publishes one oracle round at `price` (human units) in the next block: the one place
    order tests make an oracle publish, so a change of how rounds reach the oracle changes
    only this helper. Rule S9: each reporter (a test account, which holds its key) signs an
    observation of the price and the first transmits them together. The oracle writes one
    round per timestamp and anvil may mine consecutive blocks in one second: when the next
    block would share the latest round's timestamp, it is moved one second later."""
    from ape import chain

    answer = int(Decimal(str(price)) * 10**ORACLE_DECIMALS)
    latest = int(oracle.latestTimestamp())
    if int(oracle.latestRound()) != 0 and chain.pending_timestamp <= latest:
        chain.pending_timestamp = latest + 1
    return transmit_round(oracle, answer, list(reporters), reporters[0])


@pytest.fixture(scope="session")
def round_publisher():
    """publish_round, for test modules (they cannot import this conftest)."""
    return publish_round


@pytest.fixture(autouse=True)
def rewind_clock(chain):
    """Starts every test one second after the head block.

    Ape reverts state between tests, but anvil's clock keeps any time a test
    moved it forward, which would leave the session's oracle reports stale.
    """
    chain.provider.make_request("evm_setTime", [chain.blocks.head.timestamp + 1])


@pytest.fixture(scope="session")
def set_price(reporters):
    """Pushes a new index price (human units) through the oracle's reporter."""

    def push(feed, price):
        publish_round(feed, price, reporters[:1])

    return push


@pytest.fixture(scope="session")
def deploy(project, admin, guardian):
    """Factory: a fresh protocol over a new DevnetUSD with the given decimals."""

    def factory(token_decimals=6):
        return deploy_protocol(project, admin, token_decimals=token_decimals, guardian=guardian)

    return factory


@pytest.fixture(scope="session")
def protocol(deploy):
    return deploy(6)


@pytest.fixture(scope="session")
def engine(protocol):
    return protocol.engine


@pytest.fixture(scope="session")
def admin_facet(project, admin):
    """An EngineAdmin for tests that deploy their own Engine."""
    return project.EngineAdmin.deploy(sender=admin)


@pytest.fixture(scope="session")
def risk_facet(project, admin):
    """An EngineRisk for tests that deploy their own Engine."""
    return project.EngineRisk.deploy(sender=admin)


@pytest.fixture(scope="session")
def engine_admin(protocol):
    """The engine's admin and guardian entry points (EngineAdmin's ABI at the engine)."""
    return protocol.admin


@pytest.fixture(scope="session")
def vault(protocol):
    return protocol.vault


@pytest.fixture(scope="session")
def lens(protocol):
    return protocol.lens


@pytest.fixture(scope="session")
def token(protocol):
    return protocol.token


@pytest.fixture(scope="session")
def market_config(oracle):
    """Defaults of PROTOCOL.md, with M = I so tests price at the index they set."""
    return MarketConfig(oracle=oracle.address, mark_window=0, max_price_age=3600)


@pytest.fixture(scope="session")
def market(protocol, admin, market_config):
    return add_market(protocol, admin, market_config, atomic_trading=True)


@pytest.fixture(scope="session")
def fund(token, admin):
    """Mints collateral (human units) to an account and approves a spender for it."""

    def mint_and_approve(account, amount, spender):
        units = int(Decimal(str(amount)) * 10 ** token.decimals())
        token.mint(account, units, sender=admin)
        token.approve(spender, units, sender=account)
        return units

    return mint_and_approve


@pytest.fixture(scope="session")
def seeded_vault(vault, lp, fund, market):
    """The LP vault with 10,000,000 of assets, so traders have a counterparty."""
    units = fund(lp, 10_000_000, vault)
    vault.deposit(units, lp, sender=lp)
    return vault


@pytest.fixture(scope="session", autouse=True)
def shared_state(seeded_vault, market):
    """Builds the shared session state before any test takes its snapshot.

    A session fixture first created inside a test would be undone by that
    test's revert while pytest keeps serving the cached object.
    """


@pytest.fixture(scope="session")
def deposit(engine, fund, token):
    """Deposits collateral (human units) for an account's subaccount."""

    def do_deposit(account, amount, subaccount=0):
        units = fund(account, amount, engine)
        engine.deposit(units, subaccount, sender=account)
        return units

    return do_deposit


@pytest.fixture(scope="session")
def order_market(project, protocol, admin, market_config, reporters, deposit, fund, trader, other_trader):
    """Factory: an order book over the session protocol on a new market without atomic trading
    (its own feed at 150,000); trader and other_trader get 100,000 of collateral and `fee_funds`
    dUSD approved to the book. Returns (feed, market id, book)."""
    from vyperp.orders import deploy_order_book

    def build(settings, fee_funds):
        feed = deploy_oracle(project, admin, reporters[:1])
        publish_round(feed, BTC_PRICE, reporters[:1])
        market_id = add_market(protocol, admin, market_config.with_(oracle=feed.address))
        book = deploy_order_book(protocol, admin, project=project, settings={market_id: settings})
        for account in (trader, other_trader):
            deposit(account, 100_000)
            fund(account, fee_funds, book)
        return feed, market_id, book

    return build







@pytest.fixture(scope="session")
def plan():
    return NetworkPlan.load(NETWORK, CONFIG)


@pytest.fixture(scope="session")
def manifest_root(tmp_path_factory):
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture(scope="session")
def first_deploy(project, plan, admin, reporters, accounts, manifest_root):
    return deploy_network(
        project, plan, admin, reporters=reporters, local_accounts=accounts, root=manifest_root
    )


@pytest.fixture(scope="session")
def sdk(project, first_deploy, manifest_root):
    return Vyperp.connect(project, NETWORK, root=manifest_root)


@pytest.fixture(scope="session", autouse=True)
def devnet(first_deploy, sdk):
    """Builds the devnet (and Multicall3, which the SDK's batched reads need) before any
    test takes its snapshot, so no test's revert undoes it."""
    sdk.markets()
    return first_deploy
