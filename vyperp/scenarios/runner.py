"""Plays a scenario on a connected local chain: a fresh deployment by vyperp's deployer, then one
round per ``round_seconds`` of chain time.

A round, at chain time ``start + k * round_seconds``:
1. every market's oracle publishes its path's price (its reporters sign, one transmits: rule
   S9), unless the path is silent this round;
2. the funding keeper (`vyperp.keepers.funding.FundingKeeper`) checkpoints, and confirms the
   price of a market the breaker halted once the feed's rounds agree (S4);
3. the population's blocks: LP mints, then closes and LP actions, then openings alone;
   observed and judged after the openings (S3 needs the state the engine checked them in);
4. the liquidator and the ADL keeper (`vyperp.keepers.liquidator`, `vyperp.keepers.adl`) step
   once each, as the devnet's liquidation loop does;
5. observed and judged again: this is the round's row in the report, and the accounts still
   liquidatable here are "left liquidatable after a keeper round".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from ape.exceptions import ContractLogicError

from vyperp import roles
from vyperp.chain import ensure_multicall, node_url
from vyperp.keepers.adl import AdlKeeper
from vyperp.keepers.funding import FundingKeeper
from vyperp.keepers.liquidator import Liquidator
from vyperp.keepers.rpc import RpcClient
from vyperp.network_deploy import MarketSpec, NetworkPlan, OracleSettings, deploy_network
from vyperp.oracle_signing import transmit_round
from vyperp.scenarios.observe import FROM_INSURANCE, FROM_VAULT, Observer, Snapshot
from vyperp.scenarios.population import Population, RoundPlan
from vyperp.scenarios.prices import round_prices
from vyperp.scenarios.rules import RuleVerdict, SolvencyJudge
from vyperp.scenarios.schema import LiquidityProvider, Scenario, ScenarioRunError

WAD = 10**18
NETWORK = "ethereum:local"


@dataclass
class RoundRow:
    """One round as the report shows it (after the keepers)."""

    round: int
    hours: float
    snapshot: Snapshot
    published: dict[str, Decimal | None]
    opened: int
    closed: int
    stopped: int
    refused: int
    lp_deposited: Decimal
    liquidations: int
    adl: int
    insurance_used: int  # 18 decimals, this round
    vault_covered: int  # bad debt the vault absorbed this round
    profit_capped: int  # profit not paid by the S2 cap this round
    liquidatable_left: int
    worst_left: float | None  # lowest equity / maintenance margin among those left
    rule_values: dict[str, float | None]


@dataclass
class ScenarioResult:
    scenario: Scenario
    rows: list[RoundRow]
    verdicts: dict[str, RuleVerdict]
    keeper_errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(verdict.passed for verdict in self.verdicts.values())

    def figures(self) -> dict[str, float | int | None]:
        """The headline figures docs/scenarios.md records."""
        prices = [row.snapshot.share_price for row in self.rows if row.snapshot.share_price]
        peak, drawdown = 0.0, 0.0
        for price in prices:
            peak = max(peak, price)
            drawdown = max(drawdown, 1 - price / peak)
        left = [row for row in self.rows if row.liquidatable_left]
        worst = min((row.worst_left for row in left if row.worst_left is not None), default=None)
        return {
            "rounds": len(self.rows) - 1,
            "bad_debt": sum(r.insurance_used + r.vault_covered for r in self.rows) / WAD,
            "insurance_used": sum(r.insurance_used for r in self.rows) / WAD,
            "vault_covered": sum(r.vault_covered for r in self.rows) / WAD,
            "profit_capped": sum(r.profit_capped for r in self.rows) / WAD,
            "vault_drawdown": drawdown,
            "share_price_start": prices[0] if prices else None,
            "share_price_end": prices[-1] if prices else None,
            "liquidations": sum(r.liquidations for r in self.rows),
            "adl": sum(r.adl for r in self.rows),
            "opened": sum(r.opened for r in self.rows),
            "refused": sum(r.refused for r in self.rows),
            "max_left_liquidatable": max((r.liquidatable_left for r in self.rows), default=0),
            "worst_left_margin_ratio": worst,
        }


def run_scenario(scenario: Scenario, project, accounts, provider, *,
                 on_round: Callable[[int, int], None] = lambda done, total: None
                 ) -> ScenarioResult:
    """Deploys and plays ``scenario`` on ``provider`` (a local chain Ape is connected to)."""
    ensure_multicall(provider)
    test_accounts = accounts.test_accounts
    admin = test_accounts[roles.ADMIN]
    reporters = roles.reporters_of(test_accounts)
    with tempfile.TemporaryDirectory(prefix="vyperp-scenario-") as manifests:
        report = deploy_network(project, _plan(scenario), admin, reporters=reporters,
                                root=Path(manifests))
    deployment = report.deployment
    contracts = deployment.contracts(project)
    market_ids = {name: entry.id for name, entry in deployment.markets.items()}
    rpc = RpcClient(node_url(provider), timeout=120)
    seed_lp = LiquidityProvider(name="seed", deposit=scenario.vault_deposit)
    population = Population(scenario.model_copy(update={"lps": [seed_lp, *scenario.lps]}),
                            contracts, market_ids, rpc, funder=str(admin.address))
    population.fund()
    liquidation_signer = test_accounts[roles.LIQUIDATION_KEEPER]
    funding = FundingKeeper(contracts.engine, test_accounts[roles.FUNDING_KEEPER])
    keeper_chain = {"deploy_block": deployment.deploy_block, "chain_id": deployment.chain_id}
    liquidator = Liquidator(contracts.engine, contracts.lens, liquidation_signer,
                            rpc=RpcClient(node_url(provider)), **keeper_chain)
    adl = AdlKeeper(contracts.engine, contracts.lens, liquidation_signer,
                    rpc=RpcClient(node_url(provider)), **keeper_chain)
    observer = Observer(contracts, market_ids, traders=[t.address for t in population.traders],
                        holders=[lp.address for lp in population.lps]
                        + [str(liquidation_signer.address)], rpc=rpc)
    signers = reporters[: scenario.oracle.quorum]
    prices = {name: round_prices(scenario, market, scenario.seed + index)
              for index, (name, market) in enumerate(scenario.markets.items())}

    judge = SolvencyJudge()
    rows: list[RoundRow] = []
    keeper_errors: list[str] = []
    start = int(provider.get_block("latest").timestamp) + scenario.round_seconds
    previous = observer.snapshot()
    for k in range(scenario.rounds + 1):
        where = f"round {k}"
        first_block = int(provider.get_block("latest").number) + 1
        _open_round(rpc, start + k * scenario.round_seconds)
        published = {name: path[k] for name, path in prices.items()}
        for name, price in published.items():
            if price is not None:
                oracle = contracts.oracles[name]
                answer = int(price * 10 ** deployment.markets[name].oracle_decimals)
                try:
                    transmit_round(oracle, answer, signers, signers[0])
                except ContractLogicError as error:
                    raise ScenarioRunError(f"{where}: the {name} oracle refused {price}: "
                                           f"{error.revert_message}") from None
        _keeper(keeper_errors, where, "funding", funding.step)
        plan = population.plan(k)
        refused = sum(population.send_block(block)
                      for block in (plan.funding, plan.closes + plan.lp))
        after_closes = observer.snapshot() if plan.opens else previous
        refused += population.send_block(plan.opens)
        trades = observer.snapshot()
        judge.judge(trades, f"{where} after trades", previous=after_closes, openings_only=True,
                    events=[])
        for name, keeper in (("liquidator", liquidator), ("adl", adl)):
            step = _keeper(keeper_errors, where, name, keeper.step)
            if step is not None and step.retryable_error:
                keeper_errors.append(f"{where}: {name}: {step.retryable_error}")
        snapshot = observer.snapshot()
        events = observer.risk_events(first_block, snapshot.block)
        values = judge.judge(snapshot, f"{where} after keepers", previous=None,
                             openings_only=False, events=events)
        rows.append(_row(k, scenario, snapshot, published, plan, refused, events, values))
        previous = snapshot
        on_round(k + 1, scenario.rounds + 1)
    return ScenarioResult(scenario, rows, judge.verdicts, keeper_errors)


def _plan(scenario: Scenario) -> NetworkPlan:
    """The deployer's plan: devnet collateral, the scenario's oracles, its markets."""
    return NetworkPlan(
        network=NETWORK,
        collateral="devnet",
        oracle=OracleSettings(**scenario.oracle.model_dump()),
        markets=tuple(
            MarketSpec(
                name=name,
                description=name.replace("-", " / "),
                params={key: value for key, value in market.params.model_dump().items()
                        if value is not None},
                initial_price=market.initial_price,
                atomic_trading=True,
            )
            for name, market in scenario.markets.items()
        ),
    )


def _open_round(rpc: RpcClient, timestamp: int) -> None:
    """Mines an empty block at the round's time, so that even a round where nothing is sent (a
    silent feed, nobody trading) is observed at its own time."""
    latest = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    if timestamp <= latest:
        raise ScenarioRunError(f"the chain is at {latest}, past the round's time {timestamp}: "
                               "a round took longer than round_seconds of chain time")
    rpc.call("evm_mine", [timestamp])


def _keeper(errors: list[str], where: str, name: str, step: Callable):
    """A keeper's step; an exception is recorded (the report lists it) and the round goes on,
    as a keeper process would go on to its next step."""
    try:
        return step()
    except Exception as error:  # noqa: BLE001 - recorded; the run judges what follows
        errors.append(f"{where}: {name}: {type(error).__name__}: {str(error)[:200]}")
        return None


def _row(k: int, scenario: Scenario, snapshot: Snapshot, published, plan: RoundPlan,
         refused: int, events: list, values) -> RoundRow:
    shortfalls = [e for e in events if e.name == "ShortfallCovered"]
    left = ([s for s in snapshot.statuses.values() if s.liquidatable]
            if snapshot.statuses is not None else [])
    return RoundRow(
        round=k,
        hours=k * scenario.round_seconds / 3600,
        snapshot=snapshot,
        published=published,
        opened=len(plan.opens),
        closed=len(plan.closes),
        stopped=plan.stopped,
        refused=refused,
        lp_deposited=plan.lp_deposited,
        liquidations=sum(e.name == "Liquidation" for e in events),
        adl=sum(e.name == "Deleveraged" for e in events),
        insurance_used=sum(e.args["amount"] for e in shortfalls
                           if e.args["source"] == FROM_INSURANCE),
        vault_covered=sum(e.args["amount"] for e in shortfalls if e.args["source"] == FROM_VAULT),
        profit_capped=sum(e.args["realized_pnl"] - e.args["paid"] for e in events
                          if e.name == "ProfitCapped"),
        liquidatable_left=len(left),
        worst_left=min((s.equity / s.maintenance_margin for s in left if s.maintenance_margin),
                       default=None),
        rule_values=values,
    )
