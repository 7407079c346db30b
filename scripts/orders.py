"""`ape run orders place|list|cancel`: the trader's orders on the order book."""

from vyperp.cli.orders import cli

__all__ = ["cli"]
