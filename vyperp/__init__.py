"""vyperp: Python side of the vyperp perpetual-futures exchange (SDK, keepers, simulation)."""

from vyperp.units import WAD, from_wad, to_wad
from vyperp.params import MarketConfig

__all__ = ["WAD", "MarketConfig", "from_wad", "to_wad"]
