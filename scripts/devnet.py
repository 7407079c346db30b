"""`ape run devnet`: a persistent local devnet with keepers, simulated traders and a dashboard."""

from vyperp.cli.devnet import cli

__all__ = ["cli"]
