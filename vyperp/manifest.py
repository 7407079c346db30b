"""The deployment manifest: which contracts make up vyperp on one network.

One JSON file per network, ``deployments/<ecosystem>_<network>.json`` (the network choice with
``:`` replaced by ``_``), written by ``ape run deploy`` and read by the SDK, the CLI and the
keepers. Its format is shared by every tool of the project; see ``Deployment.to_json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vyperp.contracts import Protocol, engine_admin, engine_contract
from vyperp.errors import VyperpError

DEFAULT_ROOT = Path("deployments")


class ManifestError(VyperpError):
    """A manifest is missing, malformed, or does not describe the connected chain."""


@dataclass(frozen=True)
class MarketEntry:
    """One listed market: its engine id and its price feed."""

    id: int
    oracle: str
    oracle_decimals: int
    reporters: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "oracle": self.oracle,
            "oracle_decimals": self.oracle_decimals,
            "reporters": list(self.reporters),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MarketEntry:
        return cls(
            id=int(data["id"]),
            oracle=data["oracle"],
            oracle_decimals=int(data["oracle_decimals"]),
            reporters=tuple(data.get("reporters", ())),
        )


@dataclass
class ProtocolContracts:
    """Ape contract handles for every address of a manifest.

    ``admin`` carries the admin and guardian setters: EngineAdmin's ABI at the engine's address.
    """

    token: Any
    engine: Any
    admin: Any
    vault: Any
    lens: Any
    oracles: dict[str, Any] = field(default_factory=dict)

    def as_protocol(self) -> Protocol:
        """The same contracts as the `vyperp.contracts.Protocol` the deploy helpers take."""
        return Protocol(
            token=self.token,
            engine=self.engine,
            admin=self.admin,
            vault=self.vault,
            lens=self.lens,
            oracles=list(self.oracles.values()),
        )


@dataclass
class Deployment:
    """The manifest of one network: protocol addresses and the listed markets by name."""

    network: str
    chain_id: int
    deploy_block: int
    token: str
    engine: str
    vault: str
    lens: str
    engine_admin: str | None = None
    engine_risk: str | None = None
    order_book: str | None = None
    markets: dict[str, MarketEntry] = field(default_factory=dict)

    # ---- files ----

    @staticmethod
    def path_for(network_choice: str, root: Path = DEFAULT_ROOT) -> Path:
        """Where the manifest of a network lives: ``ethereum:local`` -> ``ethereum_local.json``."""
        return Path(root) / f"{network_key(network_choice).replace(':', '_')}.json"

    @classmethod
    def exists(cls, network_choice: str, root: Path = DEFAULT_ROOT) -> bool:
        return cls.path_for(network_choice, root).is_file()

    @classmethod
    def load(cls, network_choice: str, root: Path = DEFAULT_ROOT) -> Deployment:
        """Reads the manifest of a network (``ecosystem:network``; a provider part is ignored)."""
        path = cls.path_for(network_choice, root)
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ManifestError(
                f"no deployment for {network_key(network_choice)} at {path}"
            ) from None
        except (KeyError, TypeError, ValueError) as error:
            raise ManifestError(f"malformed manifest {path}: {error}") from error

    def save(self, root: Path = DEFAULT_ROOT) -> Path:
        """Writes the manifest atomically (a crash leaves no half file); returns its path."""
        path = self.path_for(self.network, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        partial.replace(path)
        return path

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "chain_id": self.chain_id,
            "deploy_block": self.deploy_block,
            "token": self.token,
            "engine": self.engine,
            "engine_admin": self.engine_admin,
            "engine_risk": self.engine_risk,
            "vault": self.vault,
            "lens": self.lens,
            "order_book": self.order_book,
            "markets": {name: entry.to_json() for name, entry in self.markets.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            network=data["network"],
            chain_id=int(data["chain_id"]),
            deploy_block=int(data["deploy_block"]),
            token=data["token"],
            engine=data["engine"],
            engine_admin=data.get("engine_admin"),
            engine_risk=data.get("engine_risk"),
            vault=data["vault"],
            lens=data["lens"],
            order_book=data.get("order_book"),
            markets={name: MarketEntry.from_json(entry) for name, entry in data["markets"].items()},
        )

    # ---- lookups ----

    def market(self, name: str) -> MarketEntry:
        try:
            return self.markets[name]
        except KeyError:
            known = ", ".join(self.markets) or "none"
            raise ManifestError(f"unknown market {name!r} (listed: {known})") from None

    @property
    def market_ids(self) -> dict[str, int]:
        return {name: entry.id for name, entry in self.markets.items()}

    def market_name(self, market_id: int) -> str:
        for name, entry in self.markets.items():
            if entry.id == market_id:
                return name
        raise ManifestError(f"no market with id {market_id} in the manifest")

    def protocol_addresses(self) -> dict[str, str]:
        """The protocol's own contracts (without oracles) by role."""
        addresses = {
            "token": self.token,
            "engine": self.engine,
            "vault": self.vault,
            "lens": self.lens,
        }
        if self.engine_admin:
            addresses["engine_admin"] = self.engine_admin
        if self.engine_risk:
            addresses["engine_risk"] = self.engine_risk
        if self.order_book:
            addresses["order_book"] = self.order_book
        return addresses

    # ---- chain ----

    def check_chain(self, chain_id: int, code_at) -> list[str]:
        """What does not match the connected chain; empty when the manifest describes it.

        ``code_at(address) -> bytes`` reads deployed code, so the check needs no Ape objects.
        """
        problems = []
        if chain_id != self.chain_id:
            problems.append(f"chain id is {chain_id}, the manifest was written for {self.chain_id}")
            return problems
        addresses = self.protocol_addresses()
        addresses.update({f"{name} oracle": entry.oracle for name, entry in self.markets.items()})
        for role, address in addresses.items():
            if not code_at(address):
                problems.append(f"no code at the {role} address {address}")
        return problems

    def contracts(self, project) -> ProtocolContracts:
        """Ape handles for the manifest's addresses, typed by the project's contracts."""
        engine = engine_contract(project, self.engine)
        return ProtocolContracts(
            # any ERC-20 collateral reads through DevnetUSD's ABI (a superset of ERC-20)
            token=project.DevnetUSD.at(self.token),
            engine=engine,
            admin=engine_admin(project, engine),
            vault=project.LiquidityVault.at(self.vault),
            lens=project.EngineLens.at(self.lens),
            # PriceOracle's ABI covers AggregatorV3, so real Chainlink feeds read the same way
            oracles={
                name: project.PriceOracle.at(entry.oracle) for name, entry in self.markets.items()
            },
        )


def network_key(network_choice: str) -> str:
    """``ecosystem:network`` of a network choice, dropping any provider part."""
    parts = network_choice.split(":")
    if len(parts) < 2:
        raise ManifestError(f"network choice {network_choice!r} needs ecosystem:network")
    return ":".join(parts[:2])
