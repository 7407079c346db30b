"""Oracle feeder bot (devnet): every market's oracle follows its own simulated live market.

    silverback run oracle --network ethereum:local:foundry

Markets, oracles and reporters come from `deployments/<network>.json`; the reporters must be the
node's test accounts (`--account` is not needed: the reporters sign). Each oracle gets a round at
most every `VYPERP_ORACLE_STEP` seconds (default 12): on new blocks, and from a one-minute cron so
that an idle automining devnet still gets prices. Moves are a jump-diffusion with annual
volatility `VYPERP_ORACLE_VOL` (default 0.6) and seed `VYPERP_ORACLE_SEED` (default 1).
"""

import os
from contextlib import suppress

from ape import accounts, networks, project
from silverback import SilverbackBot

from vyperp.keepers.bots import step_on_blocks_and_every_minute
from vyperp.keepers.oracle_feeder import (
    FeedMode,
    OracleFeeder,
    SimulatedSource,
    signers_among_test_accounts,
)
from vyperp.manifest import Deployment
from vyperp.sim.paths import JumpDiffusion

bot = SilverbackBot()

deployment = Deployment.load(networks.provider.network_choice)
model = JumpDiffusion(annual_volatility=float(os.environ.get("VYPERP_ORACLE_VOL", "0.6")),
                      jumps_per_year=365, jump_stdev=0.01)
seed = int(os.environ.get("VYPERP_ORACLE_SEED", "1"))
step_seconds = int(os.environ.get("VYPERP_ORACLE_STEP", "12"))
feeders = {
    name: OracleFeeder(
        project.PriceOracle.at(entry.oracle),
        signers_among_test_accounts(accounts, entry.reporters),
        SimulatedSource(model, seed=seed + entry.id, step_seconds=step_seconds),
        mode=FeedMode.LIVE,
    )
    for name, entry in deployment.markets.items()
}


def feed_all() -> dict:
    for feeder in feeders.values():
        # A failing market is counted and logged by its feeder; the others still get their round.
        with suppress(Exception):
            feeder.step()
    return {f"{name}_{key}": value for name, feeder in feeders.items()
            for key, value in feeder.metrics.as_dict().items()}


step_on_blocks_and_every_minute(bot, feed_all)
