"""`ape run trade <command>`: the trader command line (deposit, withdraw, open, close, account,
markets) over the manifest `ape run deploy` wrote. The commands live in vyperp.cli."""

from vyperp.cli import trade as cli

__all__ = ["cli"]
