"""Liquidator bot: liquidates every account below maintenance margin, in batches.

    silverback run liquidator --network ethereum:local:foundry --account TEST::1

`--account` signs (rewards are credited to its subaccount 0 in the engine). The account book and
the transactions in flight are saved after every step that changed them to `liquidator.json` in
the bot's Silverback session folder (`.silverback-sessions/<SILVERBACK_BOT_NAME>/<ecosystem>/
<network>/`), and loaded at startup: a restart reads events only from the block after the last it
read, and never resends a transaction in flight. `VYPERP_MAX_TX_GAS` caps a batch's gas. The
settings every bot shares are in `vyperp/keepers/bots.py`.
"""

from silverback import SilverbackBot

from vyperp.keepers.bots import KeeperRun, keeper_bot

bot = SilverbackBot(signer_required=True)


def build(context) -> KeeperRun:
    from vyperp.keepers.liquidator import DEFAULT_MAX_TX_GAS, Liquidator

    keeper = Liquidator.from_deployment(
        context.project, context.deployment, context.signer,
        checkpoint_path=context.state_dir / "liquidator.json",
        max_tx_gas=context.settings.max_tx_gas or DEFAULT_MAX_TX_GAS,
    )
    return KeeperRun(keeper.step, [keeper.metrics], [context.signer.address])


keeper_bot(bot, "liquidator", build)
