"""Property tests of the Engine and LiquidityVault, run in-process on titanoboa (not anvil).

The Ape suites on anvil are the integration truth; this module is the heavy fuzzing:
- a Hypothesis state machine drives four traders, the oracle, the clock and the funding
  mode against an independent Python model of PROTOCOL.md, and checks after every step
  that funding is zero-sum, the engine is solvent and open interest adds up;
- round trips at one price and one timestamp never gain (trading; LP deposit/mint, then a
  redemption request claimed after the delay with the engine state held still);
- deterministic regressions for the defects the fuzzing found.

Every test name ends in `_boa`. Money is 18-decimal inside the engine, token units outside.
"""

import copy
from dataclasses import dataclass, field
from fractions import Fraction

import boa
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from boa_protocol import examples
from protocol_machine import ProtocolMachine
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
ORACLE_DECIMALS = 8
FUNDING_PERIOD = 8 * 3600
VELOCITY_PERIOD = 86_400
ORACLE_TO_WAD = 10**10
LP_SEED_UNITS = 10_000_000 * 10**6
START_ANSWER = 150_000 * 10**ORACLE_DECIMALS
# The machine's price walk stays inside this band, narrower than the 2x a 100 % breaker needs.
PRICE_FLOOR = 100_000 * 10**ORACLE_DECIMALS
PRICE_CEILING = 190_000 * 10**ORACLE_DECIMALS

INSUFFICIENT_MARGIN = "engine: insufficient margin"
BELOW_MAINTENANCE = "engine: below maintenance margin"
INSUFFICIENT_COLLATERAL = "engine: insufficient collateral"


# ---------------------------------------------------------------------------
# Integer helpers with explicit rounding (Python's // floors; Vyper's signed // truncates)
# ---------------------------------------------------------------------------


def trunc_div(x: int, y: int) -> int:
    quotient = abs(x) // abs(y)
    return quotient if (x >= 0) == (y > 0) else -quotient


def floor_div(x: int, y: int) -> int:
    return x // y


def ceil_div(x: int, y: int) -> int:
    return -((-x) // y)


def clamp(x: int, bound: int) -> int:
    return max(-bound, min(bound, x))


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


# ---------------------------------------------------------------------------
# Python model of one market of the engine, written from PROTOCOL.md
# ---------------------------------------------------------------------------


@dataclass
class Position:
    size: int = 0
    cost: int = 0
    snapshot: int = 0


@dataclass
class TradeOutcome:
    revert: str | None
    fill_price: int = 0
    fee: int = 0
    realized: int = 0
    funding_paid: int = 0
    new_size: int = 0


@dataclass
class EngineModel:
    """What PROTOCOL.md says the engine's books hold for market 0 and a few accounts."""

    config: object
    fee_share: int
    scale: int
    answer: int
    funding_index: int
    funding_rate: int
    last_funding_time: int
    positions: dict = field(default_factory=dict)
    collateral: dict = field(default_factory=dict)
    vault_balance: int = 0
    insurance_balance: int = 0
    engine_tokens: int = 0
    # Funding ledger: what traders were charged at settlements, against the exact rational owed.
    funding_settled: int = 0
    funding_exact: Fraction = Fraction(0)
    settlements: int = 0

    # -- prices -------------------------------------------------------------

    @property
    def index_price(self) -> int:
        return self.answer * ORACLE_TO_WAD

    @property
    def skew(self) -> int:
        return sum(p.size for p in self.positions.values())

    def premium_integral(self, skew: int) -> Fraction:
        """G(S) = integral from 0 to S of clamp(t / skew_scale, +-max_premium) dt, exactly."""
        k = Fraction(self.config.skew_scale, WAD)
        m = Fraction(self.config.max_premium, WAD)
        x = Fraction(abs(skew), WAD)
        return x * x / (2 * k) if x <= m * k else m * x - m * m * k / 2

    def exact_fill_price(self, size_delta: int) -> Fraction:
        """I * (1 + the average premium over the skew the trade moves through): PROTOCOL.md's
        (p(S) + p(S + delta)) / 2 below the clamp, exact across it (docs/protocol.md)."""
        moved = self.premium_integral(self.skew + size_delta) - self.premium_integral(self.skew)
        return self.index_price * (1 + moved / Fraction(size_delta, WAD))

    def fill_price_bounds(self, size_delta: int) -> tuple[int, int]:
        """The exact fill rounded against the trader, plus the 1 wei the engine's rounding of
        the premium integral may add in the same direction."""
        exact = self.exact_fill_price(size_delta)
        if size_delta > 0:
            return ceil_div(exact.numerator, exact.denominator), ceil_div(exact.numerator, exact.denominator) + 1
        return floor_div(exact.numerator, exact.denominator) - 1, floor_div(exact.numerator, exact.denominator)

    def fill_price(self, size_delta: int) -> int:
        low, high = self.fill_price_bounds(size_delta)
        return low if size_delta > 0 else high

    # -- funding ------------------------------------------------------------

    def pending_funding(self, now: int) -> tuple[int, int]:
        """(funding index, rate per 8 h) as if accrued at `now`."""
        elapsed = now - self.last_funding_time
        if elapsed == 0:
            return self.funding_index, self.funding_rate
        config = self.config
        proportional_skew = trunc_div(self.skew * WAD, config.skew_scale)
        if config.dynamic_funding:
            # S12: the exact integral of the clamped rate, linear up to the clamp, then flat; the
            # rate starts clamped (a lowered clamp binds at once) and is stored floored.
            bound = config.max_funding_rate
            slope = Fraction(clamp(proportional_skew, WAD) * config.max_funding_velocity, WAD * VELOCITY_PERIOD)
            start = clamp(self.funding_rate, bound)
            target = bound if slope > 0 else -bound
            linear = elapsed if slope == 0 else min(Fraction(elapsed), (target - start) / slope)
            end = start + slope * linear
            integral = (start + end) / 2 * linear + end * (elapsed - linear)
            rate = floor_div(end.numerator, end.denominator)
            exact = integral * self.index_price / (FUNDING_PERIOD * WAD)
            return self.funding_index + floor_div(exact.numerator, exact.denominator), rate
        premium = clamp(proportional_skew, config.max_premium)
        rate = clamp(premium + config.interest_rate, config.max_funding_rate)
        increment = floor_div(rate * elapsed * self.index_price, FUNDING_PERIOD * WAD)
        return self.funding_index + increment, rate

    def accrue(self, now: int):
        self.funding_index, self.funding_rate = self.pending_funding(now)
        self.last_funding_time = now

    def owed(self, position: Position, funding_index: int) -> int:
        """Funding a position owes since its snapshot, rounded up (against payer and receiver)."""
        return ceil_div(position.size * (funding_index - position.snapshot), WAD)

    def settle(self, trader) -> int | None:
        """Moves owed funding from the trader to the vault; None when there was nothing to settle."""
        position = self.positions[trader]
        if position.size == 0:
            return None
        owed = self.owed(position, self.funding_index)
        if owed == 0 and position.snapshot == self.funding_index:
            return None
        self.funding_exact += Fraction(position.size * (self.funding_index - position.snapshot), WAD)
        self.funding_settled += owed
        self.settlements += 1
        self.collateral[trader] -= owed
        self.vault_balance += owed
        position.snapshot = self.funding_index
        return owed

    # -- valuation ----------------------------------------------------------

    def value(self, trader, now: int) -> tuple[int, int, int]:
        """(unrealized PnL, funding owed, notional) of the trader's position at mark = index."""
        position = self.positions[trader]
        if position.size == 0:
            return 0, 0, 0
        mark = self.index_price
        funding_index, _ = self.pending_funding(now)
        pnl = floor_div(position.size * mark, WAD) - position.cost
        return pnl, self.owed(position, funding_index), ceil_div(abs(position.size) * mark, WAD)

    def margins(self, notional: int) -> tuple[int, int]:
        return ceil_div(notional * self.config.imr, WAD), ceil_div(notional * self.config.mmr, WAD)

    # -- actions ------------------------------------------------------------

    def deposit(self, trader, units: int):
        self.collateral[trader] += units * self.scale
        self.engine_tokens += units

    def seed_vault(self, units: int):
        self.vault_balance += units * self.scale
        self.engine_tokens += units

    def trade(self, trader, size_delta: int, now: int, price: int | None = None) -> TradeOutcome:
        """Applies a trade to this model (at `price`, else at the exact fill rounded against the
        trader); the outcome names the revert the engine must give."""
        self.accrue(now)
        funding_paid = self.settle(trader)
        old = copy.copy(self.positions[trader])
        skew_before = self.skew
        if price is None:
            price = self.fill_price(size_delta)
        new, realized = self._apply_fill(old, size_delta, price)
        adds_risk = abs(new.size) > abs(old.size) or (old.size != 0 and new.size != 0 and sign(new.size) != sign(old.size))

        notional = ceil_div(abs(size_delta) * price, WAD)
        fee = self._trade_fee(skew_before, size_delta, notional)
        self.collateral[trader] += realized - fee
        self.vault_balance -= realized
        to_vault = fee * self.fee_share // WAD
        self.vault_balance += to_vault
        self.insurance_balance += fee - to_vault
        self.positions[trader] = new

        pnl, owed, position_notional = self.value(trader, now)
        equity = self.collateral[trader] + pnl - owed
        initial, maintenance = self.margins(position_notional)
        if adds_risk and equity < initial:
            return TradeOutcome(revert=INSUFFICIENT_MARGIN)
        if not adds_risk and equity < maintenance:
            return TradeOutcome(revert=BELOW_MAINTENANCE)
        return TradeOutcome(
            revert=None,
            fill_price=price,
            fee=fee,
            realized=realized,
            funding_paid=funding_paid or 0,
            new_size=new.size,
        )

    def withdraw(self, trader, units: int, now: int) -> tuple[str | None, list]:
        """(expected revert, funding settlements) of a withdrawal."""
        settlements = []
        if self.positions[trader].size != 0:
            self.accrue(now)
            owed = self.settle(trader)
            if owed is not None:
                settlements.append(owed)
        debit = units * self.scale
        if self.collateral[trader] < debit:
            return INSUFFICIENT_COLLATERAL, settlements
        self.collateral[trader] -= debit
        self.engine_tokens -= units
        pnl, owed, notional = self.value(trader, now)
        initial, _ = self.margins(notional)
        if self.collateral[trader] + min(0, pnl) - owed < initial:
            return INSUFFICIENT_MARGIN, settlements
        return None, settlements

    def set_dynamic_funding(self, dynamic: bool, now: int):
        self.accrue(now)
        self.config = self.config.with_(dynamic_funding=dynamic)

    def _apply_fill(self, position: Position, size_delta: int, price: int) -> tuple[Position, int]:
        """Cost basis rounds against the holder (up); an opened position snapshots the index now."""
        size = position.size
        new_size = size + size_delta
        realized = 0
        if size == 0:
            return Position(new_size, ceil_div(size_delta * price, WAD), self.funding_index), 0
        if sign(size) == sign(size_delta):
            new_cost = position.cost + ceil_div(size_delta * price, WAD)
        elif new_size == 0 or sign(new_size) == sign(size):
            new_cost = ceil_div(position.cost * new_size, size) if size > 0 else ceil_div(-position.cost * new_size, -size)
            realized = floor_div(-size_delta * price, WAD) - (position.cost - new_cost)
        else:
            realized = floor_div(size * price, WAD) - position.cost
            new_cost = ceil_div(new_size * price, WAD)
        if new_size == 0:
            return Position(), realized
        return Position(new_size, new_cost, position.snapshot), realized

    def _trade_fee(self, skew: int, size_delta: int, notional: int) -> int:
        """Maker rate on the part that reduces |skew|, taker on the rest; rounded up."""
        size = abs(size_delta)
        maker_size = min(size, abs(skew)) if sign(skew) == -sign(size_delta) else 0
        weighted = maker_size * self.config.maker_fee + (size - maker_size) * self.config.taker_fee
        return ceil_div(notional * weighted, size * WAD)


# ---------------------------------------------------------------------------
# 1. Stateful: traders, oracle, clock and funding mode against the model
# ---------------------------------------------------------------------------

SKEW_SCALES = [40 * WAD, 400 * WAD, 4_000 * WAD, 1_000_000 * WAD]
RISK_ADDING_KINDS = ["long", "short", "increase"]
# A flip adds risk too, but it starts from an open position like a reduce or close.
RISK_REDUCING_KINDS = ["reduce", "close", "flip"]


class EngineMachine(ProtocolMachine):
    """Four traders trade market 0 while the price walks and time passes; every step is
    mirrored in EngineModel and the books are checked against it and against each other."""

    def __init__(self):
        super().__init__()
        self.model = None
        # Independent of the model: what FundingSettled and PositionModified events reported.
        self.event_funding = 0
        self.event_realized = 0
        self.event_vault_fees = 0

    # -- setup --------------------------------------------------------------

    @initialize(
        dynamic=st.booleans(),
        skew_scale=st.sampled_from(SKEW_SCALES),
        deposits=st.lists(st.integers(20_000, 3_000_000), min_size=4, max_size=4),
    )
    def setup(self, dynamic, skew_scale, deposits):
        config = self.p.set_market(dynamic_funding=dynamic, skew_scale=skew_scale)
        engine = self.engine
        self.model = EngineModel(
            config=config,
            fee_share=self.p.engine_admin.vault_fee_share(),
            scale=engine.collateral_scale(),
            answer=self.p.oracle.latestAnswer(),
            funding_index=engine.funding_index(0),
            funding_rate=engine.funding_rate(0),
            last_funding_time=engine.last_funding_time(0),
            positions={t: Position() for t in self.traders},
            collateral={t: 0 for t in self.traders},
        )
        self.p.seed_vault(LP_SEED_UNITS)
        self.model.seed_vault(LP_SEED_UNITS)
        for trader, amount in zip(self.traders, deposits):
            units = amount * 10**6
            self.p.deposit(trader, units)
            self.model.deposit(trader, units)

    # -- rules --------------------------------------------------------------

    @rule(i=st.integers(0, 3), amount=st.integers(1, 500_000 * 10**6))
    def deposit(self, i, amount):
        trader = self.traders[i]
        self.p.deposit(trader, amount)
        self.model.deposit(trader, amount)

    @rule(i=st.integers(0, 3), amount=st.integers(1, 400_000 * 10**6))
    def withdraw(self, i, amount):
        trader = self.traders[i]
        trial = copy.deepcopy(self.model)
        expected, settlements = trial.withdraw(trader, amount, self.p.now())
        actual = self.p.revert_reason(lambda: self.engine.withdraw(amount, sender=trader))
        assert actual == expected
        event(f"withdraw: {actual or 'paid'}")
        if actual is None:
            self._check_funding_events(settlements)
            self.model = trial

    # Two trade rules, so that trades are a third of all steps.
    @rule(
        i=st.integers(0, 3),
        kind=st.sampled_from(RISK_ADDING_KINDS),
        size=st.integers(10**15, 25 * WAD),
    )
    def add_risk(self, i, kind, size):
        self._trade(i, kind, size, 0)

    @rule(
        i=st.integers(0, 3),
        kind=st.sampled_from(RISK_REDUCING_KINDS),
        size=st.integers(10**15, 25 * WAD),
        fraction_ppm=st.integers(1, 999_999),
    )
    def reduce_close_or_flip(self, i, kind, size, fraction_ppm):
        self._trade(i, kind, size, fraction_ppm)

    def _trade(self, i, kind, size, fraction_ppm):
        trader = self.traders[i]
        held = self.model.positions[trader].size
        if kind == "close":
            if held == 0:
                reason = self.p.revert_reason(lambda: self.engine.close_position(0, 0, sender=trader))
                assert reason == "engine: no position"
                return
            delta = -held
        elif kind == "reduce" and held != 0:
            delta = -trunc_div(held * fraction_ppm, 10**6) or -sign(held)
        elif kind == "increase" and held != 0:
            delta = sign(held) * size
        elif kind == "flip" and held != 0:
            delta = -held - sign(held) * size
        elif kind == "short":
            delta = -size
        else:
            delta = size

        trial = copy.deepcopy(self.model)
        expected = trial.trade(trader, delta, self.p.now())
        limit = MAX_UINT256 if delta > 0 else 0
        if kind == "close":
            actual = self.p.revert_reason(lambda: self.engine.close_position(0, limit, sender=trader))
        else:
            actual = self.p.revert_reason(lambda: self.engine.modify_position(0, delta, limit, sender=trader))
        assert actual == expected.revert, f"trade {delta} by trader {i}"
        event(f"trade {kind}: {actual or 'filled'}")
        if actual is not None:
            return

        (modified,) = self.p.events(self.engine, "PositionModified")
        low, high = self.model.fill_price_bounds(delta)
        assert low <= modified.fill_price <= high
        if modified.fill_price != expected.fill_price:
            trial = copy.deepcopy(self.model)
            expected = trial.trade(trader, delta, self.p.now(), price=modified.fill_price)
            assert expected.revert is None
        assert (modified.size_delta, modified.new_size) == (delta, expected.new_size)
        assert modified.fee == expected.fee
        assert modified.realized_pnl == expected.realized
        assert modified.funding_paid == expected.funding_paid
        # a trade reports its settlement in PositionModified only
        self._check_funding_events([])
        self.event_funding += modified.funding_paid
        self.event_realized += modified.realized_pnl
        self.event_vault_fees += modified.fee * self.model.fee_share // WAD
        self.model = trial

    @rule(move_bps=st.integers(-1_000, 1_000))
    def move_price(self, move_bps):
        answer = self.model.answer * (10_000 + move_bps) // 10_000
        answer = max(PRICE_FLOOR, min(PRICE_CEILING, answer))
        self.p.push_price(answer)
        self.model.answer = answer

    @rule(seconds=st.integers(1, 8 * 3600), checkpoint=st.booleans())
    def pass_time(self, seconds, checkpoint):
        boa.env.time_travel(seconds=seconds)
        # The reporter re-publishes the price so that the index never goes stale.
        self.p.push_price(self.model.answer)
        if checkpoint:
            self.engine.checkpoint_funding([0])
            self.model.accrue(self.p.now())

    @rule()
    def toggle_funding_mode(self):
        dynamic = not self.model.config.dynamic_funding
        self.p.set_market(dynamic_funding=dynamic, skew_scale=self.model.config.skew_scale)
        self.model.set_dynamic_funding(dynamic, self.p.now())

    def _check_funding_events(self, expected_settlements):
        settled = [log.amount for log in self.p.events(self.engine, "FundingSettled")]
        assert settled == expected_settlements
        self.event_funding += sum(settled)

    # -- invariants ---------------------------------------------------------

    @invariant()
    def books_match_model_and_balance(self):
        model, engine, now = self.model, self.engine, self.p.now()
        if model is None:
            return
        type(self).checked_steps += 1

        # Model agreement: accounts, positions and the funding accumulator.
        for i, trader in enumerate(self.traders):
            assert engine.collateral(trader, 0) == model.collateral[trader], f"collateral of trader {i}"
            stored = engine.open_positions(trader, 0, 0)
            expected = model.positions[trader]
            assert (stored.size, stored.cost, stored.funding_snapshot) == (
                expected.size,
                expected.cost,
                expected.snapshot,
            ), f"position of trader {i}"
        assert engine.funding_index(0) == model.funding_index
        assert engine.funding_rate(0) == model.funding_rate
        assert engine.last_funding_time(0) == model.last_funding_time
        assert tuple(engine.current_funding(0)) == model.pending_funding(now)

        # (c) Open interest adds up to the positions.
        sizes = [model.positions[t].size for t in self.traders]
        long_oi, short_oi = engine.long_open_interest(0), engine.short_open_interest(0)
        assert long_oi == sum(s for s in sizes if s > 0)
        assert short_oi == -sum(s for s in sizes if s < 0)
        assert long_oi - short_oi == sum(sizes) == engine.skew(0)

        # (a) Funding is zero-sum. Settled: every wei traders were charged reached the vault,
        # and the charge exceeds the exact owed by under 1 wei per settlement.
        vault_balance = engine.vault_balance()
        assert self.event_funding == model.funding_settled
        vault_from_events = LP_SEED_UNITS * model.scale + self.event_vault_fees - self.event_realized + self.event_funding
        assert vault_balance == vault_from_events
        dust = model.funding_settled - model.funding_exact
        assert 0 <= dust < max(model.settlements, 1)

        # Pending: what traders owe is at least what the vault counts on, by at most 2 wei each
        # (each position's owed and its snapshot term round up, the vault's index term down).
        open_traders = [t for t in self.traders if model.positions[t].size != 0]
        assert engine.snapshot_sum(0) == sum(
            ceil_div(model.positions[t].size * model.positions[t].snapshot, WAD) for t in open_traders
        )
        assert engine.cost_sum(0) == sum(model.positions[t].cost for t in open_traders)
        traders_owed = traders_pnl = 0
        for trader in open_traders:
            value = engine.position_value(trader, 0, 0)
            pnl, owed, notional = model.value(trader, now)
            assert (value.unrealized_pnl, value.funding_owed, value.notional) == (pnl, owed, notional)
            traders_owed += owed
            traders_pnl += pnl
        mark = model.index_price
        skew = engine.skew(0)
        pnl_at_mark = ceil_div(skew * mark, WAD) - engine.cost_sum(0)
        pnl_at_exit = (ceil_div(skew * engine.fill_price(0, -skew), WAD) if skew else 0) - engine.cost_sum(0)
        # S7: closing the net position refunds the skew premium, so with mark = index the exit
        # price never values traders below the mark; the vault's exit valuation takes the higher
        # and counts traders' net loss as 0
        assert pnl_at_exit >= pnl_at_mark
        vault_view_of_traders_pnl = max(pnl_at_exit, 0)
        vault_view_of_traders_owed = self.p.vault.equity() - vault_balance + vault_view_of_traders_pnl
        assert 0 <= traders_owed - vault_view_of_traders_owed <= 2 * len(open_traders)
        assert 0 <= pnl_at_mark - traders_pnl <= len(open_traders)
        assert self.p.vault.entry_equity() >= self.p.vault.equity()

        # (b) Solvency: tokens held cover every positive claim, and each internal move is
        # double-entry, so the books equal the tokens exactly.
        insurance = engine.insurance_balance()
        assert vault_balance == model.vault_balance
        assert insurance == model.insurance_balance
        held = self.p.token.balanceOf(engine)
        assert held == model.engine_tokens
        collaterals = [model.collateral[t] for t in self.traders]
        assert held * model.scale >= sum(max(0, c) for c in collaterals) + max(0, vault_balance) + max(0, insurance)
        assert held * model.scale == sum(collaterals) + vault_balance + insurance


# Shrinking a failing 30-step run replays it hundreds of times (minutes on py-evm); an
# unshrunk run of at most 30 steps is readable, and --hypothesis-seed replays it with shrinking.
# `make test` runs 15 fixed examples (about 30 s); `make fuzz` 150 fresh ones.
MACHINE_SETTINGS = settings(
    max_examples=examples(15),
    stateful_step_count=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_engine_books_stay_zero_sum_solvent_and_consistent_under_random_trading_boa(boa_protocol):
    machine = type("EngineMachineBoa", (EngineMachine,), {"protocol": boa_protocol, "checked_steps": 0})
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    # the invariants raise on any mismatch; this guards against a run that never reached them
    assert machine.checked_steps >= MACHINE_SETTINGS.max_examples


# ---------------------------------------------------------------------------
# 2. A trading round trip at one price and one timestamp never gains
# ---------------------------------------------------------------------------

ROUND_TRIP_SETTINGS = settings(max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow])
TRADER_DEPOSIT_UNITS = 5_000_000 * 10**6

trade_sizes = st.integers(10**15, 20 * WAD)
adjustments = st.lists(st.tuples(st.booleans(), st.integers(1, 500_000)), max_size=4)


def round_trip(p, skew_scale, background, opening, steps, fees_on):
    """Opens, adjusts and closes one position without the price or the clock moving.
    Returns the trader's collateral before and after."""
    changes = {"skew_scale": skew_scale}
    if not fees_on:
        changes.update(maker_fee=0, taker_fee=0)
    p.set_market(**changes)
    p.seed_vault(LP_SEED_UNITS)
    engine, other, trader = p.engine, p.traders[0], p.traders[1]
    if background:
        p.deposit(other, TRADER_DEPOSIT_UNITS)
        engine.modify_position(0, background, MAX_UINT256 if background > 0 else 0, sender=other)
    p.deposit(trader, TRADER_DEPOSIT_UNITS)
    start_time, start_index = p.now(), engine.funding_index(0)
    before = engine.collateral(trader, 0)

    engine.modify_position(0, opening, MAX_UINT256 if opening > 0 else 0, sender=trader)
    for increase, fraction_ppm in steps:
        held = engine.open_positions(trader, 0, 0).size
        delta = trunc_div(held * fraction_ppm, 10**6) * (1 if increase else -1)
        if delta != 0:
            engine.modify_position(0, delta, MAX_UINT256 if delta > 0 else 0, sender=trader)
    engine.close_position(0, MAX_UINT256 if opening < 0 else 0, sender=trader)

    assert engine.open_positions(trader, 0, 0).size == 0
    assert (p.now(), engine.funding_index(0)) == (start_time, start_index)
    return before, engine.collateral(trader, 0)


unclamped_skew_scales = st.sampled_from([10_000 * WAD, 100_000 * WAD, 1_000_000 * WAD])


@ROUND_TRIP_SETTINGS
@given(
    skew_scale=unclamped_skew_scales,
    background=st.integers(-30 * WAD, 30 * WAD),
    opening=trade_sizes,
    short=st.booleans(),
    steps=adjustments,
)
def test_round_trip_at_one_price_loses_at_least_fees_while_premium_is_below_its_clamp_boa(
    boa_protocol, skew_scale, background, opening, short, steps
):
    # Largest skew reachable: 30 + 20 * 1.5**4 ~ 132 units, a premium of at most 1.32 % < 5 %.
    with boa.env.anchor():
        before, after = round_trip(boa_protocol, skew_scale, background, -opening if short else opening, steps, True)
    assert after < before


@ROUND_TRIP_SETTINGS
@example(skew_scale=1_000_000 * WAD, background=-30 * WAD, opening=87519874595286528, short=False, steps=[(True, 1)])
@given(
    skew_scale=unclamped_skew_scales,
    background=st.integers(-30 * WAD, 30 * WAD),
    opening=trade_sizes,
    short=st.booleans(),
    steps=adjustments,
)
def test_round_trip_at_one_price_without_fees_never_gains_even_a_wei_boa(
    boa_protocol, skew_scale, background, opening, short, steps
):
    with boa.env.anchor():
        before, after = round_trip(boa_protocol, skew_scale, background, -opening if short else opening, steps, False)
    assert after <= before


@ROUND_TRIP_SETTINGS
@example(skew_scale=100 * WAD, background=0, opening=10 * WAD, short=False, steps=[(False, 500_000)])
@given(
    skew_scale=st.sampled_from([20 * WAD, 100 * WAD, 400 * WAD]),
    background=st.integers(-30 * WAD, 30 * WAD),
    opening=trade_sizes,
    short=st.booleans(),
    steps=adjustments,
)
def test_round_trip_at_one_price_loses_at_least_fees_when_premium_reaches_its_clamp_boa(
    boa_protocol, skew_scale, background, opening, short, steps
):
    with boa.env.anchor():
        before, after = round_trip(boa_protocol, skew_scale, background, -opening if short else opening, steps, True)
    assert after < before


# ---------------------------------------------------------------------------
# 3. LP round trips at one fixed engine state never gain
# ---------------------------------------------------------------------------

LP_SETTINGS = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])

vault_states = st.fixed_dictionaries(
    {
        "seeded": st.booleans(),
        "trader_size": st.integers(-20 * WAD, 20 * WAD),
        "move_bps": st.integers(-1_000, 1_000),
        "elapsed": st.integers(0, 8 * 3600),
    }
)


def enter_vault_state(p, seeded, trader_size, move_bps, elapsed):
    """An engine state the LP round trip then runs in: optionally a seeded vault with an open
    position, a moved price and pending funding; nothing changes during the round trip."""
    if seeded:
        p.seed_vault(LP_SEED_UNITS)
        if trader_size:
            p.deposit(p.traders[0], 2_000_000 * 10**6)
            p.engine.modify_position(0, trader_size, MAX_UINT256 if trader_size > 0 else 0, sender=p.traders[0])
    if elapsed:
        boa.env.time_travel(seconds=elapsed)
    p.push_price(START_ANSWER * (10_000 + move_bps) // 10_000)
    # Funding stops here (accrued up to now first), so the state holds still through the round
    # trip; with positions open S10 queues that change, and it is waited out and applied now.
    p.set_market(interest_rate=0, max_funding_rate=0)


def claim_after_the_delay(p, owner, shares):
    """Requests `shares`, then lets the withdrawal delay pass (funding is stopped) with the same
    index republished."""
    p.vault.request_redeem(shares, sender=owner)
    boa.env.time_travel(seconds=p.vault.withdrawal_delay())
    p.push_price(p.oracle.latestAnswer())


def totals(p):
    """(exit, entry) valuations in token units, rounded as the vault rounds them."""
    return max(0, p.vault.equity()) // p.scale, max(0, ceil_div(p.vault.entry_equity(), p.scale))


def flat(p):
    return p.engine.long_open_interest(0) == 0 and p.engine.short_open_interest(0) == 0


@LP_SETTINGS
@given(state=vault_states, assets=st.integers(1, 5_000_000 * 10**6))
def test_lp_deposit_then_redeem_never_returns_more_than_deposited_boa(boa_protocol, state, assets):
    p = boa_protocol
    lp = p.other_lp
    with boa.env.anchor():
        enter_vault_state(p, **state)
        exit_total, entry_total = totals(p)
        assert entry_total >= exit_total
        wallet = p.token.balanceOf(lp)
        shares = p.vault.deposit(assets, lp, sender=lp)
        assert shares > 0
        # What a claim would pay now: never more than the deposit, and less only by the spread
        # between the valuations (the deposit paid the entry one) and rounding.
        worth = p.vault.previewRedeem(shares)
        assert worth <= assets
        assert worth >= assets * (exit_total + 1) // (entry_total + 1) - 2
        if flat(p):
            assert worth >= assets - 1

        claim_after_the_delay(p, lp, shares)
        assert p.vault.previewRedeem(shares) == worth
        if worth == 0:
            # Shares worth under one token unit redeem to nothing.
            with boa.reverts("vault: zero withdrawal"):
                p.vault.redeem(shares, lp, lp, sender=lp)
            return
        redeemed = p.vault.redeem(shares, lp, lp, sender=lp)
        assert redeemed == worth
        assert p.token.balanceOf(lp) == wallet - assets + redeemed
        assert p.vault.balanceOf(lp) == 0 and p.vault.redeem_request(lp) == (0, 0)


@LP_SETTINGS
@given(state=vault_states, shares=st.integers(1, 5 * 10**18))
def test_lp_mint_then_withdraw_or_redeem_never_returns_more_than_paid_boa(boa_protocol, state, shares):
    p = boa_protocol
    vault, lp = p.vault, p.other_lp
    with boa.env.anchor():
        enter_vault_state(p, **state)
        exit_total, entry_total = totals(p)
        wallet = p.token.balanceOf(lp)
        paid = vault.mint(shares, lp, sender=lp)
        assert p.token.balanceOf(lp) == wallet - paid
        assert vault.balanceOf(lp) == shares
        # Withdrawing what the mint cost must burn at least the minted shares, and redeeming them
        # returns at most what they cost (1 unit less at most when no position is open).
        needed = vault.previewWithdraw(paid)
        assert needed >= shares
        worth = vault.previewRedeem(shares)
        assert worth <= paid
        assert worth >= paid * (exit_total + 1) // (entry_total + 1) - 2
        if flat(p):
            assert paid - 1 <= worth

        claim_after_the_delay(p, lp, shares)
        assert (vault.previewWithdraw(paid), vault.previewRedeem(shares)) == (needed, worth)
        with boa.env.anchor():
            if needed > shares:
                with boa.reverts("vault: shares above request"):
                    vault.withdraw(paid, lp, lp, sender=lp)
            else:
                assert vault.withdraw(paid, lp, lp, sender=lp) == shares
                assert p.token.balanceOf(lp) == wallet
        if worth == 0:
            with boa.reverts("vault: zero withdrawal"):
                vault.redeem(shares, lp, lp, sender=lp)
        else:
            assert vault.redeem(shares, lp, lp, sender=lp) == worth
            assert p.token.balanceOf(lp) == wallet - paid + worth


# ---------------------------------------------------------------------------
# Deterministic regressions for what the fuzzing found
# ---------------------------------------------------------------------------


def accrue_eight_hours_of_funding(p):
    """A seeded vault, trader 0 long 10, then 8 h of funding checkpointed: the index is > 0."""
    p.seed_vault(LP_SEED_UNITS)
    p.deposit(p.traders[0], 1_000_000 * 10**6)
    p.engine.modify_position(0, 10 * WAD, MAX_UINT256, sender=p.traders[0])
    boa.env.time_travel(seconds=8 * 3600)
    p.push_price(START_ANSWER)
    p.engine.checkpoint_funding([0])
    assert p.engine.funding_index(0) > 0


@pytest.mark.parametrize("account", ["fresh_account", "reopened_after_close"])
@pytest.mark.parametrize("size", [WAD, -WAD], ids=["long", "short"])
def test_position_opened_after_funding_accrued_owes_no_past_funding_boa(boa_protocol, account, size):
    p, engine = boa_protocol, boa_protocol.engine
    with boa.env.anchor():
        accrue_eight_hours_of_funding(p)
        trader = p.traders[1] if account == "fresh_account" else p.traders[0]
        if account == "fresh_account":
            p.deposit(trader, 1_000_000 * 10**6)
        else:
            engine.close_position(0, 0, sender=trader)
        engine.modify_position(0, size, MAX_UINT256 if size > 0 else 0, sender=trader)

        assert engine.open_positions(trader, 0, 0).funding_snapshot == engine.funding_index(0)
        assert engine.position_value(trader, 0, 0).funding_owed == 0
        # Closing in the same block: no time passed, so no funding changes hands.
        engine.close_position(0, 0 if size > 0 else MAX_UINT256, sender=trader)
        (closed,) = p.events(engine, "PositionModified")
        assert closed.funding_paid == 0


@pytest.mark.parametrize("side", [1, -1], ids=["long", "short"])
def test_reducing_a_position_keeps_the_pro_rata_cost_basis_rounded_up_by_under_one_wei_boa(boa_protocol, side):
    p, engine, trader = boa_protocol, boa_protocol.engine, boa_protocol.traders[1]
    size = side * (3 * WAD + 1)
    reduce_by = -side * WAD
    with boa.env.anchor():
        p.seed_vault(LP_SEED_UNITS)
        p.deposit(trader, 1_000_000 * 10**6)
        engine.modify_position(0, size, MAX_UINT256 if side > 0 else 0, sender=trader)
        cost = engine.open_positions(trader, 0, 0).cost
        remaining = size + reduce_by
        exact = Fraction(cost * remaining, size)
        assert exact.denominator != 1, "the pro-rata cost must be fractional for this test to bite"

        engine.modify_position(0, reduce_by, MAX_UINT256 if reduce_by > 0 else 0, sender=trader)
        (reduced,) = p.events(engine, "PositionModified")
        new_cost = engine.open_positions(trader, 0, 0).cost
        # Cost basis rounds against the holder: the smallest integer not below the exact share.
        assert new_cost == ceil_div(exact.numerator, exact.denominator)
        assert reduced.realized_pnl == floor_div(-reduce_by * reduced.fill_price, WAD) - (cost - new_cost)
