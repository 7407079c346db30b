"""The trader simulation on the e2e devnet: traders open at their leverage, hold for their
holding time, then close; the LP deposits on its schedule."""

from decimal import Decimal

import pytest

from vyperp.sim.traders import LEVERAGE_HEADROOM, LpProfile, TraderProfile, TraderSimulation

STEADY = TraderProfile("steady", Decimal(3), Decimal(50_000), hold_steps=2)
QUICK = TraderProfile("quick", Decimal(8), Decimal(20_000), hold_steps=1)
LP = LpProfile("lp", Decimal(10_000), every_steps=2)


@pytest.fixture
def simulation(sdk, accounts, admin):
    # HD indices 20+: clear of the role accounts and of the devnet's own simulated traders
    sim = TraderSimulation.with_test_accounts(sdk, accounts, (STEADY, QUICK), LP,
                                              first_index=20, seed=7)  # fmt: skip
    sim.fund(admin)
    return sim


def by_actor(actions):
    return {action.actor: action for action in actions}


def test_funding_deposits_each_traders_collateral(simulation, sdk):
    steady, quick = (trader.account for trader in simulation.traders)
    assert sdk.account(steady).collateral == STEADY.collateral
    assert sdk.account(quick).collateral == QUICK.collateral
    assert sdk.wallet_balance(simulation.lp[1]) == 0  # its tokens are minted as it deposits


def test_traders_open_at_their_leverage_hold_then_close_and_the_lp_deposits(simulation, sdk):
    steady, quick = (trader.account for trader in simulation.traders)
    lp = simulation.lp[1]

    first = by_actor(simulation.step())
    assert {a.kind for a in first.values()} == {"open"} and set(first) == {"steady", "quick"}
    for profile, account in ((STEADY, steady), (QUICK, quick)):
        state = sdk.account(account)
        (position,) = state.positions
        assert position.market == first[profile.name].market
        assert position.size == first[profile.name].size != 0
        market = sdk.market(position.market)
        target = min(profile.leverage, market.max_leverage * LEVERAGE_HEADROOM)
        # sized at the index on equity before the fee: within 1 % of the target
        assert abs(state.leverage - target) / target < Decimal("0.01")
    shares_before = sdk.lp_position(lp).shares
    assert shares_before == 0  # the LP's turn comes every second step

    second = by_actor(simulation.step())
    assert second["quick"].kind == "close"  # held one step
    assert second["quick"].size == -first["quick"].size
    assert "steady" not in second  # holds two steps
    assert sdk.account(quick).positions == ()
    assert len(sdk.account(steady).positions) == 1
    assert second["lp"].kind == "lp_deposit"
    assert sdk.lp_position(lp).value == pytest.approx(LP.deposit, rel=Decimal("1e-6"))
    assert sdk.wallet_balance(lp) == 99 * LP.deposit  # a hundred deposits minted, one made

    third = by_actor(simulation.step())
    assert third["steady"].kind == "close" and third["quick"].kind == "open"
    assert sdk.account(steady).positions == ()
    assert len(sdk.account(quick).positions) == 1
    assert "lp" not in third
