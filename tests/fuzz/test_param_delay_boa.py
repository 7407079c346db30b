"""S10, tightening delays, on titanoboa: attacks first, then the queue, then a property.

The attacks (each succeeded before S10; what the old code did is in each docstring): the admin
(or whoever holds its key) changes a parameter and its own keeper acts in the same block:
- raises mmr above a healthy account's margin ratio and liquidates it;
- lowers max_pnl_factor so a winner's close is haircut at once (and ADL becomes eligible);
- swaps the market's oracle for a feed it picked and liquidates at that feed's price.
Now a change that could hurt an open position is queued for param_delay (24 h by default) and
applied by anyone once due; loosening, and any change where nobody holds a position, is
immediate. Test names end in `_boa`.
"""

import boa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from boa_protocol import START_PRICE, contract, examples, oracle_answer
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
TOKEN = 10**6
DAY = 86_400
NOT_LIQUIDATABLE = "engine: account not liquidatable"
NOT_DUE = "timelock: change not due"
NOTHING_QUEUED = "timelock: nothing queued"
DELAY_BOUNDS = "timelock: param delay out of bounds"
KEY_PNL_CAPS, KEY_VAULT_UTILIZATION, KEY_PARAM_DELAY, KEY_TIER, KEY_OWNER = 64, 65, 66, 128, 1 << 160
STEP = 10**8


def open_victim(p, collateral=20_000, size=WAD):
    """A 1 BTC long on 20,000 of collateral: equity / maintenance margin about 2.65 at 5 % mmr."""
    p.seed_vault(10_000_000 * TOKEN)
    victim = p.traders[0]
    p.deposit(victim, collateral * TOKEN)
    p.engine.modify_position(0, size, MAX_UINT256, sender=victim)
    assert not p.lens.is_liquidatable(victim, 0)
    return victim


def warp(p, seconds, answer=None):
    """Moves the clock and publishes a fresh round (max_price_age is 1 h in these fixtures)."""
    boa.env.time_travel(seconds=seconds)
    p.push_price(answer if answer is not None else oracle_answer(START_PRICE))


def test_raising_mmr_is_queued_so_no_keeper_liquidates_in_the_same_block_boa(boa_protocol):
    """The attack: mmr 5 % -> 15 % (imr 20 %) made the 2.65x-healthy long liquidatable at once;
    the same-block liquidate returned a reward of 198.18 and closed 0.30 BTC. Now the change
    waits 24 h, announced by MarketParamsQueued, and only then can the account be liquidated."""
    p = boa_protocol
    with boa.env.anchor():
        victim = open_victim(p)
        tight = p.config.with_(imr=WAD // 5, mmr=15 * WAD // 100)
        p.engine_admin.set_market_params(0, tight.as_tuple(), sender=p.admin)
        [queued] = p.events(p.engine_admin, "MarketParamsQueued")
        assert queued.market_id == 0 and queued.effective_at == p.now() + DAY
        assert p.engine_admin.params(0).mmr == p.config.mmr
        assert not p.lens.is_liquidatable(victim, 0)
        assert p.revert_reason(lambda: p.engine_risk.liquidate(victim, 0, sender=p.traders[3])) == NOT_LIQUIDATABLE
        params, effective_at = p.engine_admin.pending_market_params(0)
        assert tuple(params) == tight.as_tuple() and effective_at == p.now() + DAY
        assert p.revert_reason(lambda: p.engine_admin.apply_change(0, sender=p.traders[3])) == NOT_DUE
        warp(p, DAY - 1)
        assert p.revert_reason(lambda: p.engine_admin.apply_change(0, sender=p.traders[3])) == NOT_DUE
        warp(p, 1)
        # permissionless once due; the victim had 24 h to add margin or reduce
        p.engine_admin.apply_change(0, sender=p.traders[3])
        assert p.engine_admin.params(0).mmr == 15 * WAD // 100
        assert p.engine_admin.pending_market_params(0)[1] == 0
        assert p.lens.is_liquidatable(victim, 0)
        assert p.revert_reason(lambda: p.engine_admin.apply_change(0, sender=p.traders[3])) == NOTHING_QUEUED


def test_lowering_the_profit_cap_is_queued_so_a_close_is_not_haircut_at_once_boa(boa_protocol):
    """The attack: with a 2 BTC long 29,999.70 in profit, set_pnl_caps(0.01, 0) made ADL eligible
    at once and the close credited 9,935.44 instead of about 29,800. Now it waits 24 h."""
    p = boa_protocol
    with boa.env.anchor():
        p.seed_vault(1_000_000 * TOKEN)
        winner = p.traders[1]
        p.deposit(winner, 200_000 * TOKEN)
        p.engine.modify_position(0, 2 * WAD, MAX_UINT256, sender=winner)
        p.push_price(oracle_answer(START_PRICE * 11 // 10))
        profit = p.engine.account_health(winner, 0).unrealized_pnl
        factor, target = p.engine_admin.max_pnl_factor(), p.engine_admin.adl_target()
        p.engine_admin.set_pnl_caps(WAD // 100, 0, sender=p.admin)
        [queued] = p.events(p.engine_admin, "ChangeQueued")
        assert (queued.key, queued.value, queued.effective_at) == (KEY_PNL_CAPS, WAD // 100, p.now() + DAY)
        assert (p.engine_admin.max_pnl_factor(), p.engine_admin.adl_target()) == (factor, target)
        assert not p.engine_risk.adl_eligible()
        assert p.engine_admin.pending_change(KEY_PNL_CAPS) == (WAD // 100, p.now() + DAY)
        before = p.engine.collateral(winner, 0)
        p.engine.close_position(0, 0, sender=winner)
        credited = p.engine.collateral(winner, 0) - before
        assert credited > profit * 99 // 100, (credited, profit)
        assert not p.events(p.engine, "ProfitCapped")
        warp(p, DAY, oracle_answer(START_PRICE * 11 // 10))
        p.engine_admin.apply_change(KEY_PNL_CAPS, sender=p.traders[3])
        assert (p.engine_admin.max_pnl_factor(), p.engine_admin.adl_target()) == (WAD // 100, 0)


def test_an_oracle_swap_is_queued_so_a_picked_feed_liquidates_no_one_at_once_boa(boa_protocol):
    """The attack: swapping in a feed at -10 % moved the index to 135,000 at once and the
    same-block liquidate returned a reward of 270.32. Now the swap waits 24 h."""
    p = boa_protocol
    with boa.env.anchor():
        victim = open_victim(p)
        feed = contract("test/MockFeed").deploy(8, oracle_answer(START_PRICE * 9 // 10))
        p.engine_admin.set_market_params(0, p.config.with_(oracle=feed.address).as_tuple(), sender=p.admin)
        assert p.events(p.engine_admin, "MarketParamsQueued")
        assert p.engine.index_price(0) == START_PRICE * WAD
        assert p.revert_reason(lambda: p.engine_risk.liquidate(victim, 0, sender=p.traders[3])) == NOT_LIQUIDATABLE
        warp(p, DAY)
        feed.set_answer(oracle_answer(START_PRICE * 9 // 10), p.now())
        p.engine_admin.apply_change(0, sender=p.traders[3])
        assert p.engine_admin.params(0).oracle == feed.address
        assert p.engine.index_price(0) == START_PRICE * 9 // 10 * WAD


def test_loosening_is_immediate_and_drops_a_queued_change_boa(boa_protocol):
    """Lower margins and fees and higher caps apply at once with open positions; an immediate
    change (re-sending the current parameters cancels this way) drops what was queued."""
    p = boa_protocol
    with boa.env.anchor():
        open_victim(p)
        loose = p.config.with_(
            imr=WAD // 20, mmr=WAD // 40, maker_fee=0, taker_fee=WAD // 10_000,
            max_position_size=2 * p.config.max_position_size, max_open_interest=2 * p.config.max_open_interest,
        )
        p.engine_admin.set_market_params(0, loose.as_tuple(), sender=p.admin)
        assert not p.events(p.engine_admin, "MarketParamsQueued")
        assert tuple(p.engine_admin.params(0)) == loose.as_tuple()
        p.engine_admin.set_market_params(0, loose.with_(mmr=3 * WAD // 100).as_tuple(), sender=p.admin)
        assert p.engine_admin.pending_market_params(0)[1] == p.now() + DAY
        p.engine_admin.set_market_params(0, loose.as_tuple(), sender=p.admin)
        [cancelled] = p.events(p.engine_admin, "ChangeCancelled")
        assert cancelled.key == 0 and p.engine_admin.pending_market_params(0)[1] == 0


def test_tightening_where_nobody_holds_a_position_is_immediate_boa(boa_protocol):
    """Zero open interest in the market: nobody to hurt, so even an oracle swap applies at once."""
    p = boa_protocol
    with boa.env.anchor():
        feed = contract("test/MockFeed").deploy(8, oracle_answer(START_PRICE))
        tight = p.config.with_(oracle=feed.address, imr=WAD // 5, mmr=15 * WAD // 100, mark_window=60)
        p.engine_admin.set_market_params(0, tight.as_tuple(), sender=p.admin)
        assert tuple(p.engine_admin.params(0)) == tight.as_tuple()
        for key in (KEY_PNL_CAPS, KEY_VAULT_UTILIZATION, KEY_TIER + 1):
            assert p.engine_admin.pending_change(key)[1] == 0
        p.engine_admin.set_pnl_caps(WAD // 10, 0, sender=p.admin)
        p.engine_admin.set_max_vault_utilization(WAD // 2, sender=p.admin)
        p.engine_admin.set_tier_leverage(1, 2 * WAD, sender=p.admin)
        assert p.engine_admin.max_pnl_factor() == WAD // 10 and p.engine.max_vault_utilization() == WAD // 2
        assert p.engine_admin.tier_max_leverage(1) == 2 * WAD


# Each change that waits while the market has open interest, from the fixture's parameters.
QUEUED_CHANGES = {
    "imr raised": {"imr": WAD // 5},
    "mmr raised": {"mmr": 8 * WAD // 100},
    "maker_fee raised": {"maker_fee": 3 * WAD // 10_000},
    "taker_fee raised": {"taker_fee": 7 * WAD // 10_000},
    "max_position_size lowered": {"max_position_size": 10 * WAD},
    "max_open_interest lowered": {"max_open_interest": 1_000_000 * WAD},
    "max_oi_vault_ratio set (0 is none)": {"max_oi_vault_ratio": 10 * WAD},
    "max_price_age raised": {"max_price_age": 7200},
    "max_price_age lowered": {"max_price_age": 600},
    "mark_window changed": {"mark_window": 60},
    "skew_scale raised": {"skew_scale": 2_000_000 * WAD},
    "skew_scale lowered": {"skew_scale": 500_000 * WAD},
    "max_premium lowered": {"max_premium": WAD // 100},
    "interest_rate lowered": {"interest_rate": 0},
    "max_funding_rate raised": {"max_funding_rate": WAD // 100},
    "dynamic_funding switched": {"dynamic_funding": True},
    "max_funding_velocity lowered": {"max_funding_velocity": WAD // 100},
    "breaker_move lowered": {"breaker_move": WAD // 2},
    "breaker_window raised": {"breaker_window": 7200},
}
IMMEDIATE_CHANGES = {
    "imr lowered": {"imr": WAD // 20, "mmr": WAD // 40},
    "fees lowered": {"maker_fee": 0, "taker_fee": 0},
    "caps raised": {"max_position_size": 2_000_000 * WAD, "max_open_interest": 20_000_000 * WAD},
}


@pytest.mark.parametrize(
    "name, queued",
    [(name, True) for name in sorted(QUEUED_CHANGES)] + [(name, False) for name in sorted(IMMEDIATE_CHANGES)],
)
def test_tightening_fields_are_queued_and_loosening_ones_immediate_boa(boa_protocol, name, queued):
    p = boa_protocol
    with boa.env.anchor():
        open_victim(p)
        changed = p.config.with_(**(QUEUED_CHANGES if queued else IMMEDIATE_CHANGES)[name])
        p.engine_admin.set_market_params(0, changed.as_tuple(), sender=p.admin)
        in_force = p.config if queued else changed
        assert tuple(p.engine_admin.params(0)) == in_force.as_tuple(), name
        if queued:
            assert p.engine_admin.pending_market_params(0)[1] == p.now() + DAY, name


def test_an_invalid_change_is_refused_when_queued_not_a_day_later_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        open_victim(p)
        reason = p.revert_reason(lambda: p.engine_admin.set_market_params(0, p.config.with_(mmr=p.config.imr).as_tuple(), sender=p.admin))
        assert reason == "markets: mmr not below imr"
        reason = p.revert_reason(lambda: p.engine_admin.set_pnl_caps(WAD // 1000, 0, sender=p.admin))
        assert reason == "treasury: max_pnl_factor out of bounds"
        reason = p.revert_reason(lambda: p.engine_admin.set_max_vault_utilization(WAD // 20, sender=p.admin))
        assert reason == "treasury: utilization out of bounds"
        reason = p.revert_reason(lambda: p.engine_admin.set_tier_leverage(1, WAD // 2, sender=p.admin))
        assert reason == "accounts: leverage out of bounds"
        reason = p.revert_reason(lambda: p.engine_admin.set_tier(p.traders[0], 99, sender=p.admin))
        assert reason == "accounts: unknown tier"
        for key in (0, KEY_PNL_CAPS, KEY_VAULT_UTILIZATION, KEY_TIER + 1):
            assert p.engine_admin.pending_change(key)[1] == 0


def test_vault_utilization_and_tiers_are_queued_while_positions_are_open_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        p.engine_admin.set_tier_leverage(1, 5 * WAD, sender=p.admin)  # nobody holds a position yet
        victim = open_victim(p)
        newcomer = p.traders[2]
        # lowering the utilization cap waits; raising it is immediate
        p.engine_admin.set_max_vault_utilization(WAD // 2, sender=p.admin)
        assert p.engine.max_vault_utilization() == 8 * WAD // 10
        assert p.engine_admin.pending_change(KEY_VAULT_UTILIZATION) == (WAD // 2, p.now() + DAY)
        p.engine_admin.set_max_vault_utilization(WAD, sender=p.admin)
        assert p.engine.max_vault_utilization() == WAD
        assert p.engine_admin.pending_change(KEY_VAULT_UTILIZATION)[1] == 0
        # a stricter tier cap waits, a looser one is immediate
        p.engine_admin.set_tier_leverage(1, 2 * WAD, sender=p.admin)
        assert p.engine_admin.tier_max_leverage(1) == 5 * WAD
        assert p.engine_admin.pending_change(KEY_TIER + 1) == (2 * WAD, p.now() + DAY)
        p.engine_admin.set_tier_leverage(2, 0, sender=p.admin)
        # moving an owner who holds a position to a stricter tier waits; one who holds none moves at once
        p.engine_admin.set_tier(victim, 1, sender=p.admin)
        assert p.engine_admin.tier_of(victim) == 0
        owner_key = KEY_OWNER | int(victim, 16)
        assert p.engine_admin.pending_change(owner_key) == (1, p.now() + DAY)
        p.engine_admin.set_tier(newcomer, 1, sender=p.admin)
        assert p.engine_admin.tier_of(newcomer) == 1
        warp(p, DAY)
        for key in (KEY_TIER + 1, owner_key):
            p.engine_admin.apply_change(key, sender=p.traders[3])
        assert p.engine_admin.tier_max_leverage(1) == 2 * WAD and p.engine_admin.tier_of(victim) == 1
        # the 7.5x long is now above its tier's 2x: it cannot add risk or withdraw, and is not liquidatable
        assert not p.lens.is_liquidatable(victim, 0)
        assert p.revert_reason(lambda: p.engine.withdraw(TOKEN, sender=victim)) == "engine: insufficient margin"


def test_param_delay_is_raised_at_once_and_shortened_only_after_the_delay_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        assert p.engine_admin.param_delay() == DAY
        for bad in (3_599, 30 * DAY + 1):
            assert p.revert_reason(lambda: p.engine_admin.set_param_delay(bad, sender=p.admin)) == DELAY_BOUNDS
        assert p.revert_reason(lambda: p.engine_admin.set_param_delay(2 * DAY, sender=p.guardian)) is not None
        p.engine_admin.set_param_delay(2 * DAY, sender=p.admin)
        [event] = p.events(p.engine_admin, "ParamDelaySet")
        assert event.param_delay == 2 * DAY == p.engine_admin.param_delay()
        # shortening is itself a loosening of the protection: it waits the current delay
        p.engine_admin.set_param_delay(3_600, sender=p.admin)
        assert p.engine_admin.param_delay() == 2 * DAY
        assert p.engine_admin.pending_change(KEY_PARAM_DELAY) == (3_600, p.now() + 2 * DAY)
        # so shortening then tightening at once is impossible: the mmr change waits 2 days
        open_victim(p)
        p.engine_admin.set_market_params(0, p.config.with_(imr=WAD // 5, mmr=WAD // 10).as_tuple(), sender=p.admin)
        assert p.engine_admin.pending_market_params(0)[1] == p.now() + 2 * DAY
        warp(p, DAY)
        assert p.revert_reason(lambda: p.engine_admin.apply_change(KEY_PARAM_DELAY, sender=p.traders[3])) == NOT_DUE
        warp(p, DAY)
        p.engine_admin.apply_change(KEY_PARAM_DELAY, sender=p.traders[3])
        assert p.engine_admin.param_delay() == 3_600


# ---------------------------------------------------------------------------
# Property: no parameter change makes a healthy account liquidatable in the same block
# ---------------------------------------------------------------------------

FIELDS = [
    "max_price_age", "mark_window", "skew_scale", "max_premium", "interest_rate", "max_funding_rate",
    "dynamic_funding", "max_funding_velocity", "imr", "mmr", "maker_fee", "taker_fee",
    "max_position_size", "max_open_interest", "max_oi_vault_ratio", "breaker_move", "breaker_window",
]
STEPPED = {"max_premium", "interest_rate", "max_funding_rate", "max_funding_velocity", "imr", "mmr",
           "maker_fee", "taker_fee", "breaker_move"}
FACTORS = [0, 1 / 4, 1 / 2, 4 / 5, 5 / 4, 2, 4, 10]

trade = st.tuples(st.just("trade"), st.integers(0, 2), st.integers(-40, 40))
price = st.tuples(st.just("price"), st.integers(-6, 6))
# "margins" scales imr and mmr together (mmr alone soon meets imr); "oracle" swaps in a feed 10 % lower
market = st.tuples(st.just("market"), st.lists(st.tuples(st.sampled_from(FIELDS + ["margins", "margins", "oracle"]), st.sampled_from(FACTORS)), min_size=1, max_size=4))
caps = st.tuples(st.just("caps"), st.sampled_from([1, 5, 20, 50, 100]), st.sampled_from([0, 1, 10, 50]))
tier = st.tuples(st.just("tier"), st.integers(0, 2), st.sampled_from([0, WAD, 2 * WAD, 5 * WAD, 20 * WAD]))
utilization = st.tuples(st.just("utilization"), st.sampled_from([WAD // 10, WAD // 2, WAD]))


def scaled(config, changes, feed):
    values = {}
    for name, factor in changes:
        if name == "oracle":
            values[name] = feed.address
            continue
        if name == "margins":
            for margin in ("imr", "mmr"):
                values[margin] = int(getattr(config, margin) * factor) // STEP * STEP
            continue
        old = getattr(config, name)
        if name == "dynamic_funding":
            values[name] = not old
            continue
        new = int(old * factor) if old else int(factor * {"max_oi_vault_ratio": 10 * WAD, "interest_rate": 10**14}.get(name, 1))
        if name in STEPPED:
            new -= new % STEP
        values[name] = new
    return config.with_(**values)


def liquidatable(p, owners):
    """Owners whose subaccount 0 holds a position and is liquidatable now (None: cannot tell)."""
    out = set()
    for owner in owners:
        try:
            if p.lens.is_liquidatable(owner, 0):
                out.add(owner)
        except boa.BoaError:
            return None
    return out


@settings(max_examples=examples(30), deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.one_of(trade, price, market, caps, tier, utilization), min_size=4, max_size=24))
def test_no_parameter_change_makes_a_healthy_account_liquidatable_in_the_same_block_boa(boa_protocol, steps):
    p = boa_protocol
    with boa.env.anchor():
        p.seed_vault(5_000_000 * TOKEN)
        owners = p.traders[:3]
        for owner in owners:
            p.deposit(owner, 30_000 * TOKEN)
            p.engine.modify_position(0, WAD, MAX_UINT256, sender=owner)  # about 5x: in reach of a margin raise
        answer = oracle_answer(START_PRICE)
        feed = contract("test/MockFeed").deploy(8, answer * 9 // 10)
        for step in steps:
            kind = step[0]
            if kind == "trade":
                _, who, tenths = step
                p.revert_reason(lambda: p.engine.modify_position(0, tenths * WAD // 20, MAX_UINT256 if tenths > 0 else 0, sender=owners[who]))
                continue
            if kind == "price":
                answer = answer * (100 + step[1]) // 100
                boa.env.time_travel(seconds=12)
                p.push_price(answer)
                feed.set_answer(answer * 9 // 10, p.now())
                continue
            before = liquidatable(p, owners)
            if kind == "market":
                current = p.config.from_tuple(p.engine_admin.params(0))
                call = lambda: p.engine_admin.set_market_params(0, scaled(current, step[1], feed).as_tuple(), sender=p.admin)  # noqa: E731
            elif kind == "caps":
                call = lambda: p.engine_admin.set_pnl_caps(step[1] * WAD // 100, min(step[1], step[2]) * WAD // 100, sender=p.admin)  # noqa: E731
            elif kind == "tier":
                call = lambda: (p.engine_admin.set_tier_leverage(1, step[2], sender=p.admin), p.engine_admin.set_tier(owners[step[1]], 1, sender=p.admin))  # noqa: E731
            else:
                call = lambda: p.engine_admin.set_max_vault_utilization(step[1], sender=p.admin)  # noqa: E731
            p.revert_reason(call)  # out-of-bounds values are refused; either way, same block
            after = liquidatable(p, owners)
            if before is not None and after is not None:
                assert after <= before, (step, sorted(after - before))
