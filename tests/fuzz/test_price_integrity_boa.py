"""Price integrity on titanoboa: margin at the conservative price (S5) and liquidation that never
beats closing (S6), attacks first, then a property over hostile price paths.

The mark is a 180 s TWAP of the index here, so after a jump it lags the index: exactly the
window in which a lagging mark used to hand out margin (S5) and a better liquidation price than
closing (S6). Test names end in `_boa`.
"""

import boa
import pytest
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule, run_state_machine_as_test

from boa_protocol import START_PRICE, examples, oracle_answer
from protocol_machine import ProtocolMachine
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
MARK_WINDOW = 180
TOKEN = 10**6
INSUFFICIENT_MARGIN = "engine: insufficient margin"


def lagging_market(p, **changes):
    """Market 0 with a 180 s TWAP mark and a steady price history behind it."""
    p.set_market(mark_window=MARK_WINDOW, **changes)
    for _ in range(4):
        boa.env.time_travel(seconds=60)
        p.push_price(oracle_answer(START_PRICE))


def test_a_lagging_mark_creates_no_margin_for_a_short_after_a_jump_boa(boa_protocol):
    """S5, the attack: after a +10 % jump the mark still reads about 150,000 while shorts fill at
    165,000, so a short booked at the mark shows a profit of 15,000 per unit. 700 of collateral
    opened a 454,545 short (about 649x) through the 10x check; now it is refused."""
    p = boa_protocol
    with boa.env.anchor():
        p.seed_vault(10_000_000 * TOKEN)
        lagging_market(p, max_premium=0, maker_fee=0, taker_fee=0)
        p.push_price(oracle_answer(START_PRICE * 11 // 10))
        index, mark = p.engine.index_price(0), p.engine.mark_price(0)
        assert mark < index * 95 // 100, (index, mark)
        attacker = p.traders[0]
        p.deposit(attacker, 700 * TOKEN)
        size = 454_545 * WAD // 165_000
        reason = p.revert_reason(lambda: p.engine.modify_position(0, -size, 0, sender=attacker))
        assert reason == INSUFFICIENT_MARGIN, f"a {454_545:,} short on 700 of collateral: {reason or 'filled'}"
        # the same short on 10x worth of collateral still opens
        p.deposit(attacker, 45_455 * TOKEN)
        p.engine.modify_position(0, -size, 0, sender=attacker)
        health = p.engine.margin_health(attacker, 0)
        assert health.equity >= health.initial_margin
        assert not p.lens.is_liquidatable(attacker, 0)


def test_a_lagging_mark_frees_no_collateral_for_withdrawal_boa(boa_protocol):
    """S5 for withdrawals: a long opened before a -10 % gap is worth the index, not the lagging
    mark; free_collateral (the lens) and withdraw (the engine) agree on it."""
    p = boa_protocol
    with boa.env.anchor():
        p.seed_vault(10_000_000 * TOKEN)
        lagging_market(p, max_premium=0, maker_fee=0, taker_fee=0)
        trader = p.traders[0]
        p.deposit(trader, 100_000 * TOKEN)
        p.engine.modify_position(0, 5 * WAD, MAX_UINT256, sender=trader)
        p.push_price(oracle_answer(START_PRICE * 9 // 10))
        assert p.engine.mark_price(0) > 149_000 * WAD  # the mark still reads about 150,000
        # at the mark the long is flat and 25,000 looks free; at the index it lost 75,000
        assert p.lens.free_collateral(trader, 0) == 0
        reason = p.revert_reason(lambda: p.engine.withdraw(1_000 * TOKEN, sender=trader))
        assert reason == INSUFFICIENT_MARGIN, f"withdrew 1,000 of margin the index does not back: {reason}"


def test_liquidation_after_a_gap_never_beats_closing_boa(boa_protocol):
    """S6, the attack: after a gap down the lagging mark is above the index, so a long closed by
    liquidation at the mark kept more (with its own second account's reward) than closing at
    the index: 4,495 against 1,013 after a -9 % gap. Now the liquidation closes at the worse of
    the two for the account, and its fee is at least the closing fee."""
    p = boa_protocol
    with boa.env.anchor():
        p.seed_vault(10_000_000 * TOKEN)
        lagging_market(p)
        trader, second = p.traders[0], p.traders[1]
        p.deposit(trader, 16_000 * TOKEN)
        p.engine.modify_position(0, WAD, MAX_UINT256, sender=trader)
        p.push_price(oracle_answer(START_PRICE * 91 // 100))
        # the TWAP mark falls toward the index: 5/6 of the way after 150 s, enough to liquidate
        boa.env.time_travel(seconds=150)
        p.push_price(oracle_answer(START_PRICE * 91 // 100))
        assert p.engine.mark_price(0) > p.engine.index_price(0)
        assert p.lens.is_liquidatable(trader, 0)

        with boa.env.anchor():
            p.engine.close_position(0, 0, sender=trader)
            by_closing = p.engine.collateral(trader, 0)
        p.engine_risk.liquidate(trader, 0, sender=second)
        # a partial liquidation leaves a position: the trader closes the rest at the same index
        if p.engine.open_positions(trader, 0, 0).size != 0:
            p.engine.close_position(0, 0, sender=trader)
        by_liquidation = p.engine.collateral(trader, 0) + p.engine.collateral(second, 0)
        assert by_liquidation <= max(by_closing, 0), (by_liquidation, by_closing)


def test_the_liquidation_fee_stays_at_least_every_taker_fee_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        fee = p.engine_admin.liquidation_params().fee
        reason = p.revert_reason(lambda: p.set_market(taker_fee=fee + 10**8))
        assert reason == "engine_admin: taker fee above liquidation fee"
        params = list(p.engine_admin.liquidation_params())
        params[0] = p.config.taker_fee - 10**8
        reason = p.revert_reason(lambda: p.engine_admin.set_liquidation_params(tuple(params), sender=p.admin))
        assert reason == "engine_admin: liquidation fee below a taker fee"
        p.set_market(taker_fee=fee)  # equal is allowed


class ConservativeMarginMachine(ProtocolMachine):
    """Hostile index paths under a lagging mark; after every successful open, increase or
    withdrawal the account must not be liquidatable at the same index and mark (S5)."""

    @initialize()
    def setup(self):
        p = self.p
        p.seed_vault(50_000_000 * TOKEN)
        lagging_market(p, max_premium=0)
        self.answer = oracle_answer(START_PRICE)
        for trader in p.traders:
            p.deposit(trader, 20_000 * TOKEN)

    @rule(move_bps=st.sampled_from([-1_400, -900, -500, -100, 100, 500, 900, 1_400]))
    def jump(self, move_bps):
        self.answer = self.answer * (10_000 + move_bps) // 10_000
        self.p.push_price(self.answer)
        event(f"jump {move_bps:+}")

    @rule(seconds=st.sampled_from([5, 30, 90, 400]))
    def wait(self, seconds):
        boa.env.time_travel(seconds=seconds)
        self.p.push_price(self.answer)

    @rule(i=st.integers(0, 3), units_milli=st.integers(-2_000, 2_000).filter(bool))
    def trade(self, i, units_milli):
        trader = self.p.traders[i]
        size = units_milli * WAD // 1_000
        limit = MAX_UINT256 if size > 0 else 0
        held = self.p.engine.open_positions(trader, 0, 0).size
        reason = self.p.revert_reason(lambda: self.p.engine.modify_position(0, size, limit, sender=trader))
        adds_risk = abs(held + size) > abs(held) or (held != 0 and (held > 0) != (held + size > 0))
        event(f"trade: {reason or 'filled'}")
        if reason is None and adds_risk:
            self._assert_not_liquidatable(trader, "open/increase")

    @rule(i=st.integers(0, 3), units=st.integers(1, 20_000))
    def withdraw(self, i, units):
        trader = self.p.traders[i]
        reason = self.p.revert_reason(lambda: self.p.engine.withdraw(units * TOKEN, sender=trader))
        event(f"withdraw: {reason or 'done'}")
        if reason is None:
            self._assert_not_liquidatable(trader, "withdraw")

    def _assert_not_liquidatable(self, trader, what):
        type(self).checks += 1
        health = self.p.engine.account_health(trader, 0)
        assert health.equity >= health.maintenance_margin, f"liquidatable right after {what}: {health}"

    @invariant()
    def lens_agrees_with_the_engine(self):
        for trader in self.p.traders:
            free = self.p.lens.free_collateral(trader, 0)
            if free:
                with boa.env.anchor():
                    assert self.p.revert_reason(lambda: self.p.engine.withdraw(free, sender=trader)) is None


def test_no_account_that_passed_a_margin_check_is_liquidatable_at_the_same_prices_boa(boa_protocol):
    machine = type("Machine", (ConservativeMarginMachine,), {"protocol": boa_protocol, "checks": 0})
    with boa.env.anchor():
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples(10),
                stateful_step_count=25,
                deadline=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=list(HealthCheck),
            ),
        )
    assert machine.checks > 20
