"""Funding keeper bot: one `checkpoint_funding` for every usable market per interval.

    silverback run funding --network ethereum:local:foundry --account TEST::5

The engine comes from `deployments/<network>.json`; `--account` signs. Checks on every new block
and from a one-minute cron (an idle automining devnet makes no blocks). `VYPERP_FUNDING_INTERVAL`
sets the interval in seconds of chain time (default 60).
"""

import os

from ape import networks, project
from silverback import SilverbackBot

from vyperp.contracts import engine_contract
from vyperp.keepers.bots import run_keeper
from vyperp.keepers.funding import DEFAULT_INTERVAL, FundingKeeper
from vyperp.manifest import Deployment

bot = SilverbackBot(signer_required=True)

deployment = Deployment.load(networks.provider.network_choice)
keeper = FundingKeeper(
    engine_contract(project, deployment.engine),
    bot.signer,
    interval=int(os.environ.get("VYPERP_FUNDING_INTERVAL", DEFAULT_INTERVAL)),
)

run_keeper(bot, keeper)
