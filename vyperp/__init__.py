"""vyperp: Python side of the vyperp perpetual-futures exchange (SDK, keepers, simulation)."""

from vyperp.manifest import Deployment, MarketEntry
from vyperp.params import MarketConfig
from vyperp.units import WAD, from_wad, to_wad

__all__ = [
    "WAD",
    "Deployment",
    "MarketConfig",
    "MarketEntry",
    "Side",
    "Vyperp",
    "from_wad",
    "to_wad",
]


def __getattr__(name):
    # The SDK imports Ape; loading it lazily keeps `import vyperp` light for the in-process
    # titanoboa tests and for tools that only read manifests.
    if name in ("Vyperp", "Side"):
        from vyperp import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'vyperp' has no attribute {name!r}")
