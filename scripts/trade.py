"""`ape run trade <command>`: the trader command line (deposit, withdraw, open, close, account,
markets) over the manifest `ape run deploy` wrote."""

from vyperp.cli.trade import cli

__all__ = ["cli"]
