"""`ape run orders place|list|cancel`: the trader's orders on the order book. The commands live
in vyperp.orders_cli."""

from vyperp.orders_cli import cli

__all__ = ["cli"]
