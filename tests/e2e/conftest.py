"""The e2e suite's devnet: `ape run deploy`'s logic run once on the test chain.

The deploy reads the repository's config/markets.yaml and writes its manifest to a temporary
directory, so tests never touch deployments/. Role fixtures (admin = test account 0, trader,
lp, reporters = accounts 6-8, ...) come from tests/conftest.py and match the accounts the
deploy funds and uses.
"""

from pathlib import Path

import pytest

from vyperp.deployer import NetworkPlan, deploy_network
from vyperp.sdk import Vyperp

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "markets.yaml"
NETWORK = "ethereum:local"


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
