"""Each market's oracle price at each round of a scenario: a Decimal, or None while the feed is
silent (nothing published that round, so the engine sees the last price age).

Round k is at ``k * round_seconds`` from the start; there are ``rounds + 1`` of them (round 0
publishes the initial price). Piecewise paths are evaluated at the round times, so a gap lands
in the first round at or after it and a ramp is sampled as coarsely as the rounds are.
"""

from __future__ import annotations

import math
from decimal import Decimal

from vyperp.scenarios.schema import (
    CsvPath,
    Gap,
    GeneratedPath,
    Hold,
    Oscillate,
    PiecewisePath,
    Ramp,
    Scenario,
    ScenarioMarket,
    Silent,
)
from vyperp.sim.paths import JumpDiffusion, PricePath, generate_path

PRICE_DECIMALS = 8
_QUANTUM = Decimal(1).scaleb(-PRICE_DECIMALS)


def round_prices(scenario: Scenario, market: ScenarioMarket, seed: int) -> list[Decimal | None]:
    """The price each round publishes for ``market``, None for a silent round."""
    times = [k * scenario.round_seconds for k in range(scenario.rounds + 1)]
    path = market.path
    if isinstance(path, PiecewisePath):
        return [_piecewise(path, market.initial_price, t) for t in times]
    if isinstance(path, GeneratedPath):
        model = JumpDiffusion(annual_volatility=float(path.volatility),
                              annual_drift=float(path.drift),
                              jumps_per_year=float(path.jumps_per_year),
                              jump_stdev=float(path.jump_stdev))
        generated = generate_path(model, start_price=market.initial_price,
                                  steps=scenario.rounds, step_seconds=scenario.round_seconds,
                                  seed=seed, price_decimals=PRICE_DECIMALS)
        return generated.prices()
    return _from_csv(path, market.initial_price, times)


def _piecewise(path: PiecewisePath, start: Decimal, t: int) -> Decimal | None:
    """The price at ``t`` seconds, None inside a silent segment."""
    price, elapsed = start, 0
    for segment in path.segments:
        if isinstance(segment, Gap):
            if t < elapsed:
                break
            price *= 1 + segment.gap
            continue
        length = segment.hold if isinstance(segment, Hold) else (
            segment.silent if isinstance(segment, Silent) else segment.seconds)
        if t < elapsed + length:
            into = t - elapsed
            if isinstance(segment, Silent):
                return None
            if isinstance(segment, Ramp):
                return _round(price * _power(1 + segment.ramp, Decimal(into) / length))
            if isinstance(segment, Oscillate):
                wave = Decimal(repr(math.sin(2 * math.pi * into / segment.period)))
                return _round(price * (1 + segment.oscillate * wave))
            return _round(price)
        if isinstance(segment, Ramp):
            price *= 1 + segment.ramp
        elif isinstance(segment, Oscillate):
            wave = Decimal(repr(math.sin(2 * math.pi * length / segment.period)))
            price *= 1 + segment.oscillate * wave
        elapsed += length
    return _round(price)


def _from_csv(path: CsvPath, start: Decimal, times: list[int]) -> list[Decimal]:
    """The file's last point at or before each round time (its last price after it ends)."""
    points = PricePath.load(path.file)
    if path.relative:
        points = points.scaled(start, PRICE_DECIMALS)
    prices, index = [], 0
    for t in times:
        while index + 1 < len(points) and points[index + 1].t <= t:
            index += 1
        prices.append(points[index].price)
    return prices


def _power(base: Decimal, exponent: Decimal) -> Decimal:
    return Decimal(repr(float(base) ** float(exponent)))


def _round(price: Decimal) -> Decimal:
    return max(price.quantize(_QUANTUM), _QUANTUM)
