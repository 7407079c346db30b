"""Price paths: timed price points, their CSV form, and seeded generators.

A path is a list of points `(t, price)`: `t` is whole seconds from the path's start (the first
point is at 0, offsets strictly increase) and `price` is a positive Decimal in human units.

CSV format (`data/paths/*.csv`): a `t,price` header, then one row per point, prices written in
plain decimal notation, e.g. `12,150031.27`. Reading and writing round-trip exactly.

Relative paths (`data/paths/crash.csv`) use the same format with prices scaled to start at 1.0:
each price is a multiplier of whatever price the market has when the path starts. Turn one into
absolute prices with `PricePath.scaled(start_price)`.

Generators are deterministic for a seed (Python's `random.Random`, no global state):
- `generate_path`: geometric Brownian motion with Poisson jumps (Merton jump-diffusion);
- `crash_path`: calm, then a fall of a given fraction within a few minutes, then calm again.

The shipped paths are `SHIPPED_PATHS` below; regenerate them (byte-identical) with

    python -m vyperp.sim.paths data/paths
"""

from __future__ import annotations

import csv
import math
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

SECONDS_PER_YEAR = 365 * 86_400  # crypto markets trade every day
CSV_HEADER = ("t", "price")


@dataclass(frozen=True)
class PricePoint:
    """One price at `t` seconds after the path's start."""

    t: int
    price: Decimal


@dataclass(frozen=True)
class PricePath:
    """Timed prices; the first at t = 0, offsets strictly increasing, prices positive."""

    points: tuple[PricePoint, ...]

    def __post_init__(self):
        if not self.points:
            raise ValueError("a price path needs at least one point")
        if self.points[0].t != 0:
            raise ValueError(f"a price path starts at t = 0, not {self.points[0].t}")
        for before, after in zip(self.points, self.points[1:]):
            if after.t <= before.t:
                raise ValueError(f"offsets must increase: {before.t} then {after.t}")
        for point in self.points:
            if point.price <= 0:
                raise ValueError(f"price at t = {point.t} is not positive: {point.price}")

    @classmethod
    def of(cls, pairs) -> PricePath:
        """A path from `(t, price)` pairs; prices may be int, str or Decimal."""
        return cls(tuple(PricePoint(int(t), Decimal(str(price))) for t, price in pairs))

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, index):
        return self.points[index]

    @property
    def duration(self) -> int:
        """Seconds from the first point to the last."""
        return self.points[-1].t

    def prices(self) -> list[Decimal]:
        return [point.price for point in self.points]

    def log_returns(self) -> list[float]:
        """ln(p[i+1] / p[i]) for consecutive points."""
        prices = self.prices()
        return [math.log(after / before) for before, after in zip(prices, prices[1:])]

    def scaled(self, start_price, price_decimals: int = 8) -> PricePath:
        """The same moves starting at `start_price`, rounded to `price_decimals` places.

        Turns a relative path (first price 1.0) into absolute prices for a market.
        """
        factor = Decimal(str(start_price)) / self.points[0].price
        quantum = Decimal(1).scaleb(-price_decimals)
        return PricePath(
            tuple(PricePoint(p.t, (p.price * factor).quantize(quantum)) for p in self.points)
        )

    def head(self, count: int) -> PricePath:
        """The first `count` points."""
        return PricePath(self.points[:count])

    @classmethod
    def load(cls, path: Path | str) -> PricePath:
        """Reads a `t,price` CSV."""
        with open(path, newline="") as stream:
            reader = csv.reader(stream)
            header = tuple(next(reader))
            if header != CSV_HEADER:
                raise ValueError(f"{path}: header must be {','.join(CSV_HEADER)}, not {header}")
            return cls.of(row for row in reader if row)

    def save(self, path: Path | str) -> None:
        """Writes a `t,price` CSV (plain decimal notation, so reading it back is exact)."""
        with open(path, "w", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(CSV_HEADER)
            for point in self.points:
                writer.writerow((point.t, format(point.price, "f")))


@dataclass(frozen=True)
class JumpDiffusion:
    """Geometric Brownian motion with Poisson jumps in the log price (Merton).

    Rates are annual. Each jump multiplies the price by exp(Y), Y ~ Normal(jump_mean,
    jump_stdev). The diffusion drift is compensated for the jumps, so the expected price grows
    at `annual_drift` whatever the jumps.
    """

    annual_volatility: float
    annual_drift: float = 0.0
    jumps_per_year: float = 0.0
    jump_mean: float = 0.0
    jump_stdev: float = 0.0

    def __post_init__(self):
        if self.annual_volatility < 0 or self.jumps_per_year < 0 or self.jump_stdev < 0:
            raise ValueError("volatility, jump intensity and jump stdev must not be negative")

    def step(self, price: float, seconds: float, rng: random.Random) -> float:
        """The price `seconds` later, drawing from `rng`."""
        dt = seconds / SECONDS_PER_YEAR
        sigma = self.annual_volatility
        jump_compensator = math.exp(self.jump_mean + self.jump_stdev**2 / 2) - 1
        log_move = (self.annual_drift - sigma**2 / 2 - self.jumps_per_year * jump_compensator) * dt
        log_move += sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0)
        for _ in range(_poisson(self.jumps_per_year * dt, rng)):
            log_move += rng.gauss(self.jump_mean, self.jump_stdev)
        return price * math.exp(log_move)


def _poisson(mean: float, rng: random.Random) -> int:
    """A Poisson draw (Knuth's method: fine for the small means of one time step)."""
    if mean <= 0:
        return 0
    threshold = math.exp(-mean)
    count, product = 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def generate_path(model: JumpDiffusion, *, start_price, steps: int, step_seconds: int,
                  seed: int, price_decimals: int = 8) -> PricePath:
    """`steps` moves of `model` every `step_seconds` from `start_price` (steps + 1 points).

    The walk runs on unrounded floats; only the published points are rounded to
    `price_decimals` places, so rounding never compounds along the path.
    """
    if steps < 0 or step_seconds <= 0:
        raise ValueError("steps must be >= 0 and step_seconds > 0")
    rng = random.Random(seed)
    quantum = Decimal(1).scaleb(-price_decimals)
    price = float(start_price)
    points = [PricePoint(0, Decimal(str(start_price)).quantize(quantum))]
    for index in range(1, steps + 1):
        price = model.step(price, step_seconds, rng)
        points.append(PricePoint(index * step_seconds, Decimal(repr(price)).quantize(quantum)))
    return PricePath(tuple(points))


def crash_path(*, drop: float = 0.40, crash_seconds: int = 300, calm_before: int = 600,
               calm_after: int = 900, step_seconds: int = 12, price_decimals: int = 6) -> PricePath:
    """A relative path (starts at 1.0): flat, a fall by `drop` within `crash_seconds`, flat.

    The fall is geometric (the same percentage every step), so every step moves the price by
    the same fraction and an oracle deviation bound sees the smallest possible largest step.
    """
    if not 0 < drop < 1:
        raise ValueError("drop is a fraction between 0 and 1")
    quantum = Decimal(1).scaleb(-price_decimals)
    crash_steps = max(1, math.ceil(crash_seconds / step_seconds))
    bottom = 1 - drop
    times = range(0, calm_before + crash_steps * step_seconds + calm_after + 1, step_seconds)
    points = []
    for t in times:
        progress = min(max((t - calm_before) / (crash_steps * step_seconds), 0.0), 1.0)
        multiplier = Decimal(repr(bottom**progress)).quantize(quantum)
        points.append(PricePoint(t, multiplier))
    return PricePath(tuple(points))


# The paths in data/paths: realistic volatility for each asset (annualised, recent years' range),
# one jump a day on average, a few hours at 12-60 s steps.
SHIPPED_PATHS = {
    "btc.csv": lambda: generate_path(
        JumpDiffusion(annual_volatility=0.55, jumps_per_year=365, jump_stdev=0.01),
        start_price=150_000, steps=1200, step_seconds=12, seed=1, price_decimals=2,
    ),
    "eth.csv": lambda: generate_path(
        JumpDiffusion(annual_volatility=0.70, jumps_per_year=365, jump_stdev=0.015),
        start_price=3_000, steps=480, step_seconds=30, seed=2, price_decimals=2,
    ),
    "sol.csv": lambda: generate_path(
        JumpDiffusion(annual_volatility=0.90, jumps_per_year=365, jump_stdev=0.02),
        start_price=150, steps=360, step_seconds=60, seed=3, price_decimals=4,
    ),
    "crash.csv": lambda: crash_path(drop=0.40, crash_seconds=300),
}


def write_shipped_paths(directory: Path | str) -> list[Path]:
    """Regenerates every shipped path into `directory`; returns the files written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SHIPPED_PATHS.items():
        make().save(directory / name)
        written.append(directory / name)
    return written


if __name__ == "__main__":
    for written_file in write_shipped_paths(sys.argv[1] if len(sys.argv) > 1 else "data/paths"):
        print(written_file)
