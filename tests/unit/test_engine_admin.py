"""Admin and guardian entry points of contracts/Engine.vy and the market parameter
bounds of contracts/modules/markets.vy, on titanoboa.

The clock moves only when a test moves it (`boa.env.time_travel`) and every call runs at
`now()`, so funding and breaker expectations are computed from the timestamps the calls ran at.
"""

import boa
import pytest
from eth.exceptions import Revert
from vyper.compiler.output import build_layout_output

from boa_protocol import advance_to, contract, deploy_oracle, events, now, reverts, single
from vyperp.params import FRACTION_STEP, STEPPED_FIELDS
from vyperp.units import WAD, to_wad

ZERO = "0x0000000000000000000000000000000000000000"
MISSING_ROLE = "access_control: account is missing role"
MAX_UINT128 = 2**128 - 1
FUNDING_PERIOD = 8 * 3600
BTC = 150_000
BUY_LIMIT = to_wad(1_000_000)
SELL_LIMIT = 1


@pytest.fixture
def admin_role(engine):
    return engine.DEFAULT_ADMIN_ROLE()


@pytest.fixture
def guardian_role(engine):
    return engine.GUARDIAN_ROLE()


@pytest.fixture(scope="module")
def admin_facet(engine):
    """The EngineAdmin contract the protocol's engine delegates to; new engines delegate to it too."""
    return contract("EngineAdmin").at(engine.admin_facet())


@pytest.fixture(scope="module")
def risk_facet(engine):
    """The EngineRisk contract the protocol's engine delegates to; new engines delegate to it too."""
    return contract("EngineRisk").at(engine.risk_facet())


@pytest.fixture
def new_engine(token, admin, guardian, admin_facet, risk_facet):
    """Factory: a new Engine over `collateral` (the protocol's token by default) with the
    protocol's facets, deployed by `deployer`; returns it and EngineAdmin's ABI at its address."""

    def deploy(deployer=admin, collateral=token):
        with boa.env.prank(deployer):
            address = contract("Engine").deploy(collateral, admin_facet, risk_facet, admin, guardian).address
        engine_admin = contract("EngineAdmin").at(address)
        # boa decodes an address's logs with the ABI registered last: the Engine's, as for the protocol
        return contract("Engine").at(address), engine_admin

    return deploy


@pytest.fixture
def long_position(engine, market, seeded_vault, deposit, trader):
    """The trader long 10 at 150,000 with 300,000 of collateral (5x); the timestamp it opened at."""
    deposit(trader, 300_000)
    opened_at = now()
    engine.modify_position(market, to_wad(10), BUY_LIMIT, sender=trader)
    return opened_at


def same_params(actual, expected):
    """Struct values equal field by field; addresses compare case-insensitively."""
    actual = tuple(actual)
    return actual[0].lower() == expected[0].lower() and actual[1:] == tuple(expected[1:])


# ---------------------------------------------------------------------------
# Constructor
# ---------------------------------------------------------------------------


def test_constructor_gives_admin_and_guardian_roles_and_drops_deployer(new_engine, admin, guardian, stranger):
    engine, engine_admin = new_engine(deployer=stranger)
    admin_role, guardian_role = engine.DEFAULT_ADMIN_ROLE(), engine.GUARDIAN_ROLE()
    assert engine.hasRole(admin_role, admin)
    assert engine.hasRole(guardian_role, guardian)
    assert not engine.hasRole(admin_role, stranger)
    assert not engine.hasRole(guardian_role, stranger)
    assert not engine.hasRole(admin_role, guardian)
    assert not engine.hasRole(guardian_role, admin)
    with reverts(MISSING_ROLE):
        engine_admin.set_fee_split(WAD // 2, sender=stranger)
    engine_admin.set_fee_split(WAD // 2, sender=admin)
    assert engine_admin.vault_fee_share() == WAD // 2


def test_constructor_deployer_who_is_admin_keeps_admin_role(new_engine, admin, guardian):
    engine, _ = new_engine(deployer=admin)
    assert engine.hasRole(engine.DEFAULT_ADMIN_ROLE(), admin)
    assert engine.hasRole(engine.GUARDIAN_ROLE(), guardian)
    assert not engine.hasRole(engine.GUARDIAN_ROLE(), admin)


def test_constructor_defaults(new_engine, token):
    engine, engine_admin = new_engine()
    assert engine.collateral_token() == token.address
    assert engine.collateral_scale() == 10**12
    assert engine.max_vault_utilization() == 8 * WAD // 10
    assert engine_admin.vault_fee_share() == 8 * WAD // 10
    assert not engine.paused()
    assert engine.market_count() == 0


@pytest.mark.parametrize("decimals", [0, 18])
def test_constructor_accepts_token_decimals_up_to_18(new_engine, admin, decimals):
    with boa.env.prank(admin):
        token = contract("DevnetUSD").deploy("Devnet USD", "dUSD", decimals)
    engine, _ = new_engine(collateral=token)
    assert engine.collateral_scale() == 10 ** (18 - decimals)


def test_constructor_rejects_token_with_19_decimals(new_engine, admin):
    with boa.env.prank(admin):
        token = contract("DevnetUSD").deploy("Devnet USD", "dUSD", 19)
    assert token.decimals() == 19
    with reverts("engine: token decimals above 18"):
        new_engine(collateral=token)


# ---------------------------------------------------------------------------
# The EngineAdmin facet
# ---------------------------------------------------------------------------


def compiler_layout(name):
    """What `vyper -f layout contracts/<name>.vy` prints, from the compilation boa already holds."""
    return build_layout_output(contract(name).compiler_data)


@pytest.mark.parametrize("facet", ["EngineAdmin", "EngineRisk"])
def test_facets_have_the_engines_storage_layout(facet):
    """A facet runs in the engine's storage: every slot must mean the same in both."""
    engine_layout = compiler_layout("Engine")
    facet_layout = compiler_layout(facet)
    assert engine_layout["storage_layout"] == facet_layout["storage_layout"]
    assert engine_layout["transient_storage_layout"] == facet_layout["transient_storage_layout"]
    assert "_accounts" in engine_layout["storage_layout"]["accounts"]


def test_facets_refuse_direct_calls(admin_facet, risk_facet, admin, stranger, market_config):
    with reverts("engine_admin: call through the engine"):
        admin_facet.set_fee_split(WAD // 2, sender=admin)
    with reverts("engine_admin: call through the engine"):
        admin_facet.add_market(market_config.as_tuple(), sender=admin)
    with reverts("engine_risk: call through the engine"):
        risk_facet.liquidate(stranger, 0, sender=admin)
    with reverts("engine_risk: call through the engine"):
        risk_facet.liquidate_many([(stranger, 0)], sender=admin)
    with reverts("engine_risk: call through the engine"):
        risk_facet.deleverage(0, stranger, 0, 1, sender=admin)


@pytest.mark.parametrize("missing, reason", [
    ("admin", "engine: admin facet is not a contract"),
    ("risk", "engine: risk facet is not a contract"),
])
def test_constructor_rejects_a_facet_without_code(
    token, admin, guardian, stranger, admin_facet, risk_facet, missing, reason
):
    facets = [stranger, risk_facet] if missing == "admin" else [admin_facet, stranger]
    with boa.env.prank(admin), reverts(reason):
        contract("Engine").deploy(token, *facets, admin, guardian)


def test_engine_fallback_rejects_unknown_selectors_and_ether(engine, stranger):
    with pytest.raises(Revert):
        boa.env.raw_call(engine.address, sender=stranger, data=bytes.fromhex("deadbeef"))
    # the stranger can pay the wei, so the revert is the engine's refusal
    boa.env.set_balance(stranger, 1)
    with pytest.raises(Revert):
        boa.env.raw_call(engine.address, sender=stranger, value=1)
    assert boa.env.get_balance(engine.address) == 0


# ---------------------------------------------------------------------------
# Role checks
# ---------------------------------------------------------------------------

ADMIN_CALLS = {
    "add_market": lambda engine_admin, cfg, market, who: engine_admin.add_market(cfg.as_tuple(), sender=who),
    "set_market_params": lambda engine_admin, cfg, market, who: engine_admin.set_market_params(
        market, cfg.as_tuple(), sender=who
    ),
    "set_fee_split": lambda engine_admin, cfg, market, who: engine_admin.set_fee_split(WAD // 2, sender=who),
    "set_max_vault_utilization": lambda engine_admin, cfg, market, who: engine_admin.set_max_vault_utilization(
        WAD // 2, sender=who
    ),
    "set_tier": lambda engine_admin, cfg, market, who: engine_admin.set_tier(who, 1, sender=who),
    "set_tier_leverage": lambda engine_admin, cfg, market, who: engine_admin.set_tier_leverage(
        1, 5 * WAD, sender=who
    ),
    "set_vault": lambda engine_admin, cfg, market, who: engine_admin.set_vault(who, sender=who),
    "set_atomic_trading": lambda engine_admin, cfg, market, who: engine_admin.set_atomic_trading(
        market, False, sender=who
    ),
    "set_order_book": lambda engine_admin, cfg, market, who: engine_admin.set_order_book(who, sender=who),
}


@pytest.mark.parametrize("caller", ["stranger", "guardian"])
@pytest.mark.parametrize("entry_point", sorted(ADMIN_CALLS))
def test_admin_entry_point_rejects_non_admin(
    engine, market_config, market, entry_point, caller, stranger, guardian, engine_admin
):
    who = {"stranger": stranger, "guardian": guardian}[caller]
    with reverts(MISSING_ROLE):
        ADMIN_CALLS[entry_point](engine_admin, market_config, market, who)


GUARDIAN_CALLS = {
    "pause": lambda engine_admin, market, who: engine_admin.pause(sender=who),
    "unpause": lambda engine_admin, market, who: engine_admin.unpause(sender=who),
    "clear_breaker": lambda engine_admin, market, who: engine_admin.clear_breaker(market, sender=who),
}


@pytest.mark.parametrize("caller", ["stranger", "admin"])
@pytest.mark.parametrize("entry_point", sorted(GUARDIAN_CALLS))
def test_guardian_entry_point_rejects_non_guardian(
    engine, market, guardian, entry_point, caller, stranger, admin, engine_admin
):
    if entry_point == "unpause":
        engine_admin.pause(sender=guardian)
    who = {"stranger": stranger, "admin": admin}[caller]
    with reverts(MISSING_ROLE):
        GUARDIAN_CALLS[entry_point](engine_admin, market, who)


def test_admin_grants_and_revokes_guardian_role(engine, admin, stranger, guardian_role, engine_admin):
    engine_admin.grantRole(guardian_role, stranger, sender=admin)
    assert single(engine_admin, "RoleGranted").account == stranger
    assert engine.hasRole(guardian_role, stranger)
    engine_admin.pause(sender=stranger)
    assert engine.paused()
    engine_admin.unpause(sender=stranger)
    engine_admin.revokeRole(guardian_role, stranger, sender=admin)
    assert single(engine_admin, "RoleRevoked").account == stranger
    assert not engine.hasRole(guardian_role, stranger)
    with reverts(MISSING_ROLE):
        engine_admin.pause(sender=stranger)


def test_admin_grants_and_revokes_admin_role(engine, admin, stranger, admin_role, engine_admin):
    engine_admin.grantRole(admin_role, stranger, sender=admin)
    engine_admin.set_fee_split(WAD // 4, sender=stranger)
    assert engine_admin.vault_fee_share() == WAD // 4
    engine_admin.revokeRole(admin_role, stranger, sender=admin)
    with reverts(MISSING_ROLE):
        engine_admin.set_fee_split(WAD // 3, sender=stranger)


def test_stranger_cannot_grant_or_revoke_roles(
    engine, guardian, stranger, admin_role, guardian_role, engine_admin
):
    with reverts(MISSING_ROLE):
        engine_admin.grantRole(admin_role, stranger, sender=stranger)
    with reverts(MISSING_ROLE):
        engine_admin.revokeRole(guardian_role, guardian, sender=stranger)
    with reverts(MISSING_ROLE):
        engine_admin.grantRole(admin_role, stranger, sender=guardian)
    assert engine.hasRole(guardian_role, guardian)
    assert not engine.hasRole(admin_role, stranger)


# ---------------------------------------------------------------------------
# add_market
# ---------------------------------------------------------------------------


def test_add_market_gives_consecutive_ids_and_logs_params(new_engine, admin, market_config):
    engine, engine_admin = new_engine()
    for expected_id in range(3):
        boa.env.time_travel(seconds=1)  # each market listed at its own timestamp
        listed_at = now()
        engine_admin.add_market(market_config.as_tuple(), sender=admin)
        log = single(engine_admin, "MarketParamsSet")
        assert log.market_id == expected_id
        assert same_params(log.params, market_config.as_tuple())
        assert engine.market_count() == expected_id + 1
        assert engine.last_funding_time(expected_id) == listed_at
    assert same_params(engine_admin.params(2), market_config.as_tuple())
    assert engine.price_feed(2)[1] == 10**10


def test_add_market_refuses_a_65th_market(new_engine, admin, market_config):
    engine, engine_admin = new_engine()
    for _ in range(64):
        engine_admin.add_market(market_config.as_tuple(), sender=admin)
    assert engine.market_count() == 64
    with reverts("markets: too many markets"):
        engine_admin.add_market(market_config.as_tuple(), sender=admin)


def test_unknown_market_id_reverts(
    engine, admin, guardian, trader, market, market_config, deposit, engine_admin
):
    unknown = market + 1
    with reverts("markets: unknown market"):
        engine_admin.set_market_params(unknown, market_config.as_tuple(), sender=admin)
    with reverts("markets: unknown market"):
        engine.checkpoint_funding([market, unknown], sender=trader)
    with reverts("markets: unknown market"):
        engine.close_position(unknown, 0, sender=trader)
    deposit(trader, 1_000)
    with reverts("markets: unknown market"):
        engine.modify_position(unknown, to_wad(1), BUY_LIMIT, sender=trader)
    with reverts("markets: unknown market"):
        engine_admin.clear_breaker(unknown, sender=guardian)


def test_add_market_rejects_zero_oracle(engine, admin, market_config, engine_admin):
    with reverts("markets: oracle is zero"):
        engine_admin.add_market(market_config.with_(oracle=ZERO).as_tuple(), sender=admin)


def test_add_market_rejects_oracle_with_19_decimals(engine, admin, reporters, market_config, engine_admin):
    # PriceOracle stores any uint8 decimals, so a 19-decimal feed can be deployed.
    feed = deploy_oracle(admin, reporters[:1], decimals=19)
    assert feed.decimals() == 19
    with reverts("markets: oracle decimals above 18"):
        engine_admin.add_market(market_config.with_(oracle=feed.address).as_tuple(), sender=admin)


def test_add_market_accepts_oracle_with_18_decimals(engine, admin, reporters, market_config, engine_admin):
    feed = deploy_oracle(admin, reporters[:1], decimals=18)
    engine_admin.add_market(market_config.with_(oracle=feed.address).as_tuple(), sender=admin)
    assert engine.price_feed(engine.market_count() - 1)[1] == 1


def test_set_market_params_rejects_oracle_with_19_decimals(
    engine, admin, reporters, market, market_config, engine_admin
):
    feed = deploy_oracle(admin, reporters[:1], decimals=19)
    with reverts("markets: oracle decimals above 18"):
        engine_admin.set_market_params(
            market, market_config.with_(oracle=feed.address).as_tuple(), sender=admin
        )
    with reverts("markets: oracle is zero"):
        engine_admin.set_market_params(market, market_config.with_(oracle=ZERO).as_tuple(), sender=admin)


# ---------------------------------------------------------------------------
# Market parameter bounds
# ---------------------------------------------------------------------------

# (field, inclusive lower bound, inclusive upper bound), as in markets.vy LOWER_BOUNDS /
# UPPER_BOUNDS. Sizes and the skew scale stop at 2^128 - 1: they fill half a packed word.
BOUNDS = [
    ("max_price_age", 1, 86_400),
    ("mark_window", 0, 3_600),
    ("skew_scale", 1, MAX_UINT128),
    ("max_premium", 0, WAD // 10),
    ("interest_rate", 0, WAD // 1_000),
    ("max_funding_rate", 0, WAD // 20),
    ("max_funding_velocity", 0, WAD // 10),
    ("imr", WAD // 100, WAD),
    ("mmr", WAD // 200, WAD),
    ("taker_fee", 0, WAD // 100),
    ("max_position_size", 1, MAX_UINT128),
    ("max_oi_vault_ratio", 0, 100 * WAD),
    ("breaker_move", WAD // 100, WAD),
    ("breaker_window", 60, 86_400),
]

# Other fields a bound value needs so that only the bound itself is under test
# (the cross-field rules would reject it otherwise).
COMPANIONS = {
    ("max_funding_rate", 0): {"interest_rate": 0},
    ("imr", WAD // 100): {"mmr": WAD // 200},
    ("taker_fee", 0): {"maker_fee": 0},
    ("max_position_size", 2**128 - 1): {"max_open_interest": 2**128 - 1},
}

OUTSIDE = [(f, lo - 1) for f, lo, hi in BOUNDS if lo > 0] + [
    (f, hi + 1) for f, lo, hi in BOUNDS if hi is not None
]
# mmr == WAD can never pass mmr < imr <= WAD; test_mmr_upper_bound_is_unreachable covers it.
INSIDE = [(f, lo) for f, lo, hi in BOUNDS] + [
    (f, hi) for f, lo, hi in BOUNDS if hi is not None and f != "mmr"
]


def test_bounds_table_covers_every_bounded_numeric_field(market_config):
    numeric = [f for f, v in vars(market_config).items() if f != "oracle" and not isinstance(v, bool)]
    # maker_fee and max_open_interest are bounded only through the cross-field rules.
    assert sorted(f for f, _, _ in BOUNDS) == sorted(set(numeric) - {"maker_fee", "max_open_interest"})


@pytest.mark.parametrize("field, value", OUTSIDE, ids=[f"{f}={v}" for f, v in OUTSIDE])
def test_add_market_and_set_market_params_reject_value_just_outside_bound(
    engine, admin, market, market_config, field, value
, engine_admin):
    config = market_config.with_(**{field: value})
    with reverts(f"markets: {field} out of bounds"):
        engine_admin.add_market(config.as_tuple(), sender=admin)
    with reverts(f"markets: {field} out of bounds"):
        engine_admin.set_market_params(market, config.as_tuple(), sender=admin)
    assert engine.market_count() == market + 1
    assert same_params(engine_admin.params(market), market_config.as_tuple())


@pytest.mark.parametrize("field, value", INSIDE, ids=[f"{f}={v}" for f, v in INSIDE])
def test_add_market_accepts_bound_value(engine, admin, market_config, field, value, engine_admin):
    if field == "taker_fee" and value > engine_admin.liquidation_params().fee:
        # S6: a liquidation fee below a taker fee is refused; raise it to the bound first
        liquidation = list(engine_admin.liquidation_params())
        liquidation[0] = value
        engine_admin.set_liquidation_params(tuple(liquidation), sender=admin)
    config = market_config.with_(**{field: value}, **COMPANIONS.get((field, value), {}))
    engine_admin.add_market(config.as_tuple(), sender=admin)
    assert getattr(engine_admin.params(engine.market_count() - 1), field) == value
    assert same_params(engine_admin.params(engine.market_count() - 1), config.as_tuple())


def test_mmr_upper_bound_is_unreachable(engine, admin, market_config, engine_admin):
    with reverts("markets: mmr not below imr"):
        engine_admin.add_market(market_config.with_(imr=WAD, mmr=WAD).as_tuple(), sender=admin)
    engine_admin.add_market(market_config.with_(imr=WAD, mmr=WAD - FRACTION_STEP).as_tuple(), sender=admin)
    assert engine_admin.params(engine.market_count() - 1).mmr == WAD - FRACTION_STEP


def test_every_field_at_its_largest_value_reads_back_and_trades(
    engine, admin, market_config, engine_admin, protocol, trader, deposit, seeded_vault
):
    """All fields at their upper bounds at once: the packed words the trading paths read hold
    every field in its own bits (a trade at max fees and margins prices as the struct says)."""
    # S6: a 1 % taker fee needs a liquidation fee of at least 1 %
    liquidation = list(engine_admin.liquidation_params())
    liquidation[0] = WAD // 100
    engine_admin.set_liquidation_params(tuple(liquidation), sender=admin)
    config = market_config.with_(
        skew_scale=MAX_UINT128, max_position_size=MAX_UINT128, max_open_interest=MAX_UINT128,
        max_premium=WAD // 10, interest_rate=WAD // 1_000, max_funding_rate=WAD // 20,
        max_funding_velocity=WAD // 10, imr=WAD, mmr=WAD - FRACTION_STEP,
        maker_fee=WAD // 100, taker_fee=WAD // 100,
        max_oi_vault_ratio=100 * WAD, breaker_move=WAD, breaker_window=86_400, max_price_age=86_400,
    )
    engine_admin.add_market(config.as_tuple(), sender=admin)
    market_id = engine.market_count() - 1
    assert same_params(engine_admin.params(market_id), config.as_tuple())
    engine_admin.set_atomic_trading(market_id, True, sender=admin)
    deposit(trader, 400_000)
    engine.modify_position(market_id, to_wad(1), to_wad(1_000_000), sender=trader)
    fill = single(engine, "PositionModified")
    assert fill.fee == (fill.fill_price + 99) // 100  # 1 % taker fee on 1 unit, rounded up
    health = engine.account_health(trader, 0)
    assert health.initial_margin == health.notional  # imr = 1


@pytest.mark.parametrize("field", STEPPED_FIELDS)
def test_fraction_off_its_step_reverts_and_one_step_passes(
    engine, admin, market, market_config, field, engine_admin
):
    """Rates, fees, margins and the breaker move are stored in steps of 1e-10; a value
    between two steps reverts, and the value one step above the default reads back exactly."""
    base = getattr(market_config, field)
    off_step = market_config.with_(**{field: base + FRACTION_STEP // 2})
    with reverts(f"markets: {field} not a multiple of 1e-10"):
        engine_admin.add_market(off_step.as_tuple(), sender=admin)
    with reverts(f"markets: {field} not a multiple of 1e-10"):
        engine_admin.set_market_params(market, off_step.as_tuple(), sender=admin)
    assert same_params(engine_admin.params(market), market_config.as_tuple())
    stepped = market_config.with_(**{field: base + FRACTION_STEP})
    engine_admin.set_market_params(market, stepped.as_tuple(), sender=admin)
    assert same_params(engine_admin.params(market), stepped.as_tuple())


def test_max_open_interest_above_128_bits_reverts(engine_admin, admin, market_config):
    with reverts("markets: max_open_interest out of bounds"):
        engine_admin.add_market(
            market_config.with_(max_open_interest=MAX_UINT128 + 1).as_tuple(), sender=admin
        )


CROSS_RULES = [
    (
        "markets: interest_rate above max_funding_rate",
        dict(interest_rate=WAD // 1_000, max_funding_rate=WAD // 1_000 - FRACTION_STEP),
        dict(interest_rate=WAD // 1_000, max_funding_rate=WAD // 1_000),
    ),
    (
        "markets: mmr not below imr",
        dict(imr=WAD // 10, mmr=WAD // 10),
        dict(imr=WAD // 10, mmr=WAD // 10 - FRACTION_STEP),
    ),
    (
        "markets: maker_fee above taker_fee",
        dict(maker_fee=5 * WAD // 10_000 + FRACTION_STEP, taker_fee=5 * WAD // 10_000),
        dict(maker_fee=5 * WAD // 10_000, taker_fee=5 * WAD // 10_000),
    ),
    (
        "markets: max_open_interest below max_position_size",
        dict(max_position_size=to_wad(100), max_open_interest=to_wad(100) - 1),
        dict(max_position_size=to_wad(100), max_open_interest=to_wad(100)),
    ),
]


@pytest.mark.parametrize(
    "reason, rejected, accepted", CROSS_RULES, ids=[r[0].split(": ")[1] for r in CROSS_RULES]
)
def test_cross_field_rule(engine, admin, market, market_config, reason, rejected, accepted, engine_admin):
    with reverts(reason):
        engine_admin.add_market(market_config.with_(**rejected).as_tuple(), sender=admin)
    with reverts(reason):
        engine_admin.set_market_params(market, market_config.with_(**rejected).as_tuple(), sender=admin)
    config = market_config.with_(**accepted)
    engine_admin.set_market_params(market, config.as_tuple(), sender=admin)
    assert single(engine_admin, "MarketParamsSet").market_id == market
    assert same_params(engine_admin.params(market), config.as_tuple())


# ---------------------------------------------------------------------------
# set_market_params accrues funding under the old parameters
# ---------------------------------------------------------------------------


def test_set_market_params_accrues_funding_under_old_params_first(
    engine, admin, stranger, market, market_config, long_position, oracle, set_price, engine_admin
):
    """S10: a funding change waits param_delay while positions are open; when anyone applies it,
    funding first accrues under the old parameters up to that moment."""
    opened_at = long_position
    index_before = engine.funding_index(market)
    assert engine.last_funding_time(market) == opened_at
    skew = engine.skew(market)
    assert skew == to_wad(10)

    advance_to(opened_at + 600)
    new_config = market_config.with_(interest_rate=WAD // 1_000)
    queued_at = now()
    engine_admin.set_market_params(market, new_config.as_tuple(), sender=admin)
    log = single(engine_admin, "MarketParamsQueued")
    assert log.effective_at == queued_at + engine_admin.param_delay() == opened_at + 600 + 86_400
    assert engine.last_funding_time(market) == opened_at  # queueing accrues nothing
    advance_to(opened_at + 89_000)
    set_price(oracle, BTC)
    advance_to(opened_at + 90_000)
    applied_at = now()
    engine_admin.apply_change(market, sender=stranger)
    assert single(engine_admin, "FundingCheckpoint").market_id == market

    elapsed = applied_at - opened_at
    assert elapsed == 90_000
    old_rate = skew * WAD // market_config.skew_scale + market_config.interest_rate
    increment = old_rate * elapsed * to_wad(BTC) // (FUNDING_PERIOD * WAD)
    assert increment > 0
    assert engine.funding_index(market) == index_before + increment
    assert engine.funding_rate(market) == old_rate
    assert engine.last_funding_time(market) == applied_at
    assert same_params(engine_admin.params(market), new_config.as_tuple())

    advance_to(applied_at + 600)
    checkpoint_at = now()
    engine.checkpoint_funding([market], sender=admin)
    new_rate = skew * WAD // market_config.skew_scale + new_config.interest_rate
    assert engine.funding_rate(market) == new_rate
    assert engine.funding_index(market) == index_before + increment + new_rate * 600 * to_wad(BTC) // (
        FUNDING_PERIOD * WAD
    )
    assert engine.last_funding_time(market) == checkpoint_at


# ---------------------------------------------------------------------------
# Fee split, vault utilization
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("share", [0, 37 * WAD // 100, WAD])
def test_fee_split_routes_trade_fee(
    engine, admin, market, seeded_vault, deposit, trader, share, engine_admin
):
    vault_before, insurance_before = engine.vault_balance(), engine.insurance_balance()
    assert vault_before > 0
    engine_admin.set_fee_split(share, sender=admin)
    assert single(engine_admin, "FeeSplitSet").vault_fee_share == share
    assert engine_admin.vault_fee_share() == share
    # the share shares a word with the balances, which setting it leaves as they were
    assert (engine.vault_balance(), engine.insurance_balance()) == (vault_before, insurance_before)
    deposit(trader, 300_000)
    engine.modify_position(market, to_wad(10), BUY_LIMIT, sender=trader)
    fee = single(engine, "PositionModified").fee
    assert fee > 0
    to_vault = fee * share // WAD
    assert engine.vault_balance() - vault_before == to_vault
    assert engine.insurance_balance() - insurance_before == fee - to_vault
    # the share shares a word with the balances the trade just moved
    assert engine_admin.vault_fee_share() == share


def test_fee_split_rejects_share_above_100_percent(engine, admin, engine_admin):
    with reverts("treasury: fee share above 100%"):
        engine_admin.set_fee_split(WAD + 1, sender=admin)
    assert engine_admin.vault_fee_share() == 8 * WAD // 10


def test_fee_split_rejects_share_between_two_steps(engine, admin, engine_admin):
    with reverts("treasury: fee share not a multiple of 1e-10"):
        engine_admin.set_fee_split(WAD // 3, sender=admin)
    assert engine_admin.vault_fee_share() == 8 * WAD // 10
    engine_admin.set_fee_split(WAD // 3 // FRACTION_STEP * FRACTION_STEP, sender=admin)
    assert engine_admin.vault_fee_share() == 333_333_333_300_000_000


@pytest.mark.parametrize("utilization", [WAD // 10, WAD])
def test_max_vault_utilization_accepts_edges(engine, admin, utilization, engine_admin):
    engine_admin.set_max_vault_utilization(utilization, sender=admin)
    assert single(engine_admin, "VaultUtilizationSet").max_vault_utilization == utilization
    assert engine.max_vault_utilization() == utilization


@pytest.mark.parametrize("utilization", [WAD // 10 - 1, WAD + 1, 0])
def test_max_vault_utilization_rejects_outside_edges(engine, admin, utilization, engine_admin):
    with reverts("treasury: utilization out of bounds"):
        engine_admin.set_max_vault_utilization(utilization, sender=admin)
    assert engine.max_vault_utilization() == 8 * WAD // 10


# ---------------------------------------------------------------------------
# Tiers
# ---------------------------------------------------------------------------


def test_set_tier_records_tier_and_rejects_unknown_tier(engine, admin, trader, engine_admin):
    engine_admin.set_tier(trader, 7, sender=admin)
    log = single(engine_admin, "TierSet")
    assert (log.owner, log.tier) == (trader, 7)
    assert engine_admin.tier_of(trader) == 7
    with reverts("accounts: unknown tier"):
        engine_admin.set_tier(trader, 8, sender=admin)
    assert engine_admin.tier_of(trader) == 7


@pytest.mark.parametrize("leverage", [0, WAD, 100 * WAD])
def test_set_tier_leverage_accepts_edges(engine, admin, leverage, engine_admin):
    engine_admin.set_tier_leverage(3, leverage, sender=admin)
    log = single(engine_admin, "TierLeverageSet")
    assert (log.tier, log.max_leverage) == (3, leverage)
    assert engine_admin.tier_max_leverage(3) == leverage


@pytest.mark.parametrize("leverage", [1, WAD - 1, 100 * WAD + 1])
def test_set_tier_leverage_rejects_out_of_bounds(engine, admin, leverage, engine_admin):
    with reverts("accounts: leverage out of bounds"):
        engine_admin.set_tier_leverage(3, leverage, sender=admin)


def test_set_tier_leverage_rejects_unknown_tier(engine, admin, engine_admin):
    with reverts("accounts: unknown tier"):
        engine_admin.set_tier_leverage(8, 5 * WAD, sender=admin)


def test_tier_leverage_cap_lowers_leverage_below_market_limit(
    engine, admin, market, seeded_vault, deposit, trader, engine_admin
):
    # 7.5x: inside the market's 10x, above the tier's 5x.
    deposit(trader, 200_000)
    engine_admin.set_tier_leverage(1, 5 * WAD, sender=admin)
    engine_admin.set_tier(trader, 1, sender=admin)
    with reverts("engine: insufficient margin"):
        engine.modify_position(market, to_wad(10), BUY_LIMIT, sender=trader)

    engine_admin.set_tier(trader, 0, sender=admin)
    engine.modify_position(market, to_wad(10), BUY_LIMIT, sender=trader)
    health = engine.account_health(trader, 0)
    assert health.equity >= health.initial_margin
    assert health.equity < 2 * health.initial_margin


def test_tier_cap_raises_initial_margin_of_open_position(
    engine, admin, stranger, market, long_position, trader, engine_admin, oracle, set_price
):
    """S10: with a position open, a stricter tier cap waits param_delay (moving the owner into a
    tier without a cap yet is no tightening, so it is immediate)."""
    market_margin = engine.account_health(trader, 0).initial_margin
    engine_admin.set_tier_leverage(2, 4 * WAD, sender=admin)
    engine_admin.set_tier(trader, 2, sender=admin)
    assert engine_admin.tier_max_leverage(2) == 0 and engine_admin.tier_of(trader) == 2
    assert engine.account_health(trader, 0).initial_margin == market_margin
    boa.env.time_travel(seconds=engine_admin.param_delay())
    set_price(oracle, BTC)
    engine_admin.apply_change(128 + 2, sender=stranger)
    health = engine.account_health(trader, 0)
    assert health.initial_margin == -(-health.notional * (WAD // 4) // WAD)
    assert health.initial_margin > market_margin


# ---------------------------------------------------------------------------
# set_vault
# ---------------------------------------------------------------------------


def test_set_vault_on_fresh_engine_once(new_engine, admin, stranger):
    engine, engine_admin = new_engine()
    assert engine.vault() == ZERO
    with reverts("treasury: vault is zero"):
        engine_admin.set_vault(ZERO, sender=admin)
    engine_admin.set_vault(stranger, sender=admin)
    assert single(engine_admin, "VaultSet").vault == stranger
    assert engine.vault() == stranger
    with reverts("treasury: vault already set"):
        engine_admin.set_vault(admin, sender=admin)
    assert engine.vault() == stranger


def test_set_vault_on_deployed_engine_reverts_already_set(engine, vault, admin, engine_admin):
    assert engine.vault() == vault.address
    with reverts("treasury: vault already set"):
        engine_admin.set_vault(admin, sender=admin)
    with reverts("treasury: vault already set"):
        engine_admin.set_vault(ZERO, sender=admin)


# ---------------------------------------------------------------------------
# Pause
# ---------------------------------------------------------------------------


def test_pause_blocks_new_risk(
    engine, guardian, market, long_position, trader, other_trader, deposit, engine_admin
):
    engine_admin.pause(sender=guardian)
    assert single(engine_admin, "Paused").account == guardian
    assert engine.paused()
    with reverts("engine: paused"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    with reverts("engine: paused"):
        engine.modify_position(market, -to_wad(11), SELL_LIMIT, sender=trader)
    deposit(other_trader, 100_000)
    with reverts("engine: paused"):
        engine.modify_position(market, -to_wad(1), SELL_LIMIT, sender=other_trader)


def test_pause_lets_risk_reducing_actions_through(
    engine, guardian, market, long_position, trader, token, deposit, engine_admin
):
    engine_admin.pause(sender=guardian)

    units = deposit(trader, 1_000)
    assert units == 1_000 * 10**6

    boa.env.time_travel(seconds=600)
    checkpoint_at = now()
    engine.checkpoint_funding([market], sender=trader)
    assert engine.last_funding_time(market) == checkpoint_at

    engine.modify_position(market, -to_wad(4), SELL_LIMIT, sender=trader)
    assert single(engine, "PositionModified").new_size == to_wad(6)

    balance = token.balanceOf(trader)
    engine.withdraw(50_000 * 10**6, sender=trader)
    assert token.balanceOf(trader) == balance + 50_000 * 10**6

    engine.close_position(market, SELL_LIMIT, sender=trader)
    assert engine.open_positions(trader, 0, market).size == 0
    assert engine.paused()


def test_unpause_restores_trading(engine, guardian, market, seeded_vault, deposit, trader, engine_admin):
    deposit(trader, 300_000)
    engine_admin.pause(sender=guardian)
    with reverts("engine: paused"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    engine_admin.unpause(sender=guardian)
    assert single(engine_admin, "Unpaused").account == guardian
    assert not engine.paused()
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    assert engine.open_positions(trader, 0, market).size == to_wad(1)


def test_pause_twice_and_unpause_twice_revert(engine, guardian, engine_admin):
    with reverts("pausable: contract is not paused"):
        engine_admin.unpause(sender=guardian)
    engine_admin.pause(sender=guardian)
    with reverts("pausable: contract is paused"):
        engine_admin.pause(sender=guardian)


# ---------------------------------------------------------------------------
# Price-move breaker
# ---------------------------------------------------------------------------


def step_towards(engine, market, oracle, set_price, trader, price):
    """Checkpoints halfway from 150,000 to `price`: each step stays inside the 15 % bound, so the
    market never halts (S4) while the window's range grows past it."""
    set_price(oracle, (BTC + price) / 2)
    engine.checkpoint_funding([market], sender=trader)


def trip(engine, market, oracle, set_price, trader, price=174_000):
    """Moves the index from 150,000 by more than 15 % in two steps and checkpoints: the breaker
    trips. Returns the timestamp it tripped at."""
    step_towards(engine, market, oracle, set_price, trader, price)
    set_price(oracle, price)
    tripped_at = now()
    engine.checkpoint_funding([market], sender=trader)
    log = single(engine, "BreakerTripped")
    assert (log.market_id, log.reference_price, log.index_price) == (market, to_wad(BTC), to_wad(price))
    return tripped_at


@pytest.mark.parametrize("price", [174_000, 127_000, 172_500.01])
def test_move_above_15_percent_trips_breaker_on_checkpoint(
    engine, engine_admin, market, long_position, oracle, set_price, trader, price
):
    tripped_at = trip(engine, market, oracle, set_price, trader, price)
    assert engine_admin.breaker(market)[3] == tripped_at
    assert engine_admin.is_reduce_only(market)


def test_reduce_only_market_rejects_increase_and_allows_reduce(
    engine, market, long_position, oracle, set_price, trader, other_trader, deposit
):
    trip(engine, market, oracle, set_price, trader)
    with reverts("engine: market is reduce-only"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    deposit(other_trader, 100_000)
    with reverts("engine: market is reduce-only"):
        engine.modify_position(market, -to_wad(1), SELL_LIMIT, sender=other_trader)
    engine.modify_position(market, -to_wad(3), SELL_LIMIT, sender=trader)
    assert single(engine, "PositionModified").new_size == to_wad(7)
    engine.close_position(market, SELL_LIMIT, sender=trader)
    assert engine.open_positions(trader, 0, market).size == 0


def test_reducing_trade_after_move_trips_breaker(
    engine, engine_admin, market, long_position, oracle, set_price, trader
):
    step_towards(engine, market, oracle, set_price, trader, 174_000)
    set_price(oracle, 174_000)
    engine.modify_position(market, -to_wad(1), SELL_LIMIT, sender=trader)
    log = single(engine, "BreakerTripped")
    assert (log.reference_price, log.index_price) == (to_wad(BTC), to_wad(174_000))
    assert engine_admin.is_reduce_only(market)


def test_increasing_trade_after_move_reverts_reduce_only(
    engine, market, long_position, oracle, set_price, trader
):
    step_towards(engine, market, oracle, set_price, trader, 174_000)
    set_price(oracle, 174_000)
    with reverts("engine: market is reduce-only"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)


@pytest.mark.parametrize("price", [171_000, 129_000, 172_500])
def test_move_of_at_most_15_percent_does_not_trip(
    engine, engine_admin, market, long_position, oracle, set_price, trader, other_trader, deposit, price
):
    set_price(oracle, price)
    engine.checkpoint_funding([market], sender=trader)
    assert single(engine, "FundingCheckpoint").index_price == to_wad(price)
    assert not events(engine, "BreakerTripped")
    assert not engine_admin.is_reduce_only(market)
    assert engine_admin.breaker(market)[3] == 0
    deposit(other_trader, 100_000)
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=other_trader)
    assert engine.open_positions(other_trader, 0, market).size == to_wad(1)


def test_reduce_only_view_ends_after_breaker_window(
    engine, engine_admin, market, market_config, long_position, oracle, set_price, trader
):
    tripped_at = trip(engine, market, oracle, set_price, trader)
    advance_to(tripped_at + market_config.breaker_window - 1)
    assert engine_admin.is_reduce_only(market)
    advance_to(tripped_at + market_config.breaker_window)
    assert not engine_admin.is_reduce_only(market)


def test_breaker_clears_by_itself_after_window_once_price_is_back_in_band(
    engine, engine_admin, market, market_config, long_position, oracle, set_price, trader
):
    tripped_at = trip(engine, market, oracle, set_price, trader)
    advance_to(tripped_at + market_config.breaker_window)
    set_price(oracle, 160_000)
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    assert not events(engine, "BreakerTripped")
    assert engine.open_positions(trader, 0, market).size == to_wad(11)
    assert not engine_admin.is_reduce_only(market)


def test_trip_restarts_the_window_so_a_sustained_move_holds_reduce_only_one_window(
    engine, engine_admin, market, market_config, long_position, oracle, set_price, trader
):
    window = market_config.breaker_window
    tripped_at = trip(engine, market, oracle, set_price, trader)
    assert engine_admin.breaker(market)[0] == engine_admin.breaker(market)[1] == to_wad(174_000)
    assert engine_admin.breaker(market)[2] == tripped_at
    advance_to(tripped_at + window)
    set_price(oracle, 174_000)
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    assert not events(engine, "BreakerTripped")
    assert engine.open_positions(trader, 0, market).size == to_wad(11)


def test_move_from_the_windows_low_trips_even_when_no_single_step_does(
    engine, engine_admin, market, long_position, oracle, set_price, trader
):
    for price in (140_000, 150_000):
        set_price(oracle, price)
        engine.checkpoint_funding([market], sender=trader)
    assert engine_admin.breaker(market)[0] == to_wad(140_000)
    assert not engine_admin.is_reduce_only(market)
    set_price(oracle, 162_000)
    engine.checkpoint_funding([market], sender=trader)
    log = single(engine, "BreakerTripped")
    assert (log.reference_price, log.index_price) == (to_wad(140_000), to_wad(162_000))
    assert engine_admin.is_reduce_only(market)


def test_idle_market_compares_move_against_reference_older_than_window(
    engine, engine_admin, market, market_config, long_position, oracle, set_price, trader
):
    # The expired window's range is compared before it rolls, so a move across the roll is caught.
    for price in (140_000, 150_000):
        set_price(oracle, price)
        engine.checkpoint_funding([market], sender=trader)
    advance_to(now() + 2 * market_config.breaker_window)
    set_price(oracle, 162_000)
    engine.checkpoint_funding([market], sender=trader)
    log = single(engine, "BreakerTripped")
    assert log.reference_price == to_wad(140_000)
    assert engine_admin.is_reduce_only(market)


def test_idle_market_halts_on_a_move_beyond_the_bound_in_one_step(
    engine, engine_admin, guardian, market, market_config, long_position, oracle, set_price, trader
):
    """S4: a jump beyond the breaker move from the last accepted index halts the market,
    however long it was idle; the guardian's resume accepts it and the breaker trips on it."""
    advance_to(long_position + 2 * market_config.breaker_window)
    set_price(oracle, 174_000)
    assert engine_admin.is_halted(market)
    with reverts("pricing: market halted"):
        engine.checkpoint_funding([market], sender=trader)
    with reverts("pricing: market halted"):
        engine.close_position(market, SELL_LIMIT, sender=trader)
    with reverts("pricing: market halted"):
        engine.fill_price(market, -to_wad(1))
    engine_admin.resume_market(market, sender=guardian)
    log = single(engine_admin, "MarketResumed")
    assert (log.market_id, log.halted_at_price, log.index_price, log.by_guardian) == (
        market, to_wad(BTC), to_wad(174_000), True
    )
    engine.close_position(market, SELL_LIMIT, sender=trader)
    assert single(engine, "BreakerTripped").index_price == to_wad(174_000)
    assert engine.open_positions(trader, 0, market).size == 0


def test_guardian_clears_breaker_immediately(
    engine, guardian, market, long_position, oracle, set_price, trader, engine_admin
):
    trip(engine, market, oracle, set_price, trader)
    cleared_at = now()
    engine_admin.clear_breaker(market, sender=guardian)
    log = single(engine_admin, "BreakerCleared")
    assert (log.market_id, log.index_price) == (market, to_wad(174_000))
    assert not engine_admin.is_reduce_only(market)
    assert engine_admin.breaker(market)[3] == 0
    assert engine_admin.breaker(market)[0] == engine_admin.breaker(market)[1] == to_wad(174_000)
    assert engine_admin.breaker(market)[2] == cleared_at
    engine.modify_position(market, to_wad(1), BUY_LIMIT, sender=trader)
    assert not events(engine, "BreakerTripped")
    assert engine.open_positions(trader, 0, market).size == to_wad(11)


# ---------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------


def test_set_operator_rejects_zero_and_self(engine, trader):
    with reverts("accounts: operator is zero"):
        engine.set_operator(ZERO, True, sender=trader)
    with reverts("accounts: owner is its own operator"):
        engine.set_operator(trader, True, sender=trader)


def test_set_operator_approves_and_revokes_with_events(engine, market, seeded_vault, deposit, trader, keeper):
    engine.set_operator(keeper, True, sender=trader)
    log = single(engine, "OperatorSet")
    assert (log.owner, log.operator, log.approved) == (trader, keeper, True)
    assert engine.is_operator(trader, keeper)
    assert not engine.is_operator(keeper, trader)

    deposit(trader, 100_000)
    engine.modify_position(market, to_wad(1), BUY_LIMIT, 0, trader, sender=keeper)
    assert engine.open_positions(trader, 0, market).size == to_wad(1)

    engine.set_operator(keeper, False, sender=trader)
    log = single(engine, "OperatorSet")
    assert (log.owner, log.operator, log.approved) == (trader, keeper, False)
    assert not engine.is_operator(trader, keeper)
    with reverts("accounts: not owner or operator"):
        engine.modify_position(market, to_wad(1), BUY_LIMIT, 0, trader, sender=keeper)


# ---------------------------------------------------------------------------
# Atomic trading and the order book
# ---------------------------------------------------------------------------


def test_new_market_refuses_direct_trades_until_atomic_trading_is_allowed(
    engine, engine_admin, add_market, admin, market_config, trader, deposit, seeded_vault
):
    market_id = add_market(market_config)
    assert not engine.atomic_trading(market_id)
    deposit(trader, 100_000)
    with reverts("engine: atomic trades disabled"):
        engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    engine_admin.set_atomic_trading(market_id, True, sender=admin)
    [log] = events(engine_admin, "AtomicTradingSet")
    assert (log.market_id, log.allowed) == (market_id, True)
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, sender=trader)
    engine_admin.set_atomic_trading(market_id, False, sender=admin)
    with reverts("engine: atomic trades disabled"):
        engine.close_position(market_id, 0, sender=trader)


def test_set_atomic_trading_rejects_unknown_market(engine, engine_admin, admin, market):
    with reverts("markets: unknown market"):
        engine_admin.set_atomic_trading(market + 1, True, sender=admin)


def test_order_book_trades_for_any_account_but_cannot_withdraw(
    engine, engine_admin, add_market, admin, market_config, trader, stranger, deposit, seeded_vault
):
    market_id = add_market(market_config)
    deposit(trader, 100_000)
    engine_admin.set_order_book(stranger, sender=admin)
    [log] = events(engine_admin, "OrderBookSet")
    assert log.order_book == stranger and engine.order_book() == stranger
    # the order book trades in a market closed to direct trades, for an account it does not own
    engine.modify_position(market_id, to_wad(1), BUY_LIMIT, 0, trader, sender=stranger)
    assert engine.open_positions(trader, 0, market_id).size == to_wad(1)
    with reverts("accounts: not owner or operator"):
        engine.withdraw(1, 0, trader, sender=stranger)
    engine_admin.set_order_book(ZERO, sender=admin)
    with reverts("accounts: not owner or operator"):
        engine.modify_position(market_id, -to_wad(1), 0, 0, trader, sender=stranger)
