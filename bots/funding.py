"""Funding keeper bot: one `checkpoint_funding` for every usable market per interval.

    silverback run funding --network ethereum:local:foundry --account TEST::5

`--account` signs. `VYPERP_FUNDING_INTERVAL` sets the interval in seconds of chain time (default
60); the settings every bot shares (manifest, metrics port, health limits) are in
`vyperp/keepers/bots.py`. The keeper keeps no state of its own: the engine's funding clocks are it.
"""

import os

from silverback import SilverbackBot

from vyperp.keepers.bots import BotConfigError, KeeperRun, keeper_bot

bot = SilverbackBot(signer_required=True)


def build(context) -> KeeperRun:
    from vyperp.contracts import engine_contract
    from vyperp.keepers.funding import DEFAULT_INTERVAL, FundingKeeper

    raw = os.environ.get("VYPERP_FUNDING_INTERVAL", str(DEFAULT_INTERVAL))
    if not raw.isdigit() or int(raw) == 0:
        raise BotConfigError(f"VYPERP_FUNDING_INTERVAL={raw!r} must be a positive integer")
    keeper = FundingKeeper(engine_contract(context.project, context.deployment.engine),
                           context.signer, interval=int(raw))
    return KeeperRun(keeper.step, [keeper.metrics], [context.signer.address])


keeper_bot(bot, "funding", build)
