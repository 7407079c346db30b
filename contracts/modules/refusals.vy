# pragma version ~=0.4.3
"""
@title refusals
@notice The engine's trade refusals that say nothing about the order itself:
        the engine raises them, and the OrderBook (S8) keeps an order pending
        when its execution meets one of them, rather than cancelling it.
@dev Constants only (no storage, nothing to initialize): a contract that
     raises or recognises one of these reasons names it here, so the two can
     never drift apart as text.
"""

PAUSED: constant(String[14]) = "engine: paused"
REDUCE_ONLY: constant(String[29]) = "engine: market is reduce-only"
OPEN_INTEREST_CAP: constant(String[25]) = "engine: open interest cap"
VAULT_CAPACITY: constant(String[42]) = "engine: open interest above vault capacity"
FILL_ABOVE_LIMIT: constant(String[30]) = "engine: fill price above limit"
FILL_BELOW_LIMIT: constant(String[30]) = "engine: fill price below limit"
