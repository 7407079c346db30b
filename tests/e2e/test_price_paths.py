"""Price paths: generator determinism and statistics, CSV round trips, the shipped files.

Pure Python: the session's protocol fixtures are overridden with no-ops below, so these tests
neither deploy nor touch the chain.
"""

import math
import random
import statistics
from decimal import Decimal
from pathlib import Path

import pytest

from vyperp.sim.paths import (
    SECONDS_PER_YEAR,
    SHIPPED_PATHS,
    JumpDiffusion,
    PricePath,
    crash_path,
    generate_path,
)

PATHS_DIR = Path(__file__).resolve().parents[2] / "data" / "paths"


@pytest.fixture(autouse=True)
def rewind_clock():
    """No chain here: replaces the suite's clock rewind."""


@pytest.fixture(scope="session", autouse=True)
def shared_state():
    """No chain here: replaces the suite's protocol deployment."""


def annualised_volatility(path: PricePath) -> float:
    step_years = path[1].t / SECONDS_PER_YEAR
    return statistics.pstdev(path.log_returns()) / math.sqrt(step_years)


def test_same_seed_gives_the_same_path_and_another_seed_does_not():
    model = JumpDiffusion(annual_volatility=0.6, jumps_per_year=2000, jump_stdev=0.01)
    make = lambda seed: generate_path(model, start_price=150_000, steps=500, step_seconds=12,
                                      seed=seed)
    assert make(7) == make(7)
    assert make(7) != make(8)


def test_log_return_stdev_matches_the_requested_volatility():
    # 20,000 draws: the sample stdev's relative standard error is 1/sqrt(2n) = 0.5 %.
    for vol in (0.3, 0.9):
        path = generate_path(JumpDiffusion(annual_volatility=vol), start_price=100, steps=20_000,
                             step_seconds=12, seed=11, price_decimals=12)
        assert annualised_volatility(path) == pytest.approx(vol, rel=0.03)


def test_jumps_add_their_variance_and_come_at_the_requested_rate():
    # One jump per step on average: variance per step = sigma^2 dt + lambda dt (m^2 + s^2).
    step_seconds = 60
    dt = step_seconds / SECONDS_PER_YEAR
    model = JumpDiffusion(annual_volatility=0.5, jumps_per_year=1 / dt, jump_mean=0.0,
                          jump_stdev=0.01)
    path = generate_path(model, start_price=100, steps=20_000, step_seconds=step_seconds, seed=5,
                         price_decimals=12)
    expected_variance = 0.5**2 * dt + 0.01**2
    assert statistics.pvariance(path.log_returns()) == pytest.approx(expected_variance, rel=0.05)


def test_drift_is_compensated_for_jumps():
    # Mean of exp(log return) per step is exp(mu dt): jumps with a negative mean do not drag it.
    model = JumpDiffusion(annual_volatility=0.5, annual_drift=0.0, jumps_per_year=200_000,
                          jump_mean=-0.002, jump_stdev=0.001)
    rng = random.Random(3)
    ratios = [model.step(1.0, 60, rng) for _ in range(40_000)]
    assert statistics.fmean(ratios) == pytest.approx(1.0, abs=3e-4)


def test_csv_round_trip_is_exact(tmp_path):
    path = generate_path(JumpDiffusion(annual_volatility=0.7), start_price="3000.5", steps=50,
                         step_seconds=30, seed=4, price_decimals=8)
    file = tmp_path / "eth.csv"
    path.save(file)
    assert file.read_text().splitlines()[0] == "t,price"
    assert PricePath.load(file) == path


def test_invalid_paths_are_refused(tmp_path):
    with pytest.raises(ValueError, match="increase"):
        PricePath.of([(0, 1), (12, 2), (12, 3)])
    with pytest.raises(ValueError, match="starts at t = 0"):
        PricePath.of([(5, 1)])
    with pytest.raises(ValueError, match="not positive"):
        PricePath.of([(0, 1), (12, 0)])
    bad = tmp_path / "bad.csv"
    bad.write_text("time,close\n0,1\n")
    with pytest.raises(ValueError, match="header"):
        PricePath.load(bad)


def test_crash_path_falls_by_the_fraction_within_the_window_in_equal_steps():
    crash = crash_path(drop=0.40, crash_seconds=300, calm_before=600, calm_after=900,
                       step_seconds=12)
    assert crash[0].price == 1
    assert crash[-1].price == Decimal("0.6")
    falling = [r for r in crash.log_returns() if r != 0]
    assert len(falling) == 25  # 300 s at 12 s steps
    assert max(falling) - min(falling) < 1e-5  # the same percentage every step
    first_fall = next(p.t for p in crash if p.price < 1)
    assert first_fall == 612
    assert next(p.t for p in crash if p.price == Decimal("0.6")) == 900


def test_relative_path_scales_to_a_start_price():
    crash = PricePath.load(PATHS_DIR / "crash.csv").scaled(3_000, price_decimals=2)
    assert crash[0].price == Decimal("3000.00")
    assert crash[-1].price == Decimal("1800.00")
    assert [p.t for p in crash] == [p.t for p in PricePath.load(PATHS_DIR / "crash.csv")]


@pytest.mark.parametrize(
    "name, start, volatility, hours",
    [("btc.csv", 150_000, 0.55, 4), ("eth.csv", 3_000, 0.70, 4), ("sol.csv", 150, 0.90, 6)],
)
def test_shipped_paths_are_regenerable_and_realistic(name, start, volatility, hours):
    shipped = PricePath.load(PATHS_DIR / name)
    assert shipped == SHIPPED_PATHS[name]()
    assert shipped[0].price == start
    assert shipped.duration == hours * 3600
    assert 12 <= shipped[1].t <= 60
    # A few hundred steps only: a wide band, but it catches a wrong unit (per step, per day).
    assert annualised_volatility(shipped) == pytest.approx(volatility, rel=0.25)


def test_shipped_crash_path_is_regenerable():
    assert PricePath.load(PATHS_DIR / "crash.csv") == SHIPPED_PATHS["crash.csv"]()
