"""Chain helpers every layer shares (SDK, keepers, simulation, devnet, dashboard, benchmarks):
Multicall3 for batched reads, and the node URL that raw JSON-RPC clients post to."""

from __future__ import annotations

from vyperp.errors import VyperpError


def ensure_multicall(provider=None):
    """Multicall3 at its canonical address; installed with `anvil_setCode` on a local chain
    without it (a fresh anvil). Elsewhere its absence is refused: code cannot be set there."""
    from ape import networks
    from ape_ethereum.multicall import BaseMulticall
    from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS

    provider = provider or networks.provider
    if provider.get_code(MULTICALL3_ADDRESS):
        return
    if not provider.network.is_local:
        raise VyperpError(f"no Multicall3 at {MULTICALL3_ADDRESS} on {provider.network_choice}")
    BaseMulticall.inject()


def node_url(provider) -> str:
    """The HTTP URL of an Ape provider's node."""
    return getattr(provider, "http_uri", None) or provider.uri
