"""Session fixtures named by role, shared by every Ape suite (unit and e2e)."""

import pytest


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def other_trader(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def lp(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def reporters(accounts):
    return [accounts[6], accounts[7], accounts[8]]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[9]
