# pragma version ~=0.4.3
"""
@title MarketsPacking
@notice Test harness that exposes the markets module's packed parameter
        words: lists markets through the module's own _add and reads them back
        through the accessors the engine's hot paths use. Never deployed
        outside tests.
"""

from contracts.modules import markets

initializes: markets


@external
def add(p: markets.MarketParams) -> uint256:
    return markets._add(p)


@external
def set_atomic_trading(market_id: uint256, allowed: bool):
    markets._set_atomic_trading(market_id, allowed)


@external
@view
def unpacked(market_id: uint256) -> (address, uint256[17], bool, bool):
    """
    @return The oracle; the numeric fields in MarketParams order (dynamic_funding
            left out), then the price scale; dynamic_funding; atomic trading.
    """
    oracle: address = empty(address)
    max_price_age: uint256 = 0
    mark_window: uint256 = 0
    scale: uint256 = 0
    oracle, max_price_age, mark_window, scale = markets._feed(market_id)
    skew_scale: uint256 = 0
    max_premium: uint256 = 0
    dynamic: bool = False
    skew_scale, max_premium, dynamic = markets._skew_params(market_id)
    interest_rate: uint256 = 0
    max_funding_rate: uint256 = 0
    max_funding_velocity: uint256 = 0
    interest_rate, max_funding_rate, max_funding_velocity = markets._funding_params(market_id)
    imr: uint256 = 0
    mmr: uint256 = 0
    maker_fee: uint256 = 0
    taker_fee: uint256 = 0
    imr, mmr, maker_fee, taker_fee = markets._margin_params(market_id)
    max_position_size: uint256 = 0
    max_open_interest: uint256 = 0
    ratio: uint256 = 0
    max_position_size, max_open_interest, ratio = markets._limits(market_id)
    breaker_move: uint256 = 0
    breaker_window: uint256 = 0
    breaker_move, breaker_window = markets._breaker_params(market_id)
    return oracle, [
        max_price_age, mark_window, skew_scale, max_premium, interest_rate, max_funding_rate,
        max_funding_velocity, imr, mmr, maker_fee, taker_fee, max_position_size, max_open_interest,
        ratio, breaker_move, breaker_window, scale,
    ], dynamic, markets._atomic_trading(market_id)
