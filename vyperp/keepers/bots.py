"""What the Silverback bots in bots/ share: when a keeper steps."""

from __future__ import annotations

from collections.abc import Callable


def step_on_blocks_and_every_minute(bot, step: Callable[[], dict]) -> None:
    """Runs ``step`` on every new block and from a one-minute cron, since an idle automining
    devnet makes no blocks; what ``step`` returns is what Silverback records as metrics."""
    from ape import chain

    @bot.on_(chain.blocks)
    def on_block(block):
        return step()

    @bot.cron("* * * * *")
    def every_minute(time):
        return step()


def run_keeper(bot, keeper) -> None:
    """Steps a keeper (a class with ``step()`` and ``metrics``) on blocks and every minute."""

    def step() -> dict:
        keeper.step()
        return keeper.metrics.as_dict()

    step_on_blocks_and_every_minute(bot, step)
