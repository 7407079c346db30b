# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title OrderBook
@notice Two-step orders for the vyperp Engine. A trader commits an order
        (market, limit, stop-loss or take-profit) and deposits a keeper fee in
        the collateral token; a keeper executes it later, only with an oracle
        price that was published at least `min_delay` seconds after the commit
        and is at most `max_age` seconds old, so nobody trades at a price they
        could see before committing. The keeper that executes an order, or
        cancels an expired one, receives its fee. docs/orders.md has the rules.
@custom:security The engine lets this contract trade for any account, so
                 every order is authorised at commit (owner or one of its
                 engine operators) and can only trade what was committed.
                 Orders are deleted before the engine is called (checks,
                 effects, interactions); every state-changing entry point
                 holds the lock; only the collateral token moves, never ETH.
                 A batch never reverts for one order: engine reverts are
                 caught and reported, and execution refuses to start an
                 engine call with less than MIN_EXECUTION_GAS left, so a
                 keeper cannot make a valid order fail by starving it of gas.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from snekmate.auth import ownable
from snekmate.utils import pausable

from .interfaces import IEngine


initializes: ownable
initializes: pausable

exports: (
    ownable.owner,
    ownable.transfer_ownership,
    pausable.paused,
)


# @dev Order kinds.
KIND_MARKET: public(constant(uint8)) = 0
KIND_LIMIT: public(constant(uint8)) = 1
KIND_STOP_LOSS: public(constant(uint8)) = 2
KIND_TAKE_PROFIT: public(constant(uint8)) = 3

# @dev Outcome of one execution attempt (execute, execute_many).
EXECUTED: public(constant(uint8)) = 1
# @dev Removed because the engine refused the trade or there is nothing to reduce; fee to the executor.
CANCELLED: public(constant(uint8)) = 2
# @dev Removed because it expired; fee to the executor.
EXPIRED: public(constant(uint8)) = 3
# @dev Not executable now (price not new or fresh enough, trigger, limit, post-only); left pending.
PENDING: public(constant(uint8)) = 4
# @dev No such order (never committed, or already executed or cancelled).
MISSING: public(constant(uint8)) = 5

# @dev Hard bounds of the per-market settings (inclusive).
MIN_DELAY_BOUNDS: constant(uint256[2]) = [1, 600]
MAX_AGE_BOUNDS: constant(uint256[2]) = [1, 3600]
# @dev A market order lives at most an hour: it cannot be cancelled by its owner
#      (that would let them drop it once they saw the price it would fill at).
MAX_MARKET_ORDER_LIFETIME: public(constant(uint256)) = 3600
# @dev Limit, stop-loss and take-profit orders live at most 90 days.
MAX_ORDER_LIFETIME: public(constant(uint256)) = 90 * 86400
# @dev Gas an engine call must be able to receive; below it execution reverts
#      (63/64 of it is forwarded, far above what one trade costs with 8 open markets).
MIN_EXECUTION_GAS: public(constant(uint256)) = 1_000_000
# @dev Orders per execute_many call.
MAX_BATCH: public(constant(uint256)) = 64
# @dev Order ids one view call scans, and orders one page returns.
MAX_SCAN: public(constant(uint256)) = 1000
MAX_PAGE: public(constant(uint256)) = 100

FLAG_REDUCE_ONLY: constant(uint256) = 4
FLAG_POST_ONLY: constant(uint256) = 8
FLAG_TRIGGER_ON_MARK: constant(uint256) = 16
MASK_32: constant(uint256) = 2**32 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1
MODIFY_POSITION: constant(bytes4) = method_id("modify_position(uint256,int256,uint256,uint256,address)", output_type=bytes4)
ERROR_SELECTOR: constant(bytes4) = 0x08c379a0


struct Order:
    id: uint256
    owner: address
    subaccount: uint256
    market_id: uint256
    kind: uint8
    reduce_only: bool
    post_only: bool
    trigger_on_mark: bool
    size_delta: int256
    acceptable_price: uint256
    trigger_price: uint256
    commit_time: uint256
    expiry: uint256
    keeper_fee: uint256


struct MarketSettings:
    min_delay: uint256
    max_age: uint256
    min_keeper_fee: uint256


struct ExecutablePage:
    ids: DynArray[uint256, MAX_PAGE]
    # lowest id still pending in the scanned range, or the end of the range when none is
    first_pending: uint256
    # first id not scanned
    scanned_to: uint256


event OrderCommitted:
    order_id: indexed(uint256)
    owner: indexed(address)
    market_id: indexed(uint256)
    subaccount: uint256
    kind: uint8
    size_delta: int256
    acceptable_price: uint256
    trigger_price: uint256
    reduce_only: bool
    post_only: bool
    trigger_on_mark: bool
    expiry: uint256
    keeper_fee: uint256


event OrderExecuted:
    order_id: indexed(uint256)
    owner: indexed(address)
    executor: indexed(address)
    size_delta: int256
    keeper_fee: uint256


event OrderCancelled:
    order_id: indexed(uint256)
    owner: indexed(address)
    caller: indexed(address)
    fee_to: address
    keeper_fee: uint256
    outcome: uint8
    reason: String[128]


event OrderSkipped:
    order_id: indexed(uint256)
    outcome: uint8
    reason: String[128]


event MarketSettingsSet:
    market_id: indexed(uint256)
    min_delay: uint256
    max_age: uint256
    min_keeper_fee: uint256


# @dev The engine this book trades on (it must name this contract as its order book).
engine: public(immutable(IEngine))
# @dev The engine's collateral token, in which keeper fees are deposited and paid.
collateral_token: public(immutable(IERC20))
# @dev Largest minimum keeper fee the owner may set: 1,000 whole tokens.
max_keeper_fee: public(immutable(uint256))
# @dev Id the next committed order gets; ids start at 0 and are never reused.
next_order_id: public(uint256)
# @dev Packed orders by id; three words, all zero once executed or cancelled:
#      [0] owner (bits 0-159) | market id (160-167) | kind (168-169) and flags (170-175)
#          | commit time (176-215) | expiry (216-255)
#      [1] size delta, int96 two's complement (0-95) | acceptable price (96-223) | subaccount (224-255)
#      [2] trigger price (0-127) | keeper fee in token units (128-255)
_orders: HashMap[uint256, uint256[3]]
# @dev Pending market orders that may add risk, by owner and subaccount: the engine refuses
#      their withdrawals meanwhile, so a trader cannot back out of a market order after seeing
#      its price by withdrawing the margin it needs (market orders cannot be cancelled).
pending_market_orders: public(HashMap[address, HashMap[uint256, uint256]])
# @dev Packed per-market settings: min_delay (bits 0-31) | max_age (32-63) | min_keeper_fee (64-191);
#      zero while the market takes no orders.
_settings: HashMap[uint256, uint256]


@deploy
def __init__(engine_: IEngine):
    """
    @notice Deploys the order book over an engine; the deployer owns it.
    @dev The engine's admin must then call set_order_book(this) and the owner
         set_market_settings for each market that takes orders.
    @param engine_ The vyperp Engine.
    """
    ownable.__init__()
    pausable.__init__()
    engine = engine_
    token: address = staticcall engine_.collateral_token()
    collateral_token = IERC20(token)
    max_keeper_fee = 1000 * 10 ** convert(staticcall IERC20Detailed(token).decimals(), uint256)


# ---------------------------------------------------------------------------
# Owner
# ---------------------------------------------------------------------------


@external
def set_market_settings(market_id: uint256, min_delay: uint256, max_age: uint256, min_keeper_fee: uint256):
    """
    @notice Enables orders in a market, or changes its execution settings.
    @dev Applies to pending orders too: the rule is checked at execution.
    @param market_id An engine market.
    @param min_delay Seconds an oracle update must come after the commit, in [1, 600].
    @param max_age Seconds an oracle update stays usable for execution, in [1, 3600].
    @param min_keeper_fee Smallest keeper fee an order may carry (token units), at most max_keeper_fee.
    """
    self._check_owner()
    assert market_id < staticcall engine.market_count(), "order_book: unknown market"
    assert min_delay >= MIN_DELAY_BOUNDS[0] and min_delay <= MIN_DELAY_BOUNDS[1], "order_book: min_delay out of bounds"
    assert max_age >= MAX_AGE_BOUNDS[0] and max_age <= MAX_AGE_BOUNDS[1], "order_book: max_age out of bounds"
    assert min_keeper_fee <= max_keeper_fee, "order_book: min_keeper_fee out of bounds"
    self._settings[market_id] = min_delay | (max_age << 32) | (min_keeper_fee << 64)
    log MarketSettingsSet(market_id=market_id, min_delay=min_delay, max_age=max_age, min_keeper_fee=min_keeper_fee)


@external
def pause():
    """
    @notice Stops new commits; execution and cancellation go on.
    """
    self._check_owner()
    pausable._pause()


@external
def unpause():
    """
    @notice Accepts commits again.
    """
    self._check_owner()
    pausable._unpause()


# ---------------------------------------------------------------------------
# Traders
# ---------------------------------------------------------------------------


@external
@nonreentrant
def commit_order(
    market_id: uint256,
    kind: uint8,
    size_delta: int256,
    acceptable_price: uint256,
    trigger_price: uint256,
    expiry: uint256,
    keeper_fee: uint256,
    reduce_only: bool = False,
    post_only: bool = False,
    trigger_on_mark: bool = False,
    subaccount: uint256 = 0,
    owner: address = msg.sender,
) -> uint256:
    """
    @notice Commits an order and deposits its keeper fee (pulled from the caller).
    @param market_id Market to trade.
    @param kind KIND_MARKET, KIND_LIMIT, KIND_STOP_LOSS or KIND_TAKE_PROFIT.
    @param size_delta Signed size (> 0 buys), 18 decimals; a reduce-only order
           is clamped to the position at execution.
    @param acceptable_price Worst fill accepted (a buy's ceiling, a sell's floor);
           for a limit order this is its limit price. 18 decimals.
    @param trigger_price Stop-loss and take-profit only: the index (or mark)
           price that arms the order; 0 for market and limit orders.
    @param expiry Timestamp from which the order can no longer execute.
    @param keeper_fee Collateral token units paid to whoever executes (or
           cancels, once expired) the order.
    @param reduce_only Only reduce the position (always on for stop-loss and take-profit).
    @param post_only Limit orders only: execute only where the whole trade
           reduces the skew, so it pays the maker fee.
    @param trigger_on_mark Stop-loss and take-profit: trigger on the mark
           price instead of the index price.
    @param subaccount Subaccount id, below 2^32.
    @param owner Account owner (default: the caller); its engine operators may commit for it.
    @return The order id.
    """
    assert not pausable.paused, "order_book: paused"
    assert msg.sender == owner or staticcall engine.is_operator(owner, msg.sender), "order_book: not owner or operator"
    settings: uint256 = self._settings[market_id]
    assert settings != 0, "order_book: market not enabled"
    assert size_delta != 0, "order_book: zero size"
    assert abs(size_delta) < 2**95, "order_book: size too large"
    assert acceptable_price <= MASK_128 and trigger_price <= MASK_128, "order_book: price too large"
    assert subaccount <= MASK_32, "order_book: subaccount too large"
    assert kind <= KIND_TAKE_PROFIT, "order_book: unknown order kind"
    flags: uint256 = convert(kind, uint256)
    if kind == KIND_STOP_LOSS or kind == KIND_TAKE_PROFIT:
        assert trigger_price != 0, "order_book: trigger price needed"
        size: int256 = (staticcall engine.open_positions(owner, subaccount, market_id)).size
        # tied to a position: the order must point against it
        assert size != 0 and (size > 0) != (size_delta > 0), "order_book: no position to close"
        flags |= FLAG_REDUCE_ONLY
        if trigger_on_mark:
            flags |= FLAG_TRIGGER_ON_MARK
    else:
        assert trigger_price == 0 and not trigger_on_mark, "order_book: trigger on an untriggered order"
        if reduce_only:
            flags |= FLAG_REDUCE_ONLY
    if post_only:
        assert kind == KIND_LIMIT, "order_book: post-only needs a limit order"
        flags |= FLAG_POST_ONLY
    min_delay: uint256 = settings & MASK_32
    assert expiry > block.timestamp + min_delay, "order_book: expires before it can execute"
    lifetime: uint256 = MAX_ORDER_LIFETIME
    if kind == KIND_MARKET:
        lifetime = MAX_MARKET_ORDER_LIFETIME
    assert expiry <= block.timestamp + lifetime, "order_book: expiry too far"
    assert keeper_fee >= settings >> 64, "order_book: keeper fee below minimum"
    assert keeper_fee <= max_keeper_fee, "order_book: keeper fee above maximum"

    order_id: uint256 = self.next_order_id
    self.next_order_id = order_id + 1
    if kind == KIND_MARKET and not reduce_only:
        self.pending_market_orders[owner][subaccount] += 1
    self._orders[order_id] = [
        convert(owner, uint256) | (market_id << 160) | (flags << 168) | (block.timestamp << 176) | (expiry << 216),
        (convert(convert(size_delta, bytes32), uint256) & MASK_96) | (acceptable_price << 96) | (subaccount << 224),
        trigger_price | (keeper_fee << 128),
    ]
    log OrderCommitted(
        order_id=order_id,
        owner=owner,
        market_id=market_id,
        subaccount=subaccount,
        kind=kind,
        size_delta=size_delta,
        acceptable_price=acceptable_price,
        trigger_price=trigger_price,
        reduce_only=flags & FLAG_REDUCE_ONLY != 0,
        post_only=post_only,
        trigger_on_mark=trigger_on_mark,
        expiry=expiry,
        keeper_fee=keeper_fee,
    )
    if keeper_fee != 0:
        before: uint256 = staticcall collateral_token.balanceOf(self)
        assert extcall collateral_token.transferFrom(msg.sender, self, keeper_fee, default_return_value=True), "order_book: transfer failed"
        assert staticcall collateral_token.balanceOf(self) - before == keeper_fee, "order_book: fee-on-transfer token"
    return order_id


@external
@nonreentrant
def cancel(order_id: uint256):
    """
    @notice Cancels an order. Before its expiry only the owner or an operator
            may cancel, the fee goes back to the owner, and market orders cannot
            be cancelled. From its expiry anyone may cancel it and the caller
            receives the keeper fee (payment for clearing it).
    @param order_id The order.
    """
    order: Order = self._load(order_id)
    assert order.owner != empty(address), "order_book: no such order"
    fee_to: address = msg.sender
    outcome: uint8 = EXPIRED
    reason: String[128] = "order_book: order expired"
    if block.timestamp < order.expiry:
        assert msg.sender == order.owner or staticcall engine.is_operator(order.owner, msg.sender), "order_book: not owner or operator"
        assert order.kind != KIND_MARKET, "order_book: market orders run until expiry"
        fee_to = order.owner
        outcome = CANCELLED
        reason = "order_book: cancelled by owner"
    self._remove(order_id, order)
    log OrderCancelled(order_id=order_id, owner=order.owner, caller=msg.sender, fee_to=fee_to, keeper_fee=order.keeper_fee, outcome=outcome, reason=reason)
    self._pay(fee_to, order.keeper_fee)


# ---------------------------------------------------------------------------
# Keepers
# ---------------------------------------------------------------------------


@external
@nonreentrant
def execute(order_id: uint256) -> uint8:
    """
    @notice Executes one order, or removes it when it expired, has nothing
            left to reduce or the engine refuses its trade (see execute_many);
            reverts with the reason when it is not executable now.
    @param order_id The order.
    @return EXECUTED, CANCELLED or EXPIRED.
    """
    outcome: uint8 = 0
    reason: String[128] = ""
    fee: uint256 = 0
    outcome, reason, fee = self._execute(order_id)
    if outcome == PENDING or outcome == MISSING:
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
    self._pay(msg.sender, fee)
    return outcome


@external
@nonreentrant
def execute_many(order_ids: DynArray[uint256, MAX_BATCH]) -> DynArray[uint8, MAX_BATCH]:
    """
    @notice Executes each order that is executable now; never reverts for one
            order. An order that is not executable yet stays pending
            (OrderSkipped); one that expired, has nothing to reduce or whose
            trade the engine refuses is removed (OrderCancelled with the
            reason) and its fee paid to the caller, like an executed one.
    @dev Reverts as a whole only if less than MIN_EXECUTION_GAS is left before
         an engine call: send enough gas.
    @param order_ids Orders to try, in order.
    @return The outcome of each (EXECUTED, CANCELLED, EXPIRED, PENDING, MISSING).
    """
    outcomes: DynArray[uint8, MAX_BATCH] = []
    total_fee: uint256 = 0
    for order_id: uint256 in order_ids:
        outcome: uint8 = 0
        reason: String[128] = ""
        fee: uint256 = 0
        outcome, reason, fee = self._execute(order_id)
        if outcome == PENDING or outcome == MISSING:
            log OrderSkipped(order_id=order_id, outcome=outcome, reason=reason)
        total_fee += fee
        outcomes.append(outcome)
    self._pay(msg.sender, total_fee)
    return outcomes


# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------


@external
@view
def order(order_id: uint256) -> Order:
    """
    @notice An order as committed (all zero once executed or cancelled).
    @param order_id The order.
    @return The order.
    """
    return self._load(order_id)


@external
@view
def market_settings(market_id: uint256) -> MarketSettings:
    """
    @notice A market's execution settings (all zero while it takes no orders).
    @param market_id Market.
    @return min_delay, max_age (seconds) and min_keeper_fee (token units).
    """
    packed: uint256 = self._settings[market_id]
    return MarketSettings(min_delay=packed & MASK_32, max_age=(packed >> 32) & MASK_32, min_keeper_fee=packed >> 64)


@external
@view
def status(order_id: uint256) -> (uint8, String[128]):
    """
    @notice What executing an order now would do, short of the engine's own
            checks (margin, size and open-interest limits, pause), which only
            the execution itself runs.
    @param order_id The order.
    @return The expected outcome (EXECUTED meaning "would be sent to the engine") and the reason.
    """
    order: Order = self._load(order_id)
    if order.owner == empty(address):
        return MISSING, "order_book: no such order"
    outcome: uint8 = 0
    reason: String[128] = ""
    size: int256 = 0
    outcome, reason, size = self._readiness(order)
    return outcome, reason


@external
@view
def orders_of(owner: address, start: uint256, count: uint256) -> DynArray[Order, MAX_PAGE]:
    """
    @notice Pending orders of an owner (every subaccount) among ids
            [start, start + count), at most MAX_PAGE of them.
    @param owner Account owner.
    @param start First id scanned.
    @param count Ids scanned, at most MAX_SCAN.
    @return The owner's pending orders in id order.
    """
    assert count <= MAX_SCAN, "order_book: page too long"
    found: DynArray[Order, MAX_PAGE] = []
    end: uint256 = min(start + count, self.next_order_id)
    if end <= start:
        return found
    for order_id: uint256 in range(start, end, bound=MAX_SCAN):
        if self._orders[order_id][0] & MASK_160 == convert(owner, uint256):
            found.append(self._load(order_id))
            if len(found) == MAX_PAGE:
                break
    return found


@external
@view
def executable_orders(start: uint256, count: uint256) -> ExecutablePage:
    """
    @notice Ids among [start, start + count) that an execute_many would act on
            now (execute, or remove for a fee: expired, nothing to reduce),
            for keepers; at most MAX_PAGE of them.
    @dev The engine's own checks run only at execution: an order listed here
         can still be cancelled there (and pays its fee all the same).
    @param start First id scanned.
    @param count Ids scanned, at most MAX_SCAN.
    @return The ids, the lowest pending id scanned (where the next scan can
            start) and the first id not scanned.
    """
    assert count <= MAX_SCAN, "order_book: page too long"
    end: uint256 = min(start + count, self.next_order_id)
    page: ExecutablePage = ExecutablePage(ids=[], first_pending=max(start, end), scanned_to=max(start, end))
    if end <= start:
        return page
    for order_id: uint256 in range(start, end, bound=MAX_SCAN):
        if self._orders[order_id][0] == 0:
            continue
        if page.first_pending == end:
            page.first_pending = order_id
        outcome: uint8 = 0
        reason: String[128] = ""
        size: int256 = 0
        outcome, reason, size = self._readiness(self._load(order_id))
        if outcome != PENDING:
            page.ids.append(order_id)
            if len(page.ids) == MAX_PAGE:
                page.scanned_to = order_id + 1
                break
    return page


# ---------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------


@internal
@view
def _check_owner():
    assert msg.sender == ownable.owner, "order_book: caller is not the owner"


@internal
@view
def _load(order_id: uint256) -> Order:
    words: uint256[3] = self._orders[order_id]
    raw_size: uint256 = words[1] & MASK_96
    size: int256 = convert(raw_size, int256)
    if raw_size >= 2**95:
        size -= 2**96
    flags: uint256 = (words[0] >> 168) & 255
    return Order(
        id=order_id,
        owner=convert(words[0] & MASK_160, address),
        subaccount=words[1] >> 224,
        market_id=(words[0] >> 160) & 255,
        kind=convert(flags & 3, uint8),
        reduce_only=flags & FLAG_REDUCE_ONLY != 0,
        post_only=flags & FLAG_POST_ONLY != 0,
        trigger_on_mark=flags & FLAG_TRIGGER_ON_MARK != 0,
        size_delta=size,
        acceptable_price=(words[1] >> 96) & MASK_128,
        trigger_price=words[2] & MASK_128,
        commit_time=(words[0] >> 176) & MASK_40,
        expiry=words[0] >> 216,
        keeper_fee=words[2] >> 128,
    )


@internal
@view
def _readiness(order: Order) -> (uint8, String[128], int256):
    """
    @dev What executing the order now does, before the engine: EXPIRED,
         CANCELLED (nothing to reduce), PENDING (with the reason) or EXECUTED
         (send it, with the size to trade). Checks run in this order: expiry,
         reduce-only, price newer than the commit and fresh, trigger, limit,
         post-only. Calls that can revert are made with raw_call, so one bad
         market only leaves its orders pending.
    """
    if block.timestamp >= order.expiry:
        return EXPIRED, "order_book: order expired", 0
    size: int256 = order.size_delta
    if order.reduce_only:
        position: int256 = (staticcall engine.open_positions(order.owner, order.subaccount, order.market_id)).size
        if position == 0 or (position > 0) == (size > 0):
            return CANCELLED, "order_book: nothing to reduce", 0
        if abs(size) > abs(position):
            size = -position

    settings: uint256 = self._settings[order.market_id]
    oracle: address = empty(address)
    scale: uint256 = 0
    oracle, scale = staticcall engine.price_feed(order.market_id)
    ok: bool = False
    response: Bytes[160] = b""
    ok, response = raw_call(oracle, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False)
    if not ok or len(response) != 160:
        return PENDING, "order_book: price not usable", size
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in = abi_decode(response, (uint80, int256, uint256, uint256, uint80))
    if updated_at < order.commit_time + (settings & MASK_32):
        return PENDING, "order_book: price not newer than order", size
    if updated_at > block.timestamp or block.timestamp - updated_at > (settings >> 32) & MASK_32 or answer <= 0:
        return PENDING, "order_book: price too old", size

    if order.kind == KIND_STOP_LOSS or order.kind == KIND_TAKE_PROFIT:
        price: uint256 = convert(answer, uint256) * scale
        if order.trigger_on_mark:
            price = self._engine_view(abi_encode(order.market_id, method_id=method_id("mark_price(uint256)")))
            if price == 0:
                return PENDING, "order_book: price not usable", size
        # a stop-loss sells a long when the price falls to the trigger, and buys back
        # a short when it rises to it; a take-profit the other way round
        falls_to_trigger: bool = (order.kind == KIND_STOP_LOSS) == (size < 0)
        if falls_to_trigger:
            if price > order.trigger_price:
                return PENDING, "order_book: trigger not reached", size
        elif price < order.trigger_price:
            return PENDING, "order_book: trigger not reached", size

    fill: uint256 = self._engine_view(abi_encode(order.market_id, size, method_id=method_id("fill_price(uint256,int256)")))
    if fill == 0:
        return PENDING, "order_book: price not usable", size
    if (size > 0 and fill > order.acceptable_price) or (size < 0 and fill < order.acceptable_price):
        return PENDING, "order_book: fill price beyond limit", size

    if order.post_only:
        # signed, and reads no price, so it cannot revert
        skew: int256 = staticcall engine.skew(order.market_id)
        if not ((skew > 0 and size < 0 and -size <= skew) or (skew < 0 and size > 0 and size <= -skew)):
            return PENDING, "order_book: post-only order would take", size
    return EXECUTED, "", size


@internal
@view
def _engine_view(data: Bytes[100]) -> uint256:
    """
    @dev A one-word engine view, 0 when it reverts (an unusable price).
    """
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(engine.address, data, max_outsize=32, is_static_call=True, revert_on_failure=False)
    if not ok or len(response) != 32:
        return 0
    return convert(response, uint256)


@internal
def _execute(order_id: uint256) -> (uint8, String[128], uint256):
    """
    @dev One execution attempt; returns the outcome, its reason and the fee earned.
    """
    order: Order = self._load(order_id)
    if order.owner == empty(address):
        return MISSING, "order_book: no such order", 0
    outcome: uint8 = 0
    reason: String[128] = ""
    size: int256 = 0
    outcome, reason, size = self._readiness(order)
    if outcome == PENDING:
        return outcome, reason, 0
    words: uint256[3] = self._orders[order_id]
    self._remove(order_id, order)
    if outcome == EXECUTED:
        assert msg.gas >= MIN_EXECUTION_GAS, "order_book: gas too low to execute"
        ok: bool = False
        response: Bytes[196] = b""
        ok, response = raw_call(
            engine.address,
            abi_encode(order.market_id, size, order.acceptable_price, order.subaccount, order.owner, method_id=MODIFY_POSITION),
            max_outsize=196,
            revert_on_failure=False,
        )
        if ok:
            log OrderExecuted(order_id=order_id, owner=order.owner, executor=msg.sender, size_delta=size, keeper_fee=order.keeper_fee)
            return EXECUTED, "", order.keeper_fee
        reason = self._revert_reason(response)
        if self._is_capacity_refusal(reason):
            # the market is full now, not the order wrong: it waits, and no executor can
            # fill the cap first to collect its fee
            self._orders[order_id] = words
            if order.kind == KIND_MARKET and not order.reduce_only:
                self.pending_market_orders[order.owner][order.subaccount] += 1
            return PENDING, reason, 0
        outcome = CANCELLED
    log OrderCancelled(order_id=order_id, owner=order.owner, caller=msg.sender, fee_to=msg.sender, keeper_fee=order.keeper_fee, outcome=outcome, reason=reason)
    return outcome, reason, order.keeper_fee


@internal
@pure
def _revert_reason(response: Bytes[196]) -> String[128]:
    """
    @dev The string of an Error(string) revert, or a generic reason for any other.
    """
    if len(response) >= 68 and convert(slice(response, 0, 4), bytes4) == ERROR_SELECTOR:
        length: uint256 = convert(slice(response, 36, 32), uint256)
        if length <= 128 and 68 + length <= len(response):
            return convert(slice(response, 68, length), String[128])
    return "order_book: engine refused the trade"


@internal
@pure
def _is_capacity_refusal(reason: String[128]) -> bool:
    return reason == "engine: open interest cap" or reason == "engine: open interest above vault capacity"


@internal
def _remove(order_id: uint256, order: Order):
    self._orders[order_id] = empty(uint256[3])
    if order.kind == KIND_MARKET and not order.reduce_only:
        self.pending_market_orders[order.owner][order.subaccount] -= 1


@internal
def _pay(receiver: address, amount: uint256):
    if amount != 0:
        assert extcall collateral_token.transfer(receiver, amount, default_return_value=True), "order_book: transfer failed"
