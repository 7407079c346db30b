"""The markets module's packed parameter words on titanoboa (contracts/test/MarketsPacking.vy).

The engine's hot paths read a market's parameters from four packed words, not from the struct
that `params()` returns. For any valid parameter set (every field anywhere in its bounds, the
fractions in their steps of 1e-10, any oracle decimals), each accessor must give back exactly
the value that was set, whether atomic trading (the top bit of word 0) is on or off.
"""

import boa
from boa_protocol import contract, examples
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vyperp.params import FRACTION_STEP, MarketConfig
from vyperp.units import WAD

MAX_UINT128 = 2**128 - 1


def fraction(low: int, high: int):
    """Multiples of the step in [low, high] (both multiples themselves), ends included."""
    return st.integers(low // FRACTION_STEP, high // FRACTION_STEP).map(lambda steps: steps * FRACTION_STEP)


@st.composite
def market_configs(draw, oracle: str) -> MarketConfig:
    max_funding_rate = draw(fraction(0, WAD // 20))
    imr = draw(fraction(WAD // 100 + FRACTION_STEP, WAD))
    taker_fee = draw(fraction(0, WAD // 100))
    max_position_size = draw(st.integers(1, MAX_UINT128))
    return MarketConfig(
        oracle=oracle,
        max_price_age=draw(st.integers(1, 86_400)),
        mark_window=draw(st.integers(0, 3_600)),
        skew_scale=draw(st.integers(1, MAX_UINT128)),
        max_premium=draw(fraction(0, WAD // 10)),
        interest_rate=draw(fraction(0, min(WAD // 1_000, max_funding_rate))),
        max_funding_rate=max_funding_rate,
        dynamic_funding=draw(st.booleans()),
        max_funding_velocity=draw(fraction(0, WAD // 10)),
        imr=imr,
        mmr=draw(fraction(WAD // 200, imr - FRACTION_STEP)),
        maker_fee=draw(fraction(0, taker_fee)),
        taker_fee=taker_fee,
        max_position_size=max_position_size,
        max_open_interest=draw(st.integers(max_position_size, MAX_UINT128)),
        max_oi_vault_ratio=draw(st.integers(0, 100 * WAD)),
        breaker_move=draw(fraction(WAD // 100, WAD)),
        breaker_window=draw(st.integers(60, 86_400)),
    )


@pytest.fixture(scope="module")
def packing():
    with boa.env.anchor():
        harness = contract("test/MarketsPacking").deploy()
        feeds = {decimals: contract("test/MockFeed").deploy(decimals, 1) for decimals in (0, 6, 8, 18)}
        yield harness, feeds


@settings(max_examples=examples(150), deadline=None)
@given(data=st.data(), decimals=st.sampled_from([0, 6, 8, 18]), atomic=st.booleans())
def test_every_accessor_returns_the_value_that_was_set(packing, data, decimals, atomic):
    harness, feeds = packing
    config = data.draw(market_configs(feeds[decimals].address))
    with boa.env.anchor():
        market_id = harness.add(config.as_tuple())
        harness.set_atomic_trading(market_id, atomic)
        oracle, numbers, dynamic, atomic_read = harness.unpacked(market_id)
    fields = config.as_tuple()
    expected = [v for v in fields[1:] if not isinstance(v, bool)] + [10 ** (18 - decimals)]
    assert oracle == config.oracle
    assert list(numbers) == expected
    assert (dynamic, atomic_read) == (config.dynamic_funding, atomic)


def test_the_largest_value_of_every_field_reads_back(packing):
    """Every field at its upper bound at once (mmr one step below imr)."""
    harness, feeds = packing
    config = MarketConfig(
        oracle=feeds[0].address, max_price_age=86_400, mark_window=3_600, skew_scale=MAX_UINT128,
        max_premium=WAD // 10, interest_rate=WAD // 1_000, max_funding_rate=WAD // 20, dynamic_funding=True,
        max_funding_velocity=WAD // 10, imr=WAD, mmr=WAD - FRACTION_STEP, maker_fee=WAD // 100,
        taker_fee=WAD // 100, max_position_size=MAX_UINT128, max_open_interest=MAX_UINT128,
        max_oi_vault_ratio=100 * WAD, breaker_move=WAD, breaker_window=86_400,
    )
    with boa.env.anchor():
        market_id = harness.add(config.as_tuple())
        harness.set_atomic_trading(market_id, True)
        oracle, numbers, dynamic, atomic = harness.unpacked(market_id)
    assert list(numbers) == [v for v in config.as_tuple()[1:] if not isinstance(v, bool)] + [10**18]
    assert (oracle, dynamic, atomic) == (config.oracle, True, True)
