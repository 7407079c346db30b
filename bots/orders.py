"""Order keeper bot: executes the OrderBook's due orders in one `execute_many` per step.

    silverback run orders --network ethereum:local:foundry --account TEST::9

The order book is the manifest's "order_book"; `--account` signs and receives the keeper fees.
The settings every bot shares are in `vyperp/keepers/bots.py`. The keeper's cursor is rebuilt
from the book's first pending order at the first step: nothing to checkpoint.
"""

from silverback import SilverbackBot

from vyperp.keepers.bots import BotConfigError, KeeperRun, keeper_bot

bot = SilverbackBot(signer_required=True)


def build(context) -> KeeperRun:
    from vyperp.keepers.orders import OrderKeeper

    if not context.deployment.order_book:
        raise BotConfigError("the manifest has no order_book: deploy one with `ape run deploy`")
    keeper = OrderKeeper(context.project.OrderBook.at(context.deployment.order_book),
                         context.signer)
    return KeeperRun(keeper.step, [keeper.metrics], [context.signer.address])


keeper_bot(bot, "orders", build)
