"""Which test account (index among the node's test accounts) plays which role, for the tests on
anvil, `ape run deploy` on a local network, the devnet and the benchmarks.

`config/markets.yaml` names the devnet's funded accounts by these same indices (traders, lp).
"""

ADMIN = 0  # deploys and owns the protocol
GUARDIAN = 1  # pauses markets, resumes halted ones
TRADERS = (2, 3)  # `trader` and `other_trader` in the tests
LP = 4  # the liquidity vault's first depositor
KEEPER = 5  # keeper transactions in tests; the devnet's funding keeper
REPORTERS = (6, 7, 8)  # the local oracles' reporters (quorum 2)
STRANGER = 9  # holds no role: refusals of role-gated calls

# The devnet's loops send concurrently, so each needs its own signer (its own nonces). The devnet's
# guardian is its deployer (ADMIN), so GUARDIAN's account is free for the liquidation keepers, and
# STRANGER's for the order keeper.
FUNDING_KEEPER = KEEPER
LIQUIDATION_KEEPER = GUARDIAN
ORDER_KEEPER = STRANGER

# Simulated traders are derived after the role accounts, so the roles' accounts stay the
# operator's own.
FIRST_SIMULATED = 10


def reporters_of(test_accounts) -> list:
    """The local oracles' reporter accounts."""
    return [test_accounts[index] for index in REPORTERS]
