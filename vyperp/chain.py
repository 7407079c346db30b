"""Chain helpers every layer shares (SDK, keepers, simulation, devnet, dashboard, benchmarks):
Multicall3 for batched reads, and the node URL that raw JSON-RPC clients post to."""

from __future__ import annotations


def ensure_multicall(provider=None):
    """Multicall3 at its canonical address; installed with `anvil_setCode` on a devnet without it."""
    from ape import networks
    from ape_ethereum.multicall import BaseMulticall
    from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS

    provider = provider or networks.provider
    if not provider.get_code(MULTICALL3_ADDRESS):
        BaseMulticall.inject()


def node_url(provider) -> str:
    """The HTTP URL of an Ape provider's node."""
    return getattr(provider, "http_uri", None) or provider.uri
