# pragma version ~=0.4.3
"""
@title MockFeed
@notice Test double of a Chainlink AggregatorV3 feed whose answer and
        timestamp a test sets freely, to drive the engine's checks for zero,
        negative, stale and future prices that the real PriceOracle refuses
        to produce. Never deployed outside tests.
"""

# @dev Answer latestRoundData returns.
answer: public(int256)
# @dev updatedAt latestRoundData returns.
updated_at: public(uint256)
# @dev Decimals of the answer.
decimals: public(uint8)
# @dev TWAP returned to the engine (0: same as answer).
twap_answer: public(uint256)


@deploy
def __init__(decimals_: uint8, answer_: int256):
    self.decimals = decimals_
    self.answer = answer_
    self.updated_at = block.timestamp


@external
def set_answer(answer_: int256, updated_at_: uint256):
    self.answer = answer_
    self.updated_at = updated_at_


@external
def set_twap(twap_answer_: uint256):
    self.twap_answer = twap_answer_


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    return 1, self.answer, self.updated_at, self.updated_at, 1


@external
@view
def twap(window: uint256) -> uint256:
    return self.twap_answer
