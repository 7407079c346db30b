"""ADL bot: while the engine allows deleveraging, closes the most profitable positions until it
no longer does.

    silverback run adl --network ethereum:local:foundry --account TEST::0

`--account` signs. The keeper's book is rebuilt from the engine's events at startup (deleveraging
is rare and judged from the chain at every step, so a restart repeats nothing). The settings every
bot shares are in `vyperp/keepers/bots.py`.
"""

from silverback import SilverbackBot

from vyperp.keepers.bots import KeeperRun, keeper_bot

bot = SilverbackBot(signer_required=True)


def build(context) -> KeeperRun:
    from vyperp.keepers.adl import AdlKeeper

    keeper = AdlKeeper.from_deployment(context.project, context.deployment, context.signer)
    return KeeperRun(keeper.step, [keeper.metrics], [context.signer.address])


keeper_bot(bot, "adl", build)
