"""`ape run scenario NAME`: a scenario on a fresh anvil, with its report."""

from vyperp.cli.scenario import cli

__all__ = ["cli"]
