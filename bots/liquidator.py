"""Liquidator bot: liquidates every account below maintenance margin, in batches.

    silverback run liquidator --network ethereum:local:foundry --account TEST::5

Contracts and the first block to read events from come from `deployments/<network>.json`;
`--account` signs (rewards are credited to its subaccount 0 in the engine). The account book and
the transactions in flight are saved to `VYPERP_LIQUIDATOR_CHECKPOINT` (default
`.silverback-sessions/liquidator-<network>.json`) after every step, so a restart resumes from the
last block it read. Steps on every new block and from a one-minute cron (an idle automining
devnet makes no blocks).
"""

import os
from pathlib import Path

from ape import networks, project
from silverback import SilverbackBot

from vyperp.keepers.bots import run_keeper
from vyperp.keepers.liquidator import Liquidator
from vyperp.manifest import Deployment, network_key

bot = SilverbackBot(signer_required=True)

network = network_key(networks.provider.network_choice)
default_checkpoint = Path(".silverback-sessions") / f"liquidator-{network.replace(':', '_')}.json"
checkpoint = Path(os.environ.get("VYPERP_LIQUIDATOR_CHECKPOINT", default_checkpoint))
checkpoint.parent.mkdir(parents=True, exist_ok=True)
keeper = Liquidator.from_deployment(project, Deployment.load(network), bot.signer,
                                    checkpoint_path=checkpoint)

run_keeper(bot, keeper)
