"""Deploying a vyperp protocol instance with Ape: token, oracles, engine, vault, lens, markets."""

from dataclasses import dataclass, field

from ape.contracts import ContractInstance

from vyperp.params import MarketConfig


@dataclass
class Protocol:
    """The deployed contracts of one vyperp instance."""

    token: object
    engine: object
    admin: object  # EngineAdmin's ABI at the engine's address
    vault: object
    lens: object
    oracles: list = field(default_factory=list)


def deploy_oracle(project, deployer, reporters, *, description="BTC / USD", decimals=8, quorum=1,
                  max_deviation_bps=10_000, max_report_age=3600):
    """A devnet PriceOracle whose reporters push prices."""
    return project.PriceOracle.deploy(
        decimals, description, list(reporters), quorum, max_deviation_bps, max_report_age, sender=deployer
    )


def deploy_protocol(project, deployer, *, token=None, token_decimals=6, guardian=None) -> Protocol:
    """Engine, LP vault and lens over a collateral token (a new DevnetUSD when none is given)."""
    if token is None:
        token = project.DevnetUSD.deploy("Devnet USD", "dUSD", token_decimals, sender=deployer)
    admin_facet = project.EngineAdmin.deploy(sender=deployer)
    risk_facet = project.EngineRisk.deploy(sender=deployer)
    deployed = project.Engine.deploy(token, admin_facet, risk_facet, deployer, guardian or deployer, sender=deployer)
    engine = engine_contract(project, deployed.address)
    admin = engine_admin(project, engine)
    vault = project.LiquidityVault.deploy(engine, "vyperp LP", "vpLP", sender=deployer)
    admin.set_vault(vault, sender=deployer)
    lens = project.EngineLens.deploy(engine, sender=deployer)
    return Protocol(token=token, engine=engine, admin=admin, vault=vault, lens=lens)


def engine_contract(project, address):
    """The engine with its whole interface: the Engine's ABI plus the entry points and events its
    fallback runs: EngineRisk's (liquidate, liquidate_many, deleverage, adl_eligible) and
    EngineAdmin's (the vault hooks, the setters).

    The merged type is also cached for the address, so Ape decodes the facet's events in any
    receipt that touches the engine.
    """
    engine_type = project.Engine.contract_type
    known = {_abi_key(item) for item in engine_type.abi}
    facet_items = []
    for facet in (project.EngineRisk, project.EngineAdmin):
        for item in facet.contract_type.abi:
            if item.type in ("function", "event") and _abi_key(item) not in known:
                known.add(_abi_key(item))
                facet_items.append(item)
    # validated anew rather than copied: a copy would keep the Engine's cached method tables
    merged = type(engine_type).model_validate(
        {**engine_type.model_dump(by_alias=True, mode="json"),
         "abi": [item.model_dump(by_alias=True, mode="json") for item in [*engine_type.abi, *facet_items]]}
    )
    from ape import chain

    chain.contracts.cache_contract_type(address, merged)
    return ContractInstance(address, merged)


def _abi_key(item) -> tuple[str, str]:
    return item.type, getattr(item, "selector", "")


def engine_admin(project, engine):
    """The engine's admin and guardian entry points: EngineAdmin's ABI at the engine's address.

    Built directly: `project.EngineAdmin.at(...)` would return the Engine type Ape cached
    for that address.
    """
    return ContractInstance(engine.address, project.EngineAdmin.contract_type)


def add_market(protocol: Protocol, admin, config: MarketConfig, *, atomic_trading=False) -> int:
    """Lists a market; returns its id.

    `atomic_trading` lets traders trade directly at the current oracle price (devnets,
    tests); without it only the order book's two-step orders trade.
    """
    market_id = protocol.engine.market_count()
    protocol.admin.add_market(config.as_tuple(), sender=admin)
    if atomic_trading:
        protocol.admin.set_atomic_trading(market_id, True, sender=admin)
    return market_id
