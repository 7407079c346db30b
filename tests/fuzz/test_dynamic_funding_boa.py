"""PROTOCOL.md S12 (exact dynamic funding), in-process on titanoboa.

In dynamic mode the funding rate drifts at clamp(S / skew_scale, -1, 1) * max_funding_velocity
per day and is clamped to +-max_funding_rate. The index must grow by the integral of that
clamped rate over the elapsed time: linear up to the clamp, flat after it. Averaging only the
old and the new (clamped) rate undercounts an interval in which the rate reaches the clamp, so
a market checkpointed once after a week accrued about 45 % less than one checkpointed daily.

- a deterministic replay of that attack: one 7-day interval against seven daily checkpoints;
- a property against an exact reference (fractions.Fraction) of the clamped linear integral:
  random velocities, clamps, skews, starting rates (some beyond a lowered clamp) and intervals;
  every checkpoint is exact to the floor of the index increment, and one late checkpoint
  agrees with many early ones.

The reference takes the engine's proportional skew as its input, an 18-decimal fraction
truncated toward zero (docs/protocol.md §4: `ps = trunc(S·1e18 / skew_scale)`); everything after
it is exact. Every test name ends in `_boa`.
"""

from fractions import Fraction

import boa
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from boa_protocol import examples

from vyperp.params import FRACTION_STEP
from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
DAY = 86_400
FUNDING_PERIOD = 8 * 3600
ORACLE_TO_WAD = 10**10
START_ANSWER = 150_000 * 10**8
LP_SEED_UNITS = 10_000_000 * 10**6
TRADER_UNITS = 1_000_000_000 * 10**6


# ---------------------------------------------------------------------------
# Exact reference (Python integers and Fractions, written from PROTOCOL.md)
# ---------------------------------------------------------------------------


def clamp(x, bound):
    return max(-bound, min(bound, x))


def floor_fraction(x: Fraction) -> int:
    return x.numerator // x.denominator


def proportional_skew(skew: int, skew_scale: int) -> int:
    """The engine's input S / skew_scale as an 18-decimal fraction, truncated toward zero."""
    magnitude = abs(skew) * WAD // skew_scale
    return magnitude if skew >= 0 else -magnitude


def slope_per_second(skew: int, skew_scale: int, velocity: int) -> Fraction:
    """dF/dt in rate units (18 decimals, per 8 h) per second: clamp(S/k, -1, 1) * velocity / day."""
    return Fraction(clamp(proportional_skew(skew, skew_scale), WAD) * velocity, WAD * DAY)


def clamped_path(rate0, slope: Fraction, bound: int, seconds: int) -> tuple[Fraction, Fraction]:
    """(integral of the rate over `seconds`, rate at the end) for a rate that starts at rate0
    (clamped into +-bound first), moves linearly at `slope` and stops at the clamp."""
    start = Fraction(clamp(rate0, bound))
    if slope == 0:
        return start * seconds, start
    target = Fraction(bound if slope > 0 else -bound)
    reaches_clamp_after = (target - start) / slope
    if reaches_clamp_after >= seconds:
        end = start + slope * seconds
        return (start + end) / 2 * seconds, end
    flat = seconds - reaches_clamp_after
    return (start + target) / 2 * reaches_clamp_after + target * flat, target


def index_increment(integral: Fraction, answer: int) -> int:
    """The index grows by the rate integral times the index price over 8 h, floored (§4)."""
    return floor_fraction(integral * answer * ORACLE_TO_WAD / (FUNDING_PERIOD * WAD))


def stored_rate(end: Fraction) -> int:
    """The rate the engine keeps: the exact end rate floored (toward -inf, like the index), so it
    is the exact rate whenever that is a whole wei and never above it."""
    return floor_fraction(end)


# ---------------------------------------------------------------------------
# Engine helpers
# ---------------------------------------------------------------------------


def trade(p, trader, size: int):
    if size != 0:
        p.engine.modify_position(0, size, MAX_UINT256 if size > 0 else 0, sender=trader)


def checkpoint_after(p, seconds: int, answer: int) -> tuple[int, int]:
    """Moves the clock, re-publishes the price (max_price_age is 1 h) and checkpoints market 0."""
    boa.env.time_travel(seconds=seconds)
    p.push_price(answer)
    p.engine.checkpoint_funding([0])
    return p.engine.funding_index(0), p.engine.funding_rate(0)


def funded(p):
    p.seed_vault(LP_SEED_UNITS)
    for trader in p.traders[:2]:
        p.deposit(trader, TRADER_UNITS)


# ---------------------------------------------------------------------------
# 1. The attack: one 7-day interval against seven daily checkpoints
# ---------------------------------------------------------------------------


def test_one_weekly_checkpoint_accrues_what_seven_daily_ones_do_boa(boa_protocol):
    """Long skew of 0.08 · skew_scale at 10 %/day of velocity: the rate rises 0.8 % a day from
    0 and reaches its 1 % clamp after 1.25 days, then stays there. Every daily drift is a
    whole wei, so the only rounding is the floor of each index increment (<= 1 wei each)."""
    p, engine = boa_protocol, boa_protocol.engine
    with boa.env.anchor():
        config = p.set_market(
            dynamic_funding=True,
            interest_rate=0,
            max_funding_velocity=WAD // 10,
            max_funding_rate=WAD // 100,
            skew_scale=100 * WAD,
        )
        funded(p)
        skew = 8 * WAD
        trade(p, p.traders[0], skew)
        start_index, start_rate = engine.funding_index(0), engine.funding_rate(0)
        assert start_rate == 0

        with boa.env.anchor():
            weekly_index, weekly_rate = checkpoint_after(p, 7 * DAY, START_ANSWER)
        with boa.env.anchor():
            for _ in range(7):
                daily_index, daily_rate = checkpoint_after(p, DAY, START_ANSWER)

    slope = slope_per_second(skew, config.skew_scale, config.max_funding_velocity)
    integral, end = clamped_path(start_rate, slope, config.max_funding_rate, 7 * DAY)
    exact = index_increment(integral, START_ANSWER)
    weekly, daily = weekly_index - start_index, daily_index - start_index
    print(
        f"\nS12 one 7-day checkpoint vs 7 daily ones (index increment, quote wei per unit):"
        f"\n  weekly {weekly} ({weekly / 1e18:,.6f}), daily {daily} ({daily / 1e18:,.6f}),"
        f" exact {exact} ({exact / 1e18:,.6f})"
        f"\n  weekly short of daily by {(daily - weekly) / daily:.2%}, of exact by {(exact - weekly) / exact:.2%}"
    )
    assert weekly_rate == daily_rate == config.max_funding_rate == end
    # seven floors of the daily increments, each below 1 wei; the weekly one floors once
    assert 0 <= weekly - daily <= 7, f"one weekly checkpoint accrues {(daily - weekly) / daily:.2%} less than daily ones"
    assert weekly == exact, f"one late checkpoint accrues {(exact - weekly) / exact:.2%} less than the exact integral"


# ---------------------------------------------------------------------------
# 2. Property: every checkpoint is the exact clamped integral; late == early
# ---------------------------------------------------------------------------

DYNAMIC_SETTINGS = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fractions_of_wad(low: int, high: int):
    """Multiples of the 1e-10 parameter step in [low, high]."""
    return st.integers(low // FRACTION_STEP, high // FRACTION_STEP).map(lambda steps: steps * FRACTION_STEP)


# skew as parts per million of skew_scale; beyond +-1e6 the velocity factor is clamped at +-1
skew_ppm = st.one_of(st.sampled_from([-1_000_000, -50_000, 0, 50_000, 1_000_000]), st.integers(-1_500_000, 1_500_000))
# the defaults and bounds (docs/protocol.md §13), then anything in the bounds
velocities = st.one_of(st.sampled_from([WAD // 10, 3 * WAD // 100, WAD // 1_000]), fractions_of_wad(FRACTION_STEP, WAD // 10))
clamps = st.one_of(st.sampled_from([WAD // 20, 5 * WAD // 1_000, WAD // 10_000, 0]), fractions_of_wad(0, WAD // 20))


@DYNAMIC_SETTINGS
# rises into the clamp within the first of several intervals, then sits on it
@example(
    skew_scale=100 * WAD, velocity=WAD // 10, warmup_clamp=WAD // 100, clamp_rate=WAD // 100,
    warmup_skew=0, warmup_seconds=0, skew=80_000, answer=START_ANSWER, gaps=[DAY] * 7,
)
# short skew, clamped velocity factor, starting from a positive rate and crossing zero
@example(
    skew_scale=40 * WAD, velocity=3 * WAD // 100, warmup_clamp=WAD // 50, clamp_rate=WAD // 200,
    warmup_skew=900_000, warmup_seconds=DAY, skew=-1_400_000, answer=123_456_78901234, gaps=[3_600, 50_000, 2 * DAY, 7],
)
# the rate starts beyond a lowered clamp and skew pushes it further out: flat at the clamp
@example(
    skew_scale=10 * WAD, velocity=WAD // 10, warmup_clamp=WAD // 20, clamp_rate=WAD // 1000,
    warmup_skew=1_000_000, warmup_seconds=DAY // 2, skew=500_000, answer=START_ANSWER, gaps=[1, DAY, 3 * DAY],
)
# beyond a lowered clamp and skew pulls it back: from the clamp down through zero to -clamp
@example(
    skew_scale=10 * WAD, velocity=WAD // 10, warmup_clamp=WAD // 20, clamp_rate=WAD // 1000,
    warmup_skew=1_000_000, warmup_seconds=DAY // 2, skew=-700_000, answer=START_ANSWER, gaps=[600, 3_000, DAY],
)
# a long interval at the smallest velocity that never reaches the clamp
@example(
    skew_scale=1_000 * WAD, velocity=FRACTION_STEP, warmup_clamp=WAD // 20, clamp_rate=WAD // 20,
    warmup_skew=-3, warmup_seconds=5, skew=333_333, answer=100_000 * 10**8, gaps=[30 * DAY, 1],
)
@given(
    skew_scale=st.integers(WAD, 1_000 * WAD),
    velocity=velocities,
    warmup_clamp=clamps,
    clamp_rate=clamps,
    warmup_skew=skew_ppm,
    warmup_seconds=st.integers(0, 3 * DAY),
    skew=skew_ppm,
    answer=st.integers(100_000 * 10**8, 190_000 * 10**8),
    gaps=st.lists(st.one_of(st.sampled_from([1, 3_600, DAY]), st.integers(1, 3 * DAY)), min_size=1, max_size=8),
)
def test_dynamic_funding_integrates_the_clamped_rate_exactly_however_often_it_is_checkpointed_boa(
    boa_protocol, skew_scale, velocity, warmup_clamp, clamp_rate, warmup_skew, warmup_seconds, skew, answer, gaps
):
    p, engine = boa_protocol, boa_protocol.engine
    with boa.env.anchor():
        # A random starting rate: drift under a warm-up skew and clamp, then lower or raise the clamp.
        p.set_market(
            dynamic_funding=True, interest_rate=0, max_funding_velocity=velocity,
            max_funding_rate=warmup_clamp, skew_scale=skew_scale,
        )
        funded(p)
        first = warmup_skew * skew_scale // 10**6
        trade(p, p.traders[0], first)
        checkpoint_after(p, warmup_seconds, answer)
        config = p.set_market(
            dynamic_funding=True, interest_rate=0, max_funding_velocity=velocity,
            max_funding_rate=clamp_rate, skew_scale=skew_scale,
        )
        target = skew * skew_scale // 10**6
        trade(p, p.traders[1], target - first)
        assert engine.skew(0) == target
        start_index, start_rate = engine.funding_index(0), engine.funding_rate(0)
        slope = slope_per_second(target, skew_scale, velocity)
        total = sum(gaps)

        # Many early checkpoints: each is the exact integral from the stored rate, floored.
        with boa.env.anchor():
            index, rate = start_index, start_rate
            rate_error_bound = 0  # sum over intervals of (roundings of the rate so far) * seconds
            for count, gap in enumerate(gaps):
                integral, end = clamped_path(rate, slope, config.max_funding_rate, gap)
                new_index, new_rate = checkpoint_after(p, gap, answer)
                assert new_index - index == index_increment(integral, answer)
                assert new_rate == stored_rate(end)
                index, rate = new_index, new_rate
                rate_error_bound += count * gap
            many_index, many_rate = index, rate

        # One late checkpoint over the whole time.
        with boa.env.anchor():
            one_index, one_rate = checkpoint_after(p, total, answer)

    integral, end = clamped_path(start_rate, slope, config.max_funding_rate, total)
    event("starts beyond the clamp" if abs(start_rate) > config.max_funding_rate else "starts within the clamp")
    event("ends at the clamp" if abs(end) == config.max_funding_rate else "ends within the clamp")
    assert one_index - start_index == index_increment(integral, answer)
    assert one_rate == stored_rate(end)
    # Late == early, up to dust that only ever lowers the early path: each early checkpoint floors
    # its increment (< 1 wei) and its stored rate (< 1 wei per 8 h, so the rate runs at most one
    # wei lower per rounding so far while it is off the clamp, and the index grows no faster).
    dust = len(gaps) + rate_error_bound * answer * ORACLE_TO_WAD // (FUNDING_PERIOD * WAD) + 1
    assert 0 <= one_index - many_index <= dust
    assert 0 <= one_rate - many_rate <= len(gaps)
