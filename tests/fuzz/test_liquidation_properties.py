"""Stateful property test of liquidations, run in-process on titanoboa (not anvil).

Random deposits, trades, price moves (crashes included) and time. After every step:
- every account below maintenance margin can be liquidated: tried inside an anchor (a
  snapshot that is then rolled back), it succeeds and leaves the account healthy or flat;
- every account above it cannot be;
- solvency: the tokens the engine holds equal, exactly, every account's collateral plus the
  vault's and the insurance fund's balances (each move is double-entry), and no account is
  left with negative collateral and no position.
Examples run with an empty insurance fund (no fees) and a thin vault that bad debt can
exhaust, as well as with fees and a deep vault.
"""

import boa
import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule, run_state_machine_as_test
from boa_protocol import examples

from protocol_machine import ProtocolMachine
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
ORACLE_DECIMALS = 8
START_ANSWER = 150_000 * 10**ORACLE_DECIMALS
PRICE_FLOOR = 10_000 * 10**ORACLE_DECIMALS
PRICE_CEILING = 400_000 * 10**ORACLE_DECIMALS
TRADE_REVERTS = {
    "engine: insufficient margin",
    "engine: below maintenance margin",
    "engine: position above size limit",
    "engine: market is reduce-only",  # a crash or a rally beyond the breaker's move
    "engine: realized loss above collateral",  # S1: a reduce whose loss the collateral cannot pay
}
NOT_LIQUIDATABLE = "engine: account not liquidatable"


class LiquidationMachine(ProtocolMachine):
    liquidations_tried = 0

    def __init__(self):
        super().__init__()
        self.liquidator = self.p.other_lp
        self.answer = START_ANSWER
        self.ready = False

    @initialize(
        fees=st.booleans(),
        vault_units=st.sampled_from([20_000 * 10**6, 10_000_000 * 10**6]),
        deposits=st.lists(st.integers(20_000, 400_000), min_size=4, max_size=4),
    )
    def setup(self, fees, vault_units, deposits):
        changes = {"mark_window": 0}
        if not fees:
            changes.update(maker_fee=0, taker_fee=0)
        self.p.set_market(**changes)
        self.p.seed_vault(vault_units)
        for trader, amount in zip(self.traders, deposits):
            self.p.deposit(trader, amount * 10**6)
        event(f"fees {'on' if fees else 'off'}, vault {vault_units // 10**6:,}")
        self.ready = True

    @rule(i=st.integers(0, 3), amount=st.integers(1, 100_000 * 10**6))
    def deposit(self, i, amount):
        self.p.deposit(self.traders[i], amount)

    @rule(i=st.integers(0, 3), leverage_tenths=st.integers(5, 110), short=st.booleans())
    def add_risk(self, i, leverage_tenths, short):
        """Adds a position worth leverage x equity (up to 11x, beyond the 10x limit)."""
        trader = self.traders[i]
        equity = self.engine.account_health(trader, 0).equity
        if equity <= 0:
            return
        size = equity * leverage_tenths // 10 * WAD // self.engine.index_price(0)
        self._trade(trader, -size if short else size)

    @rule(i=st.integers(0, 3), fraction_pct=st.integers(1, 100))
    def reduce(self, i, fraction_pct):
        trader = self.traders[i]
        held = self.engine.open_positions(trader, 0, 0).size
        if held != 0:
            self._trade(trader, -(held * fraction_pct // 100) or -held)

    def _trade(self, trader, size):
        if size == 0:
            return
        limit = MAX_UINT256 if size > 0 else 0
        reason = self.p.revert_reason(lambda: self.engine.modify_position(0, size, limit, sender=trader))
        assert reason is None or reason in TRADE_REVERTS, reason
        event(f"trade: {reason or 'filled'}")

    @rule(move_bps=st.sampled_from([-9_000, -3_000, -1_500, -1_000, -500, -100, 100, 500, 1_500, 3_000]))
    def move_price(self, move_bps):
        self.answer = max(PRICE_FLOOR, min(PRICE_CEILING, self.answer * (10_000 + move_bps) // 10_000))
        self.p.push_price(self.answer)
        event(f"price move {move_bps:+} bps")

    @rule(seconds=st.integers(1, 3 * 86400))
    def pass_time(self, seconds):
        boa.env.time_travel(seconds=seconds)
        self.p.push_price(self.answer)

    @rule(i=st.integers(0, 3))
    def liquidate(self, i):
        trader = self.traders[i]
        liquidatable = self.p.lens.is_liquidatable(trader, 0)
        reason = self.p.revert_reason(lambda: self.p.engine_risk.liquidate(trader, 0, sender=self.liquidator))
        assert reason == (None if liquidatable else NOT_LIQUIDATABLE)
        event(f"liquidate: {reason or 'done'}")

    @invariant()
    def liquidatable_accounts_can_be_liquidated_and_books_balance(self):
        if not self.ready:
            return
        type(self).checked_steps += 1
        engine, lens = self.engine, self.p.lens
        for trader in self.traders:
            liquidatable = lens.is_liquidatable(trader, 0)
            with boa.env.anchor():
                reason = self.p.revert_reason(lambda: self.p.engine_risk.liquidate(trader, 0, sender=self.liquidator))
                if liquidatable:
                    type(self).liquidations_tried += 1
                    assert reason is None, reason
                    assert not lens.is_liquidatable(trader, 0)
                    self._assert_solvent()
                else:
                    assert reason == NOT_LIQUIDATABLE
        self._assert_solvent()

    def _assert_solvent(self):
        engine = self.engine
        holders = [*self.traders, self.liquidator]
        collateral = [engine.collateral(h, 0) for h in holders]
        held = self.p.token.balanceOf(engine) * engine.collateral_scale()
        assert held == sum(collateral) + engine.vault_balance() + engine.insurance_balance()
        for holder, amount in zip(holders, collateral):
            if engine.open_markets(holder, 0) == 0:
                assert amount >= 0
        assert engine.insurance_balance() >= 0


# the derandomized "ci" profile: a fixed set of 15 examples (about 20 s), so `make test` always
# reaches liquidatable states (checked below); `make fuzz` runs 150 fresh ones
MACHINE_SETTINGS = settings(
    max_examples=examples(15),
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_every_account_below_maintenance_can_be_liquidated_and_books_stay_solvent_boa(boa_protocol):
    machine = type(
        "LiquidationMachineBoa",
        (LiquidationMachine,),
        {"protocol": boa_protocol, "checked_steps": 0, "liquidations_tried": 0},
    )
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    assert machine.checked_steps >= MACHINE_SETTINGS.max_examples
    # the price walk must actually put accounts under water, or the property is vacuous
    assert machine.liquidations_tried > 0
