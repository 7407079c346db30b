"""Deploying vyperp to a network from config/markets.yaml, and reconciling a later run with it.

``deploy_network`` is the whole of ``ape run deploy``: the first run deploys the protocol, one
devnet oracle per market that names no feed, lists the markets and writes the manifest; a later
run checks the manifest against the chain (chain id, code at every address, each market's
oracle) and only lists the markets the config gained since. On local networks it also seeds one
price per new oracle and funds the test accounts named in the config.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from ape import chain

from vyperp.config_schema import load_config
from vyperp.contracts import add_market, deploy_oracle, deploy_protocol, engine_contract
from vyperp.manifest import DEFAULT_ROOT, Deployment, ManifestError, MarketEntry, network_key
from vyperp.orders import OrderSettings, configure_market, deploy_order_book
from vyperp.params import FRACTION_STEP, STEPPED_FIELDS, MarketConfig
from vyperp.units import WAD, to_token_units, to_wad

DEFAULT_CONFIG = Path("config/markets.yaml")
DEVNET_COLLATERAL = "devnet"
# The engine's default max_pnl_factor (rule S2): traders' profit may reach half the vault.
DEFAULT_MAX_PNL_FACTOR = WAD // 2

# MarketConfig fields that are not 18-decimal fractions or sizes.
_SECONDS_FIELDS = frozenset({"max_price_age", "mark_window", "breaker_window"})
_BOOL_FIELDS = frozenset({"dynamic_funding"})
_PARAM_FIELDS = frozenset(f.name for f in fields(MarketConfig)) - {"oracle"}


@dataclass(frozen=True)
class OracleSettings:
    """Constructor settings of the devnet PriceOracles the deploy creates."""

    decimals: int = 8
    quorum: int = 2
    max_deviation_bps: int = 1000
    max_report_age: int = 3600


@dataclass(frozen=True)
class MarketSpec:
    """One market of the config: its feed (existing or to deploy) and parameter overrides."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    initial_price: Decimal | None = None
    oracle: str | None = None
    # direct trades at the current oracle price; off unless the config turns it on (devnets)
    atomic_trading: bool = False

    def market_config(self, oracle: str) -> MarketConfig:
        """The engine's parameters: MarketConfig defaults with this market's human overrides."""
        unknown = set(self.params) - _PARAM_FIELDS
        if unknown:
            raise ValueError(f"{self.name}: unknown market parameters {sorted(unknown)}")
        values = {k: _param_to_chain(k, v) for k, v in self.params.items()}
        off_step = sorted(k for k in STEPPED_FIELDS if values.get(k, 0) % FRACTION_STEP)
        if off_step:
            raise ValueError(f"{self.name}: {', '.join(off_step)} must be a multiple of 1e-10")
        config = MarketConfig(oracle=oracle, **values)
        if "max_oi_vault_ratio" not in values:
            config = config.with_(max_oi_vault_ratio=loss_bounding_ratio(config.breaker_move))
        return config

    def loss_bound_problem(self, max_pnl_factor: int = DEFAULT_MAX_PNL_FACTOR) -> str | None:
        """Rule S3: a price move the breaker lets through must not create more profit on one side
        than the vault pays (max_pnl_factor of it). None when the market keeps that bound."""
        config = self.market_config("0x" + "00" * 20)
        bound = loss_bounding_ratio(config.breaker_move, max_pnl_factor)
        ratio = config.max_oi_vault_ratio
        if ratio != 0 and ratio <= bound:
            return None
        shown = "no cap" if ratio == 0 else f"{Decimal(ratio) / WAD:f}"
        move = (Decimal(config.breaker_move) * 100 / WAD).normalize()
        return (f"{self.name}: max_oi_vault_ratio {shown} lets a {move:f} % "
                f"move create more profit than max_pnl_factor {Decimal(max_pnl_factor) / WAD:f} of "
                f"the vault (rule S3); at most {Decimal(bound) / WAD:f}")


def loss_bounding_ratio(breaker_move: int, max_pnl_factor: int = DEFAULT_MAX_PNL_FACTOR) -> int:
    """The largest side-notional-to-vault ratio whose profit after a breaker move stays within
    max_pnl_factor of the vault: max_pnl_factor / breaker_move, rounded down (18 decimals)."""
    return max_pnl_factor * WAD // breaker_move


@dataclass(frozen=True)
class DevnetFunding:
    """Local networks: devnet USD for the test accounts, and the LP vault's first deposit."""

    traders: tuple[int, ...]
    trader_mint: Decimal
    lp: int
    lp_mint: Decimal
    lp_deposit: Decimal


@dataclass(frozen=True)
class NetworkPlan:
    """What config/markets.yaml asks for on one network."""

    network: str
    collateral: str
    oracle: OracleSettings
    markets: tuple[MarketSpec, ...]
    reporters: tuple[str, ...] = ()
    devnet: DevnetFunding | None = None

    @property
    def deploys_devnet_token(self) -> bool:
        return self.collateral == DEVNET_COLLATERAL

    @classmethod
    def load(cls, network_choice: str, path: Path = DEFAULT_CONFIG) -> NetworkPlan:
        """The plan for a network (``ecosystem:network[:provider]``) from a config file.

        The whole file is checked against the schema first (vyperp.config_schema): unknown keys,
        wrong types and YAML syntax errors raise ConfigError (a ValueError) naming the file, the
        market and the key, before the deployer needs a provider or sends anything.
        """
        key = network_key(network_choice)
        config = load_config(Path(path))
        if key not in config:
            raise ManifestError(f"{path} has no section for {key} (has: {', '.join(config)})")
        section = config[key]
        devnet = section.get("devnet")
        return cls(
            network=key,
            collateral=str(section.get("collateral", DEVNET_COLLATERAL)),
            oracle=OracleSettings(**section.get("oracle", {})),
            markets=tuple(
                MarketSpec(
                    name=name,
                    description=market.get("description", name.replace("-", " / ")),
                    params=dict(market.get("params", {})),
                    initial_price=_decimal_or_none(market.get("initial_price")),
                    oracle=market.get("oracle"),
                    atomic_trading=bool(market.get("atomic_trading", False)),
                )
                for name, market in section.get("markets", {}).items()
            ),
            reporters=tuple(section.get("reporters", ())),
            devnet=None
            if devnet is None
            else DevnetFunding(
                traders=tuple(devnet["traders"]),
                trader_mint=Decimal(str(devnet["trader_mint"])),
                lp=int(devnet["lp"]),
                lp_mint=Decimal(str(devnet["lp_mint"])),
                lp_deposit=Decimal(str(devnet["lp_deposit"])),
            ),
        )


@dataclass
class DeployReport:
    """What one run did: the manifest it left, and what it deployed or changed."""

    deployment: Deployment | None = None
    deployed: list[str] = field(default_factory=list)
    listed_markets: list[str] = field(default_factory=list)
    funded: list[str] = field(default_factory=list)
    replaced_manifest: list[str] = field(default_factory=list)
    # S10: per listed market, its queued parameter change: (effective_at, {field: (now, queued)})
    pending_changes: dict[str, tuple[int, dict[str, tuple[Any, Any]]]] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return bool(self.deployed or self.listed_markets or self.funded)


def deploy_network(
    project,
    plan: NetworkPlan,
    deployer,
    *,
    reporters: Sequence = (),
    local_accounts: Sequence = (),
    root: Path = DEFAULT_ROOT,
    log: Callable[[str], None] = lambda message: None,
    force: bool = False,
) -> DeployReport:
    """Brings the network to the plan and writes its manifest under ``root``.

    Refuses, before sending anything, a plan whose markets break rule S3 (open interest a
    breaker move can turn into more profit than the vault pays), unless ``force``.

    ``reporters`` are the accounts that seed each new devnet oracle's first price (local
    networks; on other networks the reporters publish it themselves). ``local_accounts`` are
    the test accounts that ``plan.devnet`` funds by index.
    """
    problems = [p for p in (spec.loss_bound_problem() for spec in plan.markets) if p]
    if problems and not force:
        raise ValueError("; ".join(problems) + " (pass --force to deploy anyway)")
    report = DeployReport()
    deployment = _reusable_manifest(project, plan, root, report, log)
    if deployment is None:
        deployment = _deploy_protocol(project, plan, deployer, report, log)
        deployment.save(root)
    contracts = deployment.contracts(project)
    if deployment.order_book is None:
        book = deploy_order_book(contracts.as_protocol(), deployer, project=project, settings={})
        deployment.order_book = book.address
        deployment.save(root)
        report.deployed.append("OrderBook")
        log(f"deployed the order book at {book.address}")
    order_book = project.OrderBook.at(deployment.order_book)
    token_decimals = int(contracts.token.decimals())

    oracle_reporters = list(plan.reporters) or [account.address for account in reporters]
    for spec in plan.markets:
        if spec.name in deployment.markets:
            continue
        entry = _list_market(
            project, contracts, spec, plan.oracle, deployer, oracle_reporters, report, log
        )
        # saved at once: a run that fails later must not list the market a second time
        deployment.markets[spec.name] = entry
        deployment.save(root)
        report.listed_markets.append(spec.name)
        log(f"listed {spec.name} as market {entry.id} (oracle {entry.oracle})")
        if spec.initial_price is not None and reporters and spec.oracle is None:
            seed_price(
                project.PriceOracle.at(entry.oracle),
                spec.initial_price,
                reporters[: plan.oracle.quorum],
            )
    # every listed market takes orders, with the default window and keeper fee (docs/orders.md);
    # checked on every run, so a run that stopped between listing and this step completes it
    for entry in deployment.markets.values():
        if order_book.market_settings(entry.id).max_age == 0:
            configure_market(order_book, deployer, entry.id, OrderSettings(), token_decimals)

    if plan.devnet is not None and local_accounts:
        _fund_devnet(contracts, plan.devnet, deployer, local_accounts, report, log)
    _report_pending_changes(project, deployment, report, log)
    report.deployment = deployment
    return report


def _report_pending_changes(project, deployment: Deployment, report: DeployReport, log) -> None:
    """Names every market parameter change the engine holds queued (rule S10: a tightening
    waits `param_delay` while the market has open interest), with when anyone may apply it.
    The deployer never changes a listed market; this tells the operator what will change."""
    engine = engine_contract(project, deployment.engine)
    for name, entry in deployment.markets.items():
        queued, effective_at = engine.pending_market_params(entry.id)
        if int(effective_at) == 0:
            continue
        now, then = vars(MarketConfig.from_tuple(engine.params(entry.id))), vars(MarketConfig.from_tuple(queued))
        changes = {key: (now[key], then[key]) for key in now if now[key] != then[key]}
        report.pending_changes[name] = (int(effective_at), changes)
        when = datetime.datetime.fromtimestamp(int(effective_at), datetime.timezone.utc)
        fields = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changes.items())
        log(f"{name}: a parameter change is queued until {when:%Y-%m-%d %H:%M:%S} UTC ({fields}); "
            f"anyone may apply it then (apply_change({entry.id}))")


def seed_price(oracle, price: Decimal, reporters: Sequence) -> None:
    """Publishes a first round: each reporter (as many as the oracle's quorum; they must hold
    their keys, as test accounts do) signs an observation and the first transmits them."""
    from vyperp.oracle_signing import transmit_round

    answer = int(Decimal(price) * 10 ** oracle.decimals())
    transmit_round(oracle, answer, list(reporters), reporters[0])


def list_market(
    contracts,
    admin,
    config: MarketConfig,
    reporters: Sequence[str],
    oracle_decimals: int,
    *,
    atomic_trading: bool = False,
) -> MarketEntry:
    """Lists a market on the engine through the deploy helpers; returns its manifest entry."""
    market_id = add_market(contracts.as_protocol(), admin, config, atomic_trading=atomic_trading)
    return MarketEntry(
        id=market_id,
        oracle=str(config.oracle),
        oracle_decimals=oracle_decimals,
        reporters=tuple(reporters),
    )


# ---- steps ----


def _reusable_manifest(
    project, plan: NetworkPlan, root: Path, report: DeployReport, log
) -> Deployment | None:
    """The existing manifest when it describes the connected chain; None when there is none.

    A local chain that was restarted leaves a stale manifest behind, which is replaced; on any
    other network a mismatch stops the run rather than forget a live deployment.
    """
    if not Deployment.exists(plan.network, root):
        return None
    deployment = Deployment.load(plan.network, root)
    problems = deployment.check_chain(chain.chain_id, chain.provider.get_code)
    if not problems:
        problems = _market_mismatches(project, deployment)
    if not problems:
        log(f"reusing the deployment in {Deployment.path_for(plan.network, root)}")
        return deployment
    if not chain.provider.network.is_local:
        raise ManifestError("the manifest does not match the chain: " + "; ".join(problems))
    log("replacing a stale manifest: " + "; ".join(problems))
    report.replaced_manifest = problems
    return None


def _market_mismatches(project, deployment: Deployment) -> list[str]:
    engine = engine_contract(project, deployment.engine)
    count = engine.market_count()
    problems = []
    for name, entry in deployment.markets.items():
        if entry.id >= count:
            problems.append(f"{name}: no market {entry.id} on the engine")
        elif engine.params(entry.id).oracle != entry.oracle:
            problems.append(f"{name}: market {entry.id} reads another oracle")
    return problems


def _deploy_protocol(project, plan: NetworkPlan, deployer, report: DeployReport, log) -> Deployment:
    token = None if plan.deploys_devnet_token else plan.collateral
    # the first deployment lands in the next block: indexers start there
    deploy_block = chain.blocks.head.number + 1
    protocol = deploy_protocol(project, deployer, token=token)
    if plan.deploys_devnet_token:
        report.deployed.append("DevnetUSD")
    report.deployed += ["EngineAdmin", "EngineRisk", "Engine", "LiquidityVault", "EngineLens"]
    log(f"deployed the protocol: engine {protocol.engine.address}")
    return Deployment(
        network=plan.network,
        chain_id=chain.chain_id,
        deploy_block=deploy_block,
        token=str(getattr(protocol.token, "address", protocol.token)),
        engine=protocol.engine.address,
        engine_admin=protocol.engine.admin_facet(),
        engine_risk=protocol.engine.risk_facet(),
        vault=protocol.vault.address,
        lens=protocol.lens.address,
    )


def _list_market(
    project,
    contracts,
    spec: MarketSpec,
    settings: OracleSettings,
    deployer,
    reporters: Sequence[str],
    report: DeployReport,
    log,
) -> MarketEntry:
    if spec.oracle is not None:
        feed = project.PriceOracle.at(spec.oracle)
        return list_market(
            contracts,
            deployer,
            spec.market_config(spec.oracle),
            (),
            feed.decimals(),
            atomic_trading=spec.atomic_trading,
        )
    if len(reporters) < settings.quorum:
        raise ManifestError(
            f"{spec.name}: {len(reporters)} reporters for a quorum of {settings.quorum}"
        )
    oracle = deploy_oracle(
        project,
        deployer,
        reporters,
        description=spec.description,
        decimals=settings.decimals,
        quorum=settings.quorum,
        max_deviation_bps=settings.max_deviation_bps,
        max_report_age=settings.max_report_age,
    )
    report.deployed.append(f"PriceOracle {spec.name}")
    log(f"deployed the {spec.name} oracle at {oracle.address}")
    return list_market(
        contracts,
        deployer,
        spec.market_config(oracle.address),
        reporters,
        settings.decimals,
        atomic_trading=spec.atomic_trading,
    )


def _fund_devnet(
    contracts, funding: DevnetFunding, deployer, local_accounts: Sequence, report: DeployReport, log
) -> None:
    """Mints devnet USD and seeds the vault once: a vault with shares means this already ran."""
    if contracts.vault.totalSupply() > 0:
        return
    token, decimals = contracts.token, contracts.token.decimals()
    for index in funding.traders:
        token.mint(
            local_accounts[index], to_token_units(funding.trader_mint, decimals), sender=deployer
        )
        report.funded.append(f"test account {index}: {funding.trader_mint} dUSD")
    lp = local_accounts[funding.lp]
    token.mint(lp, to_token_units(funding.lp_mint, decimals), sender=deployer)
    deposit = to_token_units(funding.lp_deposit, decimals)
    token.approve(contracts.vault, deposit, sender=lp)
    contracts.vault.deposit(deposit, lp, sender=lp)
    report.funded.append(
        f"test account {funding.lp}: {funding.lp_mint} dUSD, {funding.lp_deposit} into the vault"
    )
    log("funded the devnet test accounts: " + "; ".join(report.funded))


def _param_to_chain(name: str, value: Any) -> Any:
    if name in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        return value
    if name in _SECONDS_FIELDS:
        return int(value)
    return to_wad(value)


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
