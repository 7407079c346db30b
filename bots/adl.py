"""ADL bot: while the engine allows deleveraging, closes the most profitable positions until it
no longer does.

    silverback run adl --network ethereum:local:foundry --account TEST::5

Contracts and the first block to read events from come from `deployments/<network>.json`;
`--account` signs. Steps on every new block and from a one-minute cron.
"""

from ape import networks, project
from silverback import SilverbackBot

from vyperp.keepers.adl import AdlKeeper
from vyperp.keepers.bots import run_keeper
from vyperp.manifest import Deployment, network_key

bot = SilverbackBot(signer_required=True)

keeper = AdlKeeper.from_deployment(
    project, Deployment.load(network_key(networks.provider.network_choice)), bot.signer)

run_keeper(bot, keeper)
