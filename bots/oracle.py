"""Oracle feeder bot (devnet): every market's oracle follows its own simulated live market.

    silverback run oracle --network ethereum:local:foundry

Markets, oracles and reporters come from the manifest; the reporters must be the node's test
accounts (`--account` is not needed: the reporters sign, the first of each market pays the gas).
Each oracle gets a round at most every `VYPERP_ORACLE_STEP` seconds (default 12): on new blocks,
and from a one-minute cron so that an idle automining devnet still gets prices. Moves are a
jump-diffusion with annual volatility `VYPERP_ORACLE_VOL` (default 0.6) and seed
`VYPERP_ORACLE_SEED` (default 1). Each market's feeder has its own metrics
(`oracle:<market>`). The settings every bot shares are in `vyperp/keepers/bots.py`.
"""

import os

from silverback import SilverbackBot

from vyperp.keepers.bots import BotConfigError, KeeperRun, keeper_bot

bot = SilverbackBot()


class FeedFailures(Exception):
    """Markets whose round failed in a step (each counted by its feeder); the others published."""


def build(context) -> KeeperRun:
    from ape import accounts

    from vyperp.keepers.metrics import KeeperMetrics
    from vyperp.keepers.oracle_feeder import (
        FeedMode,
        OracleFeeder,
        SimulatedSource,
        signers_among_test_accounts,
    )
    from vyperp.sim.paths import JumpDiffusion

    try:
        volatility = float(os.environ.get("VYPERP_ORACLE_VOL", "0.6"))
        seed = int(os.environ.get("VYPERP_ORACLE_SEED", "1"))
        step_seconds = int(os.environ.get("VYPERP_ORACLE_STEP", "12"))
    except ValueError as error:
        raise BotConfigError(f"VYPERP_ORACLE_VOL, _SEED or _STEP: {error}") from None
    model = JumpDiffusion(annual_volatility=volatility, jumps_per_year=365, jump_stdev=0.01)
    feeders = {
        name: OracleFeeder(
            context.project.PriceOracle.at(entry.oracle),
            signers_among_test_accounts(accounts, entry.reporters),
            SimulatedSource(model, seed=seed + entry.id, step_seconds=step_seconds),
            mode=FeedMode.LIVE,
            metrics=KeeperMetrics(f"oracle:{name}"),
        )
        for name, entry in context.deployment.markets.items()
    }

    def feed_all() -> None:
        failed = []
        for name, feeder in feeders.items():
            # one market's failure (counted and logged by its feeder) must not starve the others
            try:
                feeder.step()
            except Exception:  # noqa: BLE001
                failed.append(name)
        if failed:
            raise FeedFailures(", ".join(failed))

    transmitters = sorted({feeder.reporters[0].address for feeder in feeders.values()})
    return KeeperRun(feed_all, [feeder.metrics for feeder in feeders.values()], transmitters)


keeper_bot(bot, "oracle", build)
