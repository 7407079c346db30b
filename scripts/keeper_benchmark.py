"""`ape run keeper_benchmark`: liquidator latency after a crash among 1,000 and 10,000 accounts."""

from vyperp.cli.keeper_benchmark import cli

__all__ = ["cli"]
