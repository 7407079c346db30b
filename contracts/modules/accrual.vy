# pragma version ~=0.4.3
"""
@title accrual
@notice Brings one market up to now: reads the index, feeds the price-move
        breaker and accrues funding at the current skew. Every entry point
        that changes a market's skew, a size or collateral, or its
        parameters, runs this first.
@custom:security Stateless: the state it moves belongs to pricing and funding.
"""

from . import pricing
from . import funding
from . import positions

uses: pricing
uses: funding
uses: positions


@internal
def _refresh(market_id: uint256) -> uint256:
    """
    @dev Accrues the market to now; returns the index price it read.
    """
    index: uint256 = pricing._index_price(market_id)
    pricing._update_breaker(market_id, index)
    funding._accrue(market_id, index, positions._skew(market_id))
    return index
