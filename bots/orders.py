"""Order keeper bot: executes the OrderBook's due orders in one `execute_many` per step.

    silverback run orders --network ethereum:local:foundry --account TEST::9

The order book comes from `deployments/<network>.json` (its "order_book" key) or
`VYPERP_ORDER_BOOK`; `--account` signs and receives the keeper fees. Runs on every new block and
from a one-minute cron (an idle automining devnet makes no blocks).
"""

import os

from ape import networks, project
from silverback import SilverbackBot

from vyperp.keepers.bots import run_keeper
from vyperp.keepers.orders import OrderKeeper
from vyperp.manifest import Deployment

bot = SilverbackBot(signer_required=True)

deployment = Deployment.load(networks.provider.network_choice)
keeper = OrderKeeper(
    project.OrderBook.at(os.environ.get("VYPERP_ORDER_BOOK") or deployment.order_book), bot.signer
)

run_keeper(bot, keeper)
