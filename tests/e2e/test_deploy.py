"""`ape run deploy`'s logic on the test chain: first run, manifest, idempotent reruns."""

import json
import shutil
from dataclasses import replace
from decimal import Decimal

import pytest

from vyperp.manifest import Deployment
from vyperp.network_deploy import MarketSpec, deploy_network
from vyperp.units import WAD

NETWORK = "ethereum:local"
PROTOCOL_CONTRACTS = ["DevnetUSD", "EngineAdmin", "EngineRisk", "Engine", "LiquidityVault", "EngineLens", "OrderBook"]
MARKETS = ["BTC-USD", "ETH-USD", "SOL-USD"]


def copy_manifest(manifest_root, tmp_path):
    shutil.copy(Deployment.path_for(NETWORK, manifest_root), Deployment.path_for(NETWORK, tmp_path))
    return tmp_path


def test_first_run_deploys_the_protocol_and_one_oracle_per_market(first_deploy):
    assert first_deploy.deployed == PROTOCOL_CONTRACTS + [f"PriceOracle {name}" for name in MARKETS]
    assert first_deploy.listed_markets == MARKETS
    assert first_deploy.replaced_manifest == []


def test_manifest_has_the_shared_format_and_describes_the_chain(
    project, first_deploy, manifest_root, chain, reporters
):
    path = Deployment.path_for(NETWORK, manifest_root)
    assert path.name == "ethereum_local.json"
    raw = json.loads(path.read_text())
    assert set(raw) == {
        "network",
        "chain_id",
        "deploy_block",
        "token",
        "engine",
        "engine_admin",
        "engine_risk",
        "vault",
        "lens",
        "order_book",
        "markets",
    }
    assert raw["network"] == NETWORK and raw["chain_id"] == chain.chain_id
    engine = project.Engine.at(raw["engine"])
    assert engine.admin_facet() == raw["engine_admin"]
    assert engine.risk_facet() == raw["engine_risk"]
    assert {name: market["id"] for name, market in raw["markets"].items()} == {
        "BTC-USD": 0,
        "ETH-USD": 1,
        "SOL-USD": 2,
    }
    for market in raw["markets"].values():
        assert market["oracle_decimals"] == 8
        assert market["reporters"] == [reporter.address for reporter in reporters]

    # the provider part of a network choice is ignored
    loaded = Deployment.load("ethereum:local:foundry", manifest_root)
    assert loaded == first_deploy.deployment
    assert loaded.check_chain(chain.chain_id, chain.provider.get_code) == []
    # deploy_block is where indexers start: the token appears in exactly that block
    assert chain.provider.get_code(loaded.token, block_id=loaded.deploy_block - 1) == b""
    assert chain.provider.get_code(loaded.token, block_id=loaded.deploy_block) != b""


def test_manifest_check_names_what_does_not_match(first_deploy, chain):
    deployment = first_deploy.deployment
    assert deployment.check_chain(1, chain.provider.get_code) == [
        f"chain id is 1, the manifest was written for {chain.chain_id}"
    ]
    moved = replace(deployment, lens="0x000000000000000000000000000000000000dEaD")
    assert moved.check_chain(chain.chain_id, chain.provider.get_code) == [
        "no code at the lens address 0x000000000000000000000000000000000000dEaD"
    ]


def test_markets_carry_the_configured_parameters(sdk, plan):
    for spec in plan.markets:
        market = sdk.market(spec.name)
        assert market.config == spec.market_config(sdk.deployment.market(spec.name).oracle)
    btc, sol = sdk.market("BTC-USD"), sdk.market("SOL-USD")
    assert (btc.config.imr, btc.config.mmr, btc.config.skew_scale) == (
        WAD // 20,
        WAD // 40,
        100_000 * WAD,
    )
    assert btc.max_leverage == 20
    assert (sol.config.dynamic_funding, sol.config.taker_fee, sol.config.max_oi_vault_ratio) == (
        True,
        8 * WAD // 10_000,
        3 * WAD,
    )


def test_every_oracle_published_a_first_price_from_a_quorum_of_reporters(sdk, reporters):
    expected = {"BTC-USD": 95_000, "ETH-USD": 3_500, "SOL-USD": 150}
    for name, price in expected.items():
        oracle = sdk.contracts.oracles[name]
        assert oracle.quorum() == 2
        assert list(oracle.reporters()) == [reporter.address for reporter in reporters]
        assert oracle.latestRound() == 1
        assert oracle.latestAnswer() == price * 10**8
        assert sdk.market(name).index_price == price


def test_devnet_accounts_are_funded_and_the_vault_is_seeded(sdk, trader, other_trader, lp):
    assert sdk.wallet_balance(trader) == 1_000_000
    assert sdk.wallet_balance(other_trader) == 1_000_000
    assert sdk.wallet_balance(lp) == 5_000_000
    position = sdk.lp_position(lp)
    assert position.shares == 5_000_000 and position.value == 5_000_000
    assert sdk.contracts.vault.totalAssets() == 5_000_000 * 10**6


def test_second_run_reuses_everything_and_sends_no_transaction(
    project, plan, admin, reporters, accounts, manifest_root, first_deploy, chain
):
    path = Deployment.path_for(NETWORK, manifest_root)
    manifest_before, head_before = path.read_text(), chain.blocks.head.number

    report = deploy_network(
        project, plan, admin, reporters=reporters, local_accounts=accounts, root=manifest_root
    )

    assert not report.changed_anything
    assert report.deployment == first_deploy.deployment
    assert chain.blocks.head.number == head_before
    assert path.read_text() == manifest_before


def test_a_market_new_in_the_config_is_all_a_rerun_deploys(
    project, plan, admin, reporters, accounts, manifest_root, first_deploy, tmp_path, sdk
):
    root = copy_manifest(manifest_root, tmp_path)
    avax = MarketSpec(
        name="AVAX-USD",
        description="AVAX / USD",
        params={"imr": "0.2", "mmr": "0.1"},
        initial_price=Decimal(35),
    )

    report = deploy_network(
        project,
        replace(plan, markets=plan.markets + (avax,)),
        admin,
        reporters=reporters,
        local_accounts=accounts,
        root=root,
    )

    assert report.deployed == ["PriceOracle AVAX-USD"]
    assert report.listed_markets == ["AVAX-USD"] and report.funded == []
    manifest = Deployment.load(NETWORK, root)
    assert manifest.protocol_addresses() == first_deploy.deployment.protocol_addresses()
    assert manifest.market_ids == {"BTC-USD": 0, "ETH-USD": 1, "SOL-USD": 2, "AVAX-USD": 3}
    engine = sdk.contracts.engine
    assert engine.market_count() == 4
    assert engine.index_price(3) == 35 * WAD
    assert engine.params(3).imr == WAD // 5


def test_a_market_whose_oi_cap_breaks_the_loss_bound_is_refused_before_sending_anything(
    project, plan, admin, reporters, accounts, manifest_root, first_deploy, tmp_path, chain
):
    """Rule S3: at a 15 % breaker move, a side may hold at most 0.5 / 0.15 = 3.33 times the vault
    so the profit a permitted move creates stays within max_pnl_factor (0.5) of it."""
    root = copy_manifest(manifest_root, tmp_path)
    head_before = chain.blocks.head.number
    loose = MarketSpec(name="DOGE-USD", description="DOGE / USD", params={"max_oi_vault_ratio": 5},
                       initial_price=Decimal("0.2"))
    uncapped = MarketSpec(name="PEPE-USD", description="PEPE / USD", params={"max_oi_vault_ratio": 0},
                          initial_price=Decimal("0.00001"))
    with pytest.raises(ValueError) as refused:
        deploy_network(project, replace(plan, markets=plan.markets + (loose, uncapped)), admin,
                       reporters=reporters, local_accounts=accounts, root=root)
    assert str(refused.value) == (
        "DOGE-USD: max_oi_vault_ratio 5 lets a 15 % move create more profit than "
        "max_pnl_factor 0.5 of the vault (rule S3); at most 3.333333333333333333; "
        "PEPE-USD: max_oi_vault_ratio no cap lets a 15 % move create more profit "
        "than max_pnl_factor 0.5 of the vault (rule S3); at most 3.333333333333333333 "
        "(pass --force to deploy anyway)"
    )
    assert chain.blocks.head.number == head_before

    report = deploy_network(project, replace(plan, markets=plan.markets + (loose,)), admin,
                            reporters=reporters, local_accounts=accounts, root=root, force=True)
    assert report.listed_markets == ["DOGE-USD"]


def test_a_market_without_an_oi_ratio_gets_the_loss_bounding_one():
    spec = MarketSpec(name="AVAX-USD", description="AVAX / USD", params={"breaker_move": "0.25"})
    assert spec.market_config("0x" + "00" * 20).max_oi_vault_ratio == 2 * WAD  # 0.5 / 0.25
    assert spec.loss_bound_problem() is None


def test_a_manifest_left_by_a_restarted_local_chain_is_replaced(
    project, plan, admin, reporters, accounts, manifest_root, first_deploy, tmp_path
):
    root = copy_manifest(manifest_root, tmp_path)
    dead = replace(
        Deployment.load(NETWORK, root), engine="0x000000000000000000000000000000000000dEaD"
    )
    dead.save(root)

    report = deploy_network(
        project, plan, admin, reporters=reporters, local_accounts=accounts, root=root
    )

    assert report.replaced_manifest == [
        "no code at the engine address 0x000000000000000000000000000000000000dEaD"
    ]
    assert report.deployed[: len(PROTOCOL_CONTRACTS)] == PROTOCOL_CONTRACTS
    fresh = Deployment.load(NETWORK, root)
    assert fresh.engine not in (dead.engine, first_deploy.deployment.engine)
    assert fresh.check_chain(report.deployment.chain_id, project.provider.get_code) == []


def test_a_rerun_names_the_parameter_changes_the_engine_holds_queued(
    project, plan, admin, reporters, accounts, manifest_root, first_deploy, sdk, trader, chain
):
    """S10: raising a market's mmr while it has open interest is queued for param_delay; the
    deployer's rerun says what is queued and from when it may be applied, and sends nothing."""
    deployment = first_deploy.deployment
    eth = deployment.markets["ETH-USD"].id
    sdk.deposit(Decimal(100_000), trader)
    sdk.open_position("ETH-USD", Decimal(1), "long", trader)
    engine = sdk.contracts.engine
    current = engine.params(eth)
    raised = list(current)
    raised[10] = (current.mmr + current.imr) // 2  # mmr, still below imr
    engine.set_market_params(eth, raised, sender=admin)
    queued_until = engine.pending_market_params(eth)[1]
    assert queued_until == chain.blocks.head.timestamp + engine.param_delay()
    head_before, lines = chain.blocks.head.number, []

    report = deploy_network(
        project, plan, admin, reporters=reporters, local_accounts=accounts, root=manifest_root, log=lines.append
    )

    assert report.pending_changes == {"ETH-USD": (queued_until, {"mmr": (current.mmr, (current.mmr + current.imr) // 2)})}
    assert any(line.startswith("ETH-USD: a parameter change is queued until") and "mmr" in line for line in lines)
    assert not report.changed_anything and chain.blocks.head.number == head_before
