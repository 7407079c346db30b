"""Market entries of config/markets.yaml turned into engine parameters (vyperp.network_deploy.MarketSpec).

Pure Python: a bad entry fails here, before any transaction is sent.
"""

import pytest

from vyperp.network_deploy import MarketSpec, loss_bounding_ratio
from vyperp.params import MarketConfig
from vyperp.units import WAD

ORACLE = "0x000000000000000000000000000000000000dEaD"


def test_human_values_become_18_decimal_integers_over_the_defaults():
    spec = MarketSpec(name="BTC-USD", description="BTC / USD", params={"imr": 0.05, "mark_window": 60, "skew_scale": 100_000})
    config = spec.market_config(ORACLE)
    # without a max_oi_vault_ratio the market gets the one that bounds loss (S3): 0.5 / 0.15
    assert config == MarketConfig(oracle=ORACLE, imr=WAD // 20, mark_window=60, skew_scale=100_000 * WAD,
                                  max_oi_vault_ratio=loss_bounding_ratio(15 * WAD // 100))
    assert config.max_oi_vault_ratio == 3_333_333_333_333_333_333


def test_unknown_parameter_is_named():
    spec = MarketSpec(name="BTC-USD", description="BTC / USD", params={"imr": 0.05, "leverage": 20})
    with pytest.raises(ValueError, match=r"BTC-USD: unknown market parameters \['leverage'\]"):
        spec.market_config(ORACLE)


def test_boolean_parameter_must_be_a_boolean():
    spec = MarketSpec(name="SOL-USD", description="SOL / USD", params={"dynamic_funding": "yes"})
    with pytest.raises(ValueError, match="dynamic_funding must be true or false"):
        spec.market_config(ORACLE)


def test_fraction_finer_than_the_engine_step_is_rejected():
    """The engine stores fractions in steps of 1e-10; a finer value would revert on chain."""
    spec = MarketSpec(name="ETH-USD", description="ETH / USD", params={"taker_fee": "0.00050000000001", "mmr": 0.025})
    with pytest.raises(ValueError, match="ETH-USD: taker_fee must be a multiple of 1e-10"):
        spec.market_config(ORACLE)
    assert MarketSpec(name="ETH-USD", description="ETH / USD", params={"taker_fee": "0.0005000001"}).market_config(ORACLE).taker_fee == 500_000_100_000_000
