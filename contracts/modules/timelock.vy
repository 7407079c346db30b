# pragma version ~=0.4.3
"""
@title timelock
@notice S10, tightening delays: a parameter change that could hurt an open
        position (raise a margin or a fee, lower a cap, move a price or
        funding setting, shrink the profit cap or a leverage tier) is queued
        for param_delay and takes effect when anyone applies it once due.
        Loosening changes, and changes where nobody holds a position, take
        effect at once. The callers classify; this module keeps the queue.
@custom:security A change is queued under a key; a new change under the same
                 key replaces the pending one, an immediate change under it
                 drops it. Keys: a market id (below 64) for market parameters,
                 then KEY_PNL_CAPS, KEY_VAULT_UTILIZATION, KEY_PARAM_DELAY,
                 KEY_TIER + tier for a tier's leverage and KEY_OWNER | owner
                 for an owner's tier.
"""

from . import markets


event MarketParamsQueued:
    market_id: indexed(uint256)
    params: markets.MarketParams
    effective_at: uint256


event ChangeQueued:
    key: indexed(uint256)
    value: uint256
    effective_at: uint256


event ChangeCancelled:
    key: indexed(uint256)


event ParamDelaySet:
    param_delay: uint256


# @dev Bounds and default of param_delay, seconds.
MIN_PARAM_DELAY: constant(uint256) = 3600
MAX_PARAM_DELAY: constant(uint256) = 30 * 86400
DEFAULT_PARAM_DELAY: constant(uint256) = 86400
# @dev Queue keys besides market ids (see the module notice).
KEY_PNL_CAPS: constant(uint256) = 64
KEY_VAULT_UTILIZATION: constant(uint256) = 65
KEY_PARAM_DELAY: constant(uint256) = 66
KEY_TIER: constant(uint256) = 128
KEY_OWNER: constant(uint256) = 1 << 160

# @dev Seconds a tightening change waits between queueing and taking effect.
param_delay: public(uint256)
# @dev Queued market parameters, by market id.
_pending_params: HashMap[uint256, markets.MarketParams]
# @dev Queued value of a scalar change, by key (pnl caps: adl_target << 128 | max_pnl_factor).
_pending_value: HashMap[uint256, uint256]
# @dev When the change queued under a key may be applied (0: none queued).
_pending_at: HashMap[uint256, uint256]


@internal
def _queue(key: uint256, new_value: uint256) -> uint256:
    """
    @dev Queues a scalar change (or, with key below 64, the time of market parameters
         stored by the caller) and returns when it may be applied.
    """
    effective_at: uint256 = block.timestamp + self.param_delay
    self._pending_at[key] = effective_at
    self._pending_value[key] = new_value
    if key >= markets.MAX_MARKETS:
        log ChangeQueued(key=key, value=new_value, effective_at=effective_at)
    return effective_at


@internal
def _queue_market(market_id: uint256, p: markets.MarketParams):
    self._pending_params[market_id] = p
    log MarketParamsQueued(market_id=market_id, params=p, effective_at=self._queue(market_id, 0))


@internal
def _take(key: uint256) -> uint256:
    """
    @dev Removes a due change from the queue and returns its value.
    """
    effective_at: uint256 = self._pending_at[key]
    assert effective_at != 0, "timelock: nothing queued"
    assert block.timestamp >= effective_at, "timelock: change not due"
    self._pending_at[key] = 0
    return self._pending_value[key]


@internal
def _drop(key: uint256):
    """
    @dev Drops the change queued under a key, if any.
    """
    if self._pending_at[key] != 0:
        self._pending_at[key] = 0
        log ChangeCancelled(key=key)


@internal
@pure
def _check_param_delay(delay: uint256):
    assert delay >= MIN_PARAM_DELAY and delay <= MAX_PARAM_DELAY, "timelock: param delay out of bounds"


@internal
def _set_param_delay(delay: uint256):
    self.param_delay = delay
    log ParamDelaySet(param_delay=delay)


@external
@view
def pending_change(key: uint256) -> (uint256, uint256):
    """
    @notice The change queued under a key (see the module notice).
    @param key Queue key.
    @return Its value (market parameters: 0, see pending_market_params) and
            when it may be applied (0: none queued).
    """
    return self._pending_value[key], self._pending_at[key]


@external
@view
def pending_market_params(market_id: uint256) -> (markets.MarketParams, uint256):
    """
    @notice The parameters queued for a market.
    @param market_id Market.
    @return The parameters and when they may be applied (0: none queued).
    """
    return self._pending_params[market_id], self._pending_at[market_id]
