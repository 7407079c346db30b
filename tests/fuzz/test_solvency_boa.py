"""Attacks on the engine's solvency (PROTOCOL.md S1, S2, S11), run in-process on titanoboa.

S1 is checked as `s1_violations` states it: the engine's tokens cover every positive claim on
them (each account's collateral, the insurance fund, the LP vault's balance) and none of those
balances is negative, since a negative balance is a debt that somebody else's deposit pays.

- Deterministic attacks: a winner larger than the vault (+25 % on the largest long the caps
  allow, a -90 % gap under the largest short, a 3x pump of a thin market in steps the breaker
  lets through) must be paid without touching an idle trader's deposit; deleveraging must
  refuse an account whose profit is outweighed by the funding it owes (S11).
- SolvencyMachine: hostile traders, LPs, keepers and prices (+-90 % gaps, a silent feed then
  a jump, pumps, LP exits at the utilization limit, liquidations, deleveraging, funding time),
  with S1 checked after every step. Expected refusals (margin, caps, reduce-only, stale price)
  are part of the game; any other revert reason fails the run.

VYPERP_FUZZ=long runs the machine for thousands of steps instead of the `make test` budget;
`-s` shows the counts it prints. Money is 18-decimal inside the engine, token units outside.
"""

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import boa
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test
from boa_protocol import LONG_FUZZ, examples

from protocol_machine import ProtocolMachine
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
ORACLE_DECIMALS = 8
ORACLE_TO_WAD = 10 ** (18 - ORACLE_DECIMALS)
UNITS = 10**6
START_ANSWER = 150_000 * 10**ORACLE_DECIMALS
VAULT_UNITS = 1_000_000 * UNITS
DEPOSIT_UNITS = 1_000_000 * UNITS
# The fixture's oracle checks a report's deviation only while the answer is younger than this.
ORACLE_MAX_REPORT_AGE = 86_400
# Size precision of the search for the largest position the engine allows.
SIZE_PRECISION = 10**12


def human(amount: int, decimals: int = 1) -> str:
    """An 18-decimal amount for a message: -184,289.1, not -184289100000000000000000."""
    return f"{Decimal(amount) / WAD:,.{decimals}f}"


def limit_for(size_delta: int) -> int:
    """An acceptable price that never binds: a ceiling for a buy, a floor for a sell."""
    return MAX_UINT256 if size_delta > 0 else 0


def s1_violations(p, accounts: dict) -> list[str]:
    """What breaks S1 now, over the named accounts (subaccount 0); empty when it holds."""
    engine = p.engine
    held = p.token.balanceOf(engine) * p.scale
    collateral = {name: engine.collateral(owner, 0) for name, owner in accounts.items()}
    vault, insurance = engine.vault_balance(), engine.insurance_balance()
    found = []
    if vault < 0:
        found.append(f"vault balance {human(vault)} < 0")
    if insurance < 0:
        found.append(f"insurance balance {human(insurance)} < 0")
    found += [f"collateral of {name} {human(c)} < 0" for name, c in collateral.items() if c < 0]
    claims = sum(max(c, 0) for c in collateral.values()) + max(insurance, 0) + max(vault, 0)
    if held < claims:
        found.append(
            f"engine holds {human(held)} < claims {human(claims)} (collateral "
            f"{human(sum(collateral.values()))}, insurance {human(insurance)}, "
            f"vault {human(vault)})"
        )
    return found


@dataclass
class Audit:
    """S1 after each step of a deterministic attack, kept so the failure tells the story."""

    p: object
    accounts: dict
    broken: list = field(default_factory=list)

    def step(self, label: str):
        violations = s1_violations(self.p, self.accounts)
        if violations:
            self.broken.append(f"after {label}: " + "; ".join(violations))

    def summary(self) -> list[str]:
        """The first step that broke S1 and, when there are more, the last."""
        return self.broken[:1] + self.broken[1:][-1:]


def trade(p, trader, size_delta: int):
    p.engine.modify_position(0, size_delta, limit_for(size_delta), sender=trader)


def largest_allowed_size(p, trader, side: int) -> int:
    """The largest size (to 1e-6 units) the engine lets `trader` open on `side` now, found by
    trying sizes inside anchors: it follows whatever caps the engine enforces, today's or a
    fixed version's. The trader's margin bounds the search (10x its collateral, doubled)."""
    low, high = 0, p.engine.collateral(trader, 0) * 20 * WAD // p.engine.index_price(0)
    while high - low > SIZE_PRECISION:
        middle = (low + high) // 2
        with boa.env.anchor():
            allowed = p.revert_reason(lambda: trade(p, trader, side * middle)) is None
        low, high = (middle, high) if allowed else (low, middle)
    assert low > 0, "the engine allows no position at all: the attack has nothing to open"
    return low


def winner_then_idle_trader(p, side: int, changes: dict, move_price):
    """The attack shared by the counterparty-cap tests: a seeded vault, a winner and an idle
    trader with a deposit each; the winner opens the largest position on `side` the engine
    allows, `move_price(audit)` moves the price, the winner closes and withdraws all it can,
    then the idle trader withdraws its whole deposit. Returns the audit, the revert reason of
    that withdrawal (None: paid) and what the winner did, for the failure message."""
    engine = p.engine
    winner, idle = p.traders[0], p.traders[1]
    p.set_market(**changes)
    p.seed_vault(VAULT_UNITS)
    p.deposit(winner, DEPOSIT_UNITS)
    p.deposit(idle, DEPOSIT_UNITS)
    audit = Audit(p, {"winner": winner, "idle trader": idle})

    size = side * largest_allowed_size(p, winner, side)
    trade(p, winner, size)
    notional = abs(size) * engine.index_price(0) // WAD
    audit.step(f"opening {human(size, 4)} ({human(notional)} notional)")
    move_price(audit)
    engine.close_position(0, limit_for(-size), sender=winner)
    audit.step("the winner's close")
    collateral = engine.collateral(winner, 0)
    # all it can: its collateral, or every token the engine holds when that is less
    paid = min(collateral // p.scale, p.token.balanceOf(engine))
    engine.withdraw(paid, sender=winner)
    audit.step(f"the winner withdraws {human(paid * p.scale)}")
    reason = p.revert_reason(lambda: engine.withdraw(DEPOSIT_UNITS, sender=idle))
    audit.step("the idle trader's withdrawal")
    story = (
        f"vault seeded {human(VAULT_UNITS * p.scale)}; the winner deposited "
        f"{human(DEPOSIT_UNITS * p.scale)}, opened {human(size, 4)} ({human(notional)} notional), "
        f"closed with collateral {human(collateral)} and withdrew {human(paid * p.scale)}"
    )
    return audit, reason, story


def assert_idle_trader_paid_and_solvent(audit: Audit, idle_reason: str | None, story: str):
    failed = audit.summary()
    if idle_reason is not None:
        failed.append(
            f"the idle trader's withdrawal of its {DEPOSIT_UNITS // UNITS:,} deposit "
            f"reverted: {idle_reason!r}"
        )
    assert not failed, "S1 broken:\n" + "\n".join(failed) + f"\n({story})"


@pytest.fixture(scope="module")
def keeper():
    """Liquidates and deleverages; its rewards are collateral that S1 counts."""
    return boa.env.generate_address("keeper")


# ---------------------------------------------------------------------------
# Deterministic attacks
# ---------------------------------------------------------------------------


def test_profit_beyond_vault_is_not_paid_from_other_traders_boa(boa_protocol):
    """+25 % on the largest long a 5x open-interest-to-vault cap allows is a profit above the
    vault's whole balance; the breaker (30 %) lets the move through."""
    p = boa_protocol

    def rally(audit):
        p.push_price(START_ANSWER * 125 // 100)
        audit.step("+25 %")

    with boa.env.anchor():
        audit, idle_reason, story = winner_then_idle_trader(
            p, 1, {"max_oi_vault_ratio": 5 * WAD, "breaker_move": 30 * WAD // 100}, rally
        )
    assert_idle_trader_paid_and_solvent(audit, idle_reason, story)


def test_gap_down_beyond_vault_is_not_paid_from_other_traders_boa(boa_protocol):
    """A -90 % gap under the largest short the cap allows, the vault its counterparty; the
    fixture's 100 % breaker lets a -90 % move through."""
    p = boa_protocol

    def gap(audit):
        p.push_price(START_ANSWER // 10)
        audit.step("-90 %")

    with boa.env.anchor():
        audit, idle_reason, story = winner_then_idle_trader(
            p, -1, {"max_oi_vault_ratio": 5 * WAD}, gap
        )
    assert_idle_trader_paid_and_solvent(audit, idle_reason, story)


PUMP_STEPS = 9
PUMP_STEP_PERCENT = 13


def test_pump_of_a_thin_market_is_not_paid_from_other_traders_boa(boa_protocol):
    """A thin market (skew scale 1,000, open interest capped at the vault's balance, a 15 %
    breaker over 1 h): the winner goes long, then the price is pumped 3x in +13 % steps, each
    after the breaker's window has passed, so no step trips it."""
    p = boa_protocol
    window = p.config.breaker_window

    def pump(audit):
        answer = START_ANSWER
        for _ in range(PUMP_STEPS):
            boa.env.time_travel(seconds=window + 1)
            answer = answer * (100 + PUMP_STEP_PERCENT) // 100
            p.push_price(answer)
            p.engine.checkpoint_funding([0])
        assert not p.engine_admin.is_reduce_only(0), "a pump step tripped the breaker"
        audit.step(f"a pump to {answer / START_ANSWER:.2f}x in {PUMP_STEPS} steps")

    changes = {
        "skew_scale": 1_000 * WAD,
        "max_oi_vault_ratio": WAD,
        "breaker_move": 15 * WAD // 100,
    }
    with boa.env.anchor():
        audit, idle_reason, story = winner_then_idle_trader(p, 1, changes, pump)
    assert_idle_trader_paid_and_solvent(audit, idle_reason, story)


def test_deleverage_refuses_an_unhealthy_account_boa(boa_protocol, keeper):
    """S11: a position in profit whose account owes more funding than its collateral plus that
    profit must not be deleveraged, or the account is left flat with negative collateral.

    Construction, without fees so the insurance fund stays empty: the victim deposits 650,000
    and goes long 40 at 150,000 (10x); the funding rate is then set to its bound of 5 % per
    8 h (a skew scale of 1e-18 saturates the premium), 48 h pass and the price rises 20 %. The
    victim's profit of about 1,200,000 is outweighed by 2,160,000 of funding owed, and the
    profit is above half the vault's 1,000,000, so deleveraging is open (today's rule and S2's)
    and the victim holds the most profitable position there is."""
    p, engine = boa_protocol, boa_protocol.engine
    victim = p.traders[0]
    no_fees = {"maker_fee": 0, "taker_fee": 0}
    with boa.env.anchor():
        p.set_market(**no_fees)
        p.seed_vault(VAULT_UNITS)
        p.deposit(victim, 650_000 * UNITS)
        trade(p, victim, 40 * WAD)
        p.set_market(**no_fees, skew_scale=1, max_premium=WAD // 10, max_funding_rate=WAD // 20)
        boa.env.time_travel(seconds=48 * 3600)
        p.push_price(START_ANSWER * 120 // 100)

        health = engine.account_health(victim, 0)
        assert health.unrealized_pnl > 0 and health.equity < 0, "the victim must win under water"
        size = engine.open_positions(victim, 0, 0).size
        reason = p.revert_reason(
            lambda: p.engine_risk.deleverage(0, victim, 0, size, sender=keeper)
        )
        outcome = ""
        if reason is None:
            left = human(engine.collateral(victim, 0))
            outcome = f"; it left the victim flat with collateral {left}"
    assert reason == "liquidation: account not healthy", (
        f"deleveraging an account with equity {human(health.equity)} (collateral "
        f"{human(health.collateral)}, profit {human(health.unrealized_pnl)}, funding owed "
        f"{human(health.funding_owed)}) gave {reason!r} instead of "
        f"'liquidation: account not healthy'{outcome}"
    )


# ---------------------------------------------------------------------------
# SolvencyMachine
# ---------------------------------------------------------------------------

TRADE_REFUSALS = {
    "engine: insufficient margin",
    "engine: below maintenance margin",
    "engine: position above size limit",
    "engine: open interest cap",
    "engine: open interest above vault capacity",
    "engine: market is reduce-only",
    "pricing: stale price",
    "pricing: market halted",
    # a close whose realized loss the collateral cannot pay: the account is for liquidation
    "engine: realized loss above collateral",
}
WITHDRAW_REFUSALS = {
    "engine: insufficient margin",
    "engine: insufficient collateral",
    "pricing: stale price",
    "pricing: market halted",
}
# S4: a gap beyond the breaker move halts everything priced until the halt_ends rule ends it
LIQUIDATION_REFUSALS = {"engine: account not liquidatable", "pricing: stale price", "pricing: market halted"}
DELEVERAGE_REFUSALS = {
    "liquidation: deleveraging not allowed",
    "liquidation: position not in profit",
    "liquidation: account not healthy",
    "pricing: stale price",
    "pricing: market halted",
}
LP_DEPOSIT_REFUSALS = {"pricing: stale price", "pricing: market halted"}
INSURANCE_REFUSALS = {"treasury: bad debt pending"}
CHECKPOINT_REFUSALS = {"pricing: stale price", "pricing: market halted"}
# A trader's deposit (> 0) or withdrawal (< 0), token units.
TRADER_FLOWS = st.integers(-2_000_000 * UNITS, 2_000_000 * UNITS).filter(bool)
# Feed trouble beyond a plain gap: a silence past max_price_age, a jump after a day of silence
# (when the oracle checks no deviation), a pump or dump in steps (percent per step) spaced by
# the breaker's window.
FEED_TROUBLE = st.one_of(
    st.tuples(st.just("silence"), st.integers(3_600, 2 * 86_400)),
    st.tuples(st.just("jump"), st.sampled_from([-95, -70, 200, 400])),
    st.tuples(st.just("pump"), st.integers(2, 6), st.sampled_from([-30, -13, 5, 13, 30, 90])),
)
# The machine's price stays between $1 and $100,000,000.
PRICE_FLOOR = 1 * 10**ORACLE_DECIMALS
PRICE_CEILING = 100_000_000 * 10**ORACLE_DECIMALS


@dataclass
class Stats:
    """Counts over a whole run, printed at its end (a guard against vacuous runs too)."""

    examples: int = 0
    steps: int = 0
    checks: int = 0
    outcomes: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        lines = [
            f"SolvencyMachine: {self.examples} examples, {self.steps} steps, "
            f"{self.checks} S1 checks"
        ]
        lines += [f"  {count:6d}  {outcome}" for outcome, count in sorted(self.outcomes.items())]
        return "\n".join(lines)


class SolvencyMachine(ProtocolMachine):
    """Four traders, two LPs and a keeper against one market whose config each example draws:
    a thin or deep vault, an open-interest cap from 1x to 10x the vault, a thin or deep skew
    scale, a 15 % to 100 % breaker, premium or dynamic funding, trading fees shared with the
    insurance fund or all to the vault."""

    keeper = None
    stats = None

    def __init__(self):
        super().__init__()
        self.lps = [self.p.lp, self.p.other_lp]
        self.accounts = {f"trader{i}": t for i, t in enumerate(self.traders)}
        self.accounts["keeper"] = self.keeper
        self.answer = START_ANSWER
        self.ratio = 0
        self.last = "setup"
        self.ready = False

    @initialize(
        vault_units=st.sampled_from([50_000, 250_000, 1_000_000, 5_000_000]),
        ratio=st.sampled_from([WAD, 2 * WAD, 5 * WAD, 10 * WAD]),
        skew_scale=st.sampled_from([100 * WAD, 10_000 * WAD, 1_000_000 * WAD]),
        breaker_move=st.sampled_from([15 * WAD // 100, 50 * WAD // 100, WAD]),
        empty_insurance=st.booleans(),
        dynamic=st.booleans(),
        deposits=st.lists(st.integers(10_000, 2_000_000), min_size=4, max_size=4),
        openings=st.lists(st.integers(-100, 100), min_size=4, max_size=4),
    )
    def setup(
        self,
        vault_units,
        ratio,
        skew_scale,
        breaker_move,
        empty_insurance,
        dynamic,
        deposits,
        openings,
    ):
        """The config, the vault and the deposits; then each trader opens `openings[i]` % of its
        room (negative: short), so that every example starts with the vault at risk."""
        p = self.p
        p.set_market(
            max_oi_vault_ratio=ratio,
            skew_scale=skew_scale,
            breaker_move=breaker_move,
            dynamic_funding=dynamic,
        )
        if empty_insurance:
            # trading fees all to the vault: the insurance fund holds only liquidation fees,
            # which insurance_drained takes, so bad debt goes straight to the vault
            p.engine_admin.set_fee_split(WAD, sender=p.admin)
        p.seed_vault(vault_units * UNITS)
        for trader, amount in zip(self.traders, deposits):
            p.deposit(trader, amount * UNITS)
        self.ratio = ratio
        for i, percent in enumerate(openings):
            side = -1 if percent < 0 else 1
            self._trade(i, side * (self._room(self.traders[i], side) * abs(percent) // 100))
        self.stats.examples += 1
        self.ready = True

    # -- plumbing -----------------------------------------------------------

    def _call(self, label: str, call, expected: set) -> str | None:
        """Runs `call`; returns its revert reason, failing on one not in `expected`."""
        self.last = label
        self.stats.steps += 1
        reason = self.p.revert_reason(call)
        self.stats.outcomes[f"{label.split()[0]}: {reason or 'done'}"] += 1
        assert reason is None or reason in expected, f"unexpected revert {reason!r} from {label}"
        return reason

    def _push(self, answer: int):
        self.answer = max(PRICE_FLOOR, min(PRICE_CEILING, answer))
        self.p.push_price(self.answer)

    def _equity(self, trader) -> int:
        """The trader's equity, or its collateral while a stale price stops the valuation."""
        try:
            return self.engine.account_health(trader, 0).equity
        except boa.BoaError:
            return self.engine.collateral(trader, 0)

    def _room(self, trader, side: int) -> int:
        """The size `trader` could add on `side` before its margin (10x) or the open-interest
        cap stops it, at the last pushed price."""
        price = self.answer * ORACLE_TO_WAD
        room = max(self._equity(trader), 0) * 10 * WAD // price
        engine = self.engine
        side_interest = engine.long_open_interest(0) if side > 0 else engine.short_open_interest(0)
        capacity = max(engine.vault_balance(), 0) * self.ratio // WAD * WAD // price
        return min(room, max(capacity - side_interest, 0))

    def _trade(self, i: int, size_delta: int):
        if size_delta == 0:
            return
        trader, limit = self.traders[i], limit_for(size_delta)
        self._call(
            f"trade {human(size_delta, 4)} by trader{i}",
            lambda: self.engine.modify_position(0, size_delta, limit, sender=trader),
            TRADE_REFUSALS,
        )

    # -- traders ------------------------------------------------------------

    @rule(i=st.integers(0, 3), amount=TRADER_FLOWS)
    def move_collateral(self, i, amount):
        """Deposits `amount`, or withdraws -`amount` (at most all the collateral there is)."""
        trader = self.traders[i]
        if amount > 0:
            label = f"deposit {human(amount * self.p.scale)} by trader{i}"
            self._call(label, lambda: self.p.deposit(trader, amount), set())
            return
        amount = min(-amount, max(self.engine.collateral(trader, 0), 0) // self.p.scale)
        if amount > 0:
            self._call(
                f"withdraw {human(amount * self.p.scale)} by trader{i}",
                lambda: self.engine.withdraw(amount, sender=trader),
                WITHDRAW_REFUSALS,
            )

    @rule(
        i=st.integers(0, 3),
        short=st.booleans(),
        percent=st.one_of(st.just(100), st.integers(1, 120)),
    )
    def add_risk(self, i, short, percent):
        """A share of what the margin and the cap leave, often all of it (the vault at its
        limit), up to 120 % (the caps themselves are tested)."""
        side = -1 if short else 1
        size = self._room(self.traders[i], side) * percent // 100 or SIZE_PRECISION
        self._trade(i, side * size)

    @rule(
        i=st.integers(0, 3),
        kind=st.sampled_from(["reduce", "close", "flip"]),
        percent=st.integers(1, 120),
    )
    def reduce_close_or_flip(self, i, kind, percent):
        held = self.engine.open_positions(self.traders[i], 0, 0).size
        if held == 0:
            return
        if kind == "reduce":
            self._trade(i, -(held * percent // 200) or -held)
        elif kind == "close":
            self._trade(i, -held)
        else:
            side = -1 if held > 0 else 1
            beyond = self._room(self.traders[i], side) * percent // 100 or abs(held)
            self._trade(i, -held + side * beyond)

    @rule()
    def the_biggest_winner_closes(self):
        """The attacker's move: whoever holds the largest unrealized profit takes it."""
        profits = {}
        for i, trader in enumerate(self.traders):
            if self.engine.open_positions(trader, 0, 0).size != 0:
                try:
                    profits[i] = self.engine.account_health(trader, 0).unrealized_pnl
                except boa.BoaError:  # a stale price: the close below reverts for the same reason
                    profits[i] = 0
        if profits:
            i = max(profits, key=profits.get)
            self._trade(i, -self.engine.open_positions(self.traders[i], 0, 0).size)

    # -- prices and time ----------------------------------------------------

    @rule(percent=st.sampled_from([-90, -50, -25, -10, 10, 25, 50, 100]))
    def gap(self, percent):
        """A gap within the oracle's 100 % deviation bound, after a silence or not."""
        self.last = f"gap {percent:+} %"
        self.stats.steps += 1
        self.stats.outcomes["price: gap"] += 1
        self._push(self.answer * (100 + percent) // 100)

    @rule(trouble=FEED_TROUBLE)
    def feed_trouble(self, trouble):
        kind, *args = trouble
        self.last = f"{kind} {args}"
        self.stats.steps += 1
        self.stats.outcomes[f"price: {kind}"] += 1
        {"silence": self._silence, "jump": self._jump, "pump": self._pump}[kind](*args)

    def _silence(self, seconds):
        """The feed says nothing: past max_price_age the market refuses anything priced."""
        boa.env.time_travel(seconds=seconds)

    def _jump(self, percent):
        """After a day of silence the oracle takes any answer: the jump is unbounded."""
        boa.env.time_travel(seconds=ORACLE_MAX_REPORT_AGE + 1)
        self._push(self.answer * (100 + percent) // 100)

    def _pump(self, steps, percent):
        """A pump (or a dump) in steps, each once the breaker's window has passed and each
        checkpointed, so the breaker sees every step against a fresh window."""
        window = self.p.engine_admin.params(0).breaker_window
        for _ in range(steps):
            boa.env.time_travel(seconds=window + 1)
            self._push(self.answer * (100 + percent) // 100)
            reason = self.p.revert_reason(lambda: self.engine.checkpoint_funding([0]))
            assert reason is None or reason in CHECKPOINT_REFUSALS, f"checkpoint gave {reason!r}"

    @rule(seconds=st.integers(1, 8 * 3600), checkpoint=st.booleans())
    def funding_time(self, seconds, checkpoint):
        """Time passes with the reporter re-publishing the price, so funding accrues."""
        self.last = f"{seconds} s of funding"
        self.stats.steps += 1
        boa.env.time_travel(seconds=seconds)
        self._push(self.answer)
        if self._halted():
            # the funding keeper confirms a halted market's price once enough rounds agree (S4)
            reason = self.p.revert_reason(lambda: self.p.engine_admin.confirm_price(0))
            assert reason in (None, "engine_admin: price not confirmed"), f"confirm_price gave {reason!r}"
            self.stats.outcomes[f"confirm_price: {reason or 'halt ended'}"] += 1
        if checkpoint:
            reason = self.p.revert_reason(lambda: self.engine.checkpoint_funding([0]))
            assert reason is None or reason in CHECKPOINT_REFUSALS, f"checkpoint gave {reason!r}"

    def _halted(self) -> bool:
        admin = self.p.engine_admin
        return self.p.revert_reason(lambda: admin.is_halted(0)) is None and admin.is_halted(0)

    @precondition(lambda self: self.ready and self._halted())
    @rule(by_guardian=st.booleans())
    def halt_ends(self, by_guardian):
        """S4: a market halted by an outlier resumes when the guardian accepts the index, or
        when the feed publishes halt_confirmations agreeing rounds and anyone confirms them."""
        admin = self.p.engine_admin
        self.last = f"halt ends by {'guardian' if by_guardian else 'confirming rounds'}"
        self.stats.steps += 1
        if by_guardian:
            admin.resume_market(0, sender=self.p.guardian)
        else:
            for _ in range(admin.halt_confirmations() - 1):
                boa.env.time_travel(seconds=60)
                self._push(self.answer)
            admin.confirm_price(0)
        assert not admin.is_halted(0)
        self.stats.outcomes[f"halt ended by {'guardian' if by_guardian else 'rounds'}"] += 1

    # -- LPs ----------------------------------------------------------------

    @rule(which=st.integers(0, 1), enter=st.booleans(), percent=st.integers(1, 100))
    def lp_flow(self, which, enter, percent):
        """An LP enters with percent x 20,000 (up to 2,000,000) or takes percent of its shares."""
        lp = self.lps[which]
        if enter:
            amount = percent * 20_000 * UNITS
            self._call(
                f"lp_deposit {human(amount * self.p.scale)} by lp{which}",
                lambda: self.p.vault.deposit(amount, lp, sender=lp),
                LP_DEPOSIT_REFUSALS,
            )
            return
        self.lp_exit(lp, percent)

    def lp_exit(self, lp, percent):
        """An LP leaves as the vault lets it (rule S7): with a request that has become claimable
        it claims percent of it, otherwise it requests percent of its free shares (claimable
        after withdrawal_delay, which the silence and funding rules let pass). A refusal (the
        utilization limit, a stale price, a request not yet claimable) is a no-op."""
        requested, claimable_at = self.p.vault.redeem_request(lp)
        self.stats.steps += 1
        if requested and claimable_at <= self.p.now() < claimable_at + self.p.vault.CLAIM_WINDOW():
            shares = max(requested * percent // 100, 1)
            self.last = f"lp_exit: claim {shares} shares"
            reason = self.p.revert_reason(lambda: self.p.vault.redeem(shares, lp, lp, sender=lp))
            self.stats.outcomes[f"lp_exit claim: {reason or 'done'}"] += 1
            return
        shares = self.p.vault.balanceOf(lp) * percent // 100
        if shares == 0:
            return
        self.last = f"lp_exit: request {shares} shares"
        reason = self.p.revert_reason(lambda: self.p.vault.request_redeem(shares, sender=lp))
        self.stats.outcomes[f"lp_exit request: {reason or 'done'}"] += 1

    # -- keepers ------------------------------------------------------------

    @rule(i=st.integers(0, 3), deleverage=st.booleans(), percent=st.integers(1, 100))
    def keeper_acts(self, i, deleverage, percent):
        """Liquidates trader i, or deleverages percent of its position."""
        trader = self.traders[i]
        if not deleverage:
            self._call(
                f"liquidate trader{i}",
                lambda: self.p.engine_risk.liquidate(trader, 0, sender=self.keeper),
                LIQUIDATION_REFUSALS,
            )
            return
        size = abs(self.engine.open_positions(trader, 0, 0).size) * percent // 100
        if size > 0:
            self._call(
                f"deleverage {human(size, 4)} of trader{i}",
                lambda: self.p.engine_risk.deleverage(0, trader, 0, size, sender=self.keeper),
                DELEVERAGE_REFUSALS,
            )

    @rule()
    def insurance_drained(self):
        """The admin takes the insurance fund down to its floor (zero): insurance at zero."""
        admin = self.p.admin
        amount = max(self.engine.insurance_balance(), 0) // self.p.scale
        if amount > 0:
            self._call(
                f"withdraw_insurance {human(amount * self.p.scale)}",
                lambda: self.p.engine_admin.withdraw_insurance(amount, admin, sender=admin),
                INSURANCE_REFUSALS,
            )

    # -- S1 -----------------------------------------------------------------

    @invariant()
    def ledger_holds(self):
        if not self.ready:
            return
        self.stats.checks += 1
        violations = s1_violations(self.p, self.accounts)
        assert not violations, f"S1 broken after {self.last}: " + "; ".join(violations)


# `make test`: a fixed example set (the derandomized "ci" profile), under a minute. `make fuzz`:
# fresh examples on every run, ten times as many, longer runs. Neither shrinks: replaying a
# 30-step run hundreds of times costs minutes on py-evm, and the unshrunk steps Hypothesis prints
# on a failure are readable.
MACHINE_SETTINGS = settings(
    max_examples=examples(30),
    stateful_step_count=50 if LONG_FUZZ else 30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_ledger_stays_solvent_under_hostile_traders_prices_and_lps_boa(boa_protocol, keeper):
    machine = type(
        "SolvencyMachineBoa",
        (SolvencyMachine,),
        {"protocol": boa_protocol, "keeper": keeper, "stats": Stats()},
    )
    try:
        run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    finally:
        print(machine.stats.summary())
    assert machine.stats.checks >= MACHINE_SETTINGS.max_examples
