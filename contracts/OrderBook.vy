# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title OrderBook
@notice Two-step orders for the vyperp Engine (rule S8). A trader commits an
        order (market, limit, stop-loss or take-profit) and deposits a keeper
        fee in the collateral token. A market order fills at the first oracle
        round published strictly after the block of its commitment, at that
        round's index, whoever executes it and whenever; if that round leaves
        the market's observation window (`max_age`) first, the order expires
        and its fee goes back to the owner. A resting order (limit, stop-loss,
        take-profit) is armed by anyone once its trigger holds at the latest
        round; from then on it is a market order committed in the arming
        block. The executor earns the fee only when the order fills.
        docs/orders.md has the rules.
@custom:security The engine lets this contract trade for any account, so
                 every order is authorised at commit (owner or one of its
                 engine operators, whose revocation ends the order) and can
                 only trade what was committed. Orders are deleted before the
                 engine is called (checks, effects, interactions); every
                 state-changing entry point holds the lock; only the
                 collateral token moves, never ETH. A batch never reverts for
                 one order: engine reverts are caught and reported, and
                 execution refuses to start an engine call with less than
                 MIN_EXECUTION_GAS left, so a keeper cannot make a valid order
                 fail by starving it of gas. Refusals that say nothing about
                 the order (pause, halt, breaker, capacity, a price the engine
                 cannot use) leave it pending, never cancelled for a fee.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from snekmate.auth import ownable
from snekmate.utils import pausable

from .interfaces import IEngine
from .interfaces import IOrderBook
from .modules import refusals


implements: IOrderBook
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
# @dev Removed: nothing to reduce, operator revoked, the engine refused the trade for the
#      account's own reason, or cancelled by its owner; fee refunded to the owner.
CANCELLED: public(constant(uint8)) = 2
# @dev Removed because it expired or its fill round left the window; fee refunded to the owner.
EXPIRED: public(constant(uint8)) = 3
# @dev Not executable now (no round after it yet, trigger, limit, post-only, a refusal that
#      says nothing about the order); left pending.
PENDING: public(constant(uint8)) = 4
# @dev No such order (never committed, or already executed or cancelled).
MISSING: public(constant(uint8)) = 5
# @dev A resting order whose trigger held at the latest round: it now fills at the first
#      round after this block.
ARMED: public(constant(uint8)) = 6

# @dev Hard bounds of the observation window (inclusive), seconds.
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
# @dev Probes of the fill-round search: a gallop back from the latest round, then a bisection
#      (each ends within the rounds of one observation window, far below this bound).
MAX_PROBES: constant(uint256) = 80

# @dev Engine refusals that say nothing about the order (S8): it stays pending. Pause,
#      breaker (reduce-only), open-interest and vault-capacity caps, and the engine's own
#      limit check (the book's estimate of the fill at an older round can differ from the
#      engine's by rounding). Any "pricing: " refusal also leaves it pending: a stale or
#      unusable price, and the outlier halt of S4 ("pricing: market halted").
PENDING_REFUSALS: constant(bytes32[6]) = [
    keccak256(refusals.PAUSED),
    keccak256(refusals.REDUCE_ONLY),
    keccak256(refusals.OPEN_INTEREST_CAP),
    keccak256(refusals.VAULT_CAPACITY),
    keccak256(refusals.FILL_ABOVE_LIMIT),
    keccak256(refusals.FILL_BELOW_LIMIT),
]
PRICING_PREFIX: constant(String[9]) = "pricing: "

FLAG_REDUCE_ONLY: constant(uint256) = 4
FLAG_POST_ONLY: constant(uint256) = 8
FLAG_TRIGGER_ON_MARK: constant(uint256) = 16
# @dev A resting order armed at `commit_time`: it fills like a market order committed then.
FLAG_ARMED: constant(uint256) = 32
# @dev Committed by an operator: `_committers` holds who and the revocation epoch then.
FLAG_BY_OPERATOR: constant(uint256) = 64
MASK_32: constant(uint256) = 2**32 - 1
MASK_40: constant(uint256) = 2**40 - 1
MASK_96: constant(uint256) = 2**96 - 1
MASK_128: constant(uint256) = 2**128 - 1
MASK_160: constant(uint256) = 2**160 - 1
TIME_SHIFT: constant(uint256) = 176
MODIFY_POSITION: constant(bytes4) = method_id("modify_position(uint256,int256,uint256,uint256,address,uint256)", output_type=bytes4)
ERROR_SELECTOR: constant(bytes4) = 0x08c379a0

# @dev Results of the fill-round search.
ROUND_FOUND: constant(uint8) = 0
ROUND_NONE_YET: constant(uint8) = 1
ROUND_LEFT_WINDOW: constant(uint8) = 2
ROUND_UNUSABLE: constant(uint8) = 3


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
    # the commit's block time; once armed, the arming's
    commit_time: uint256
    expiry: uint256
    keeper_fee: uint256
    armed: bool
    # the operator that committed it, or empty when the owner did
    committer: address


struct MarketSettings:
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
    committer: address


event OrderArmed:
    order_id: indexed(uint256)
    owner: indexed(address)
    executor: indexed(address)
    armed_at: uint256


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
#          | commit or arming time (176-215) | expiry (216-255)
#      [1] size delta, int96 two's complement (0-95) | acceptable price (96-223) | subaccount (224-255)
#      [2] trigger price (0-127) | keeper fee in token units (128-255)
_orders: HashMap[uint256, uint256[3]]
# @dev Orders committed by an operator only: the operator (bits 0-159) and the owner's
#      revocation epoch for it at commit (160-255); a fourth word the owner's own orders never pay.
_committers: HashMap[uint256, uint256]
# @dev How often each owner revoked each operator (the engine reports every revocation):
#      an order whose committer's epoch moved on is cancelled, so re-approval revives nothing.
operator_epoch: public(HashMap[address, HashMap[address, uint256]])
# @dev Pending orders with a fixed fill round that may add risk (market orders from their
#      commit, resting orders from their arming), by owner and subaccount: the engine refuses
#      their withdrawals meanwhile, so a trader who sees the round's price cannot back out
#      by withdrawing the margin the order needs.
pending_market_orders: public(HashMap[address, HashMap[uint256, uint256]])
# @dev Packed per-market settings: max_age (bits 0-31) | min_keeper_fee (32-159);
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
def set_market_settings(market_id: uint256, max_age: uint256, min_keeper_fee: uint256):
    """
    @notice Enables orders in a market, or changes its execution settings.
    @dev Applies to pending orders too: the window is checked at execution.
    @param market_id An engine market.
    @param max_age The observation window: seconds an order's fill round stays usable, in [1, 3600].
    @param min_keeper_fee Smallest keeper fee an order may carry (token units), at most max_keeper_fee.
    """
    self._check_owner()
    assert market_id < staticcall engine.market_count(), "order_book: unknown market"
    assert max_age >= MAX_AGE_BOUNDS[0] and max_age <= MAX_AGE_BOUNDS[1], "order_book: max_age out of bounds"
    assert min_keeper_fee <= max_keeper_fee, "order_book: min_keeper_fee out of bounds"
    self._settings[market_id] = max_age | (min_keeper_fee << 32)
    log MarketSettingsSet(market_id=market_id, max_age=max_age, min_keeper_fee=min_keeper_fee)


@external
def pause():
    """
    @notice Stops commits, arming and fills; pending orders wait (and may expire, refunded).
    """
    self._check_owner()
    pausable._pause()


@external
def unpause():
    """
    @notice Accepts commits and executes again.
    """
    self._check_owner()
    pausable._unpause()


# ---------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------


@external
def operator_revoked(owner: address, operator: address):
    """
    @notice Called by the engine when `owner` revokes `operator`: every pending order that
            operator committed for the owner is cancelled when next touched (fee refunded).
    @param owner The account owner.
    @param operator The revoked operator.
    """
    assert msg.sender == engine.address, "order_book: caller is not the engine"
    self.operator_epoch[owner][operator] += 1


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
    @param keeper_fee Collateral token units paid to whoever fills the order;
           refunded to the owner if it ends any other way.
    @param reduce_only Only reduce the position (always on for stop-loss and take-profit).
    @param post_only Limit orders only: execute only where the whole trade
           reduces the skew, so it pays the maker fee.
    @param trigger_on_mark Stop-loss and take-profit: trigger on the mark
           price instead of the index price.
    @param subaccount Subaccount id, below 2^32.
    @param owner Account owner (default: the caller); its engine operators may
           commit for it, and revoking the operator cancels the order.
    @return The order id.
    """
    assert not pausable.paused, "order_book: paused"
    flags: uint256 = convert(kind, uint256)
    if msg.sender != owner:
        assert staticcall engine.is_operator(owner, msg.sender), "order_book: not owner or operator"
        flags |= FLAG_BY_OPERATOR
    settings: uint256 = self._settings[market_id]
    assert settings != 0, "order_book: market not enabled"
    assert size_delta != 0, "order_book: zero size"
    assert abs(size_delta) < 2**95, "order_book: size too large"
    assert acceptable_price <= MASK_128 and trigger_price <= MASK_128, "order_book: price too large"
    assert subaccount <= MASK_32, "order_book: subaccount too large"
    assert kind <= KIND_TAKE_PROFIT, "order_book: unknown order kind"
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
    # a round must be published after this block, then executed before the expiry
    assert expiry > block.timestamp + 1, "order_book: expires before it can execute"
    lifetime: uint256 = MAX_ORDER_LIFETIME
    if kind == KIND_MARKET:
        lifetime = MAX_MARKET_ORDER_LIFETIME
    assert expiry <= block.timestamp + lifetime, "order_book: expiry too far"
    assert keeper_fee >= settings >> 32, "order_book: keeper fee below minimum"
    assert keeper_fee <= max_keeper_fee, "order_book: keeper fee above maximum"

    order_id: uint256 = self.next_order_id
    self.next_order_id = order_id + 1
    if kind == KIND_MARKET and not reduce_only:
        self.pending_market_orders[owner][subaccount] += 1
    self._orders[order_id] = [
        convert(owner, uint256) | (market_id << 160) | (flags << 168) | (block.timestamp << TIME_SHIFT) | (expiry << 216),
        (convert(convert(size_delta, bytes32), uint256) & MASK_96) | (acceptable_price << 96) | (subaccount << 224),
        trigger_price | (keeper_fee << 128),
    ]
    if flags & FLAG_BY_OPERATOR != 0:
        self._committers[order_id] = convert(msg.sender, uint256) | (self.operator_epoch[owner][msg.sender] << 160)
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
        committer=msg.sender,
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
    @notice Removes an order and refunds its fee to the owner. Anyone may remove
            one that is over (expired, fill round out of the window, operator
            revoked, nothing to reduce). Otherwise only the owner or an
            operator may cancel, and only a resting order that is neither
            armed nor executable now: a market order or an armed one has a
            fixed fill round, and cancelling it after seeing that round's
            price would be a free option.
    @param order_id The order.
    """
    order: Order = self._load(order_id)
    assert order.owner != empty(address), "order_book: no such order"
    outcome: uint8 = 0
    reason: String[128] = ""
    size: int256 = 0
    fill_index: uint256 = 0
    fixed: bool = False
    outcome, reason, size, fill_index, fixed = self._readiness(order)
    if outcome != EXPIRED and outcome != CANCELLED:
        assert msg.sender == order.owner or staticcall engine.is_operator(order.owner, msg.sender), "order_book: not owner or operator"
        assert order.kind != KIND_MARKET, "order_book: market orders run until expiry"
        assert outcome == PENDING and not fixed, "order_book: order is executable"
        outcome = CANCELLED
        reason = "order_book: cancelled by owner"
    self._remove(order_id, order)
    log OrderCancelled(order_id=order_id, owner=order.owner, caller=msg.sender, fee_to=order.owner, keeper_fee=order.keeper_fee, outcome=outcome, reason=reason)
    self._pay(order.owner, order.keeper_fee)


# ---------------------------------------------------------------------------
# Keepers
# ---------------------------------------------------------------------------


@external
@nonreentrant
def execute(order_id: uint256) -> uint8:
    """
    @notice Executes one order at its fill round, arms a resting order whose
            trigger holds, or removes one that is over (see execute_many);
            reverts with the reason when none of these applies now.
    @param order_id The order.
    @return EXECUTED, ARMED, CANCELLED or EXPIRED.
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
    @notice For each order: fills it at its fill round (OrderExecuted; the fee
            to the caller), arms a resting order whose trigger holds at the
            latest round (OrderArmed), removes one that is over (OrderCancelled
            with the reason; the fee back to its owner), or leaves it pending
            (OrderSkipped). Never reverts for one order.
    @dev Reverts as a whole only if less than MIN_EXECUTION_GAS is left before
         an engine call: send enough gas.
    @param order_ids Orders to try, in order.
    @return The outcome of each (EXECUTED, CANCELLED, EXPIRED, PENDING, MISSING, ARMED).
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
    @return max_age (seconds) and min_keeper_fee (token units).
    """
    packed: uint256 = self._settings[market_id]
    return MarketSettings(max_age=packed & MASK_32, min_keeper_fee=packed >> 32)


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
    outcome, reason = self._status(order)
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
            now (fill, arm, or remove with the fee refunded), for keepers; at
            most MAX_PAGE of them.
    @dev The engine's own checks run only at execution: an order listed here
         can still be refused there (pending, or cancelled with its fee refunded).
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
        outcome, reason = self._status(self._load(order_id))
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
    committer: address = empty(address)
    if flags & FLAG_BY_OPERATOR != 0:
        committer = convert(self._committers[order_id] & MASK_160, address)
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
        commit_time=(words[0] >> TIME_SHIFT) & MASK_40,
        expiry=words[0] >> 216,
        keeper_fee=words[2] >> 128,
        armed=flags & FLAG_ARMED != 0,
        committer=committer,
    )


@internal
@view
def _status(order: Order) -> (uint8, String[128]):
    """
    @dev _readiness as _execute applies it: a paused book fills and arms nothing.
    """
    outcome: uint8 = 0
    reason: String[128] = ""
    size: int256 = 0
    fill_index: uint256 = 0
    fixed: bool = False
    outcome, reason, size, fill_index, fixed = self._readiness(order)
    if pausable.paused and (outcome == EXECUTED or outcome == ARMED):
        return PENDING, "order_book: paused"
    return outcome, reason


@internal
@view
def _readiness(order: Order) -> (uint8, String[128], int256, uint256, bool):
    """
    @dev What executing the order now does, before the engine: EXPIRED,
         CANCELLED (operator revoked, nothing to reduce), PENDING (with the
         reason), ARMED, or EXECUTED with the size to trade and the index of
         its fill round. The last value is true while the order has a fill
         round in the window (a market order, or an armed one whose round has
         not left it). An armed order whose round left the window is judged as
         a resting order again. Calls that can revert are made with raw_call,
         so one bad market only leaves its orders pending.
    """
    if block.timestamp >= order.expiry:
        return EXPIRED, "order_book: order expired", 0, 0, False
    if order.committer != empty(address) and self._committers[order.id] >> 160 != self.operator_epoch[order.owner][order.committer]:
        return CANCELLED, "order_book: operator revoked", 0, 0, False
    size: int256 = order.size_delta
    if order.reduce_only:
        position: int256 = (staticcall engine.open_positions(order.owner, order.subaccount, order.market_id)).size
        if position == 0 or (position > 0) == (size > 0):
            return CANCELLED, "order_book: nothing to reduce", 0, 0, False
        if abs(size) > abs(position):
            size = -position

    max_age: uint256 = self._settings[order.market_id] & MASK_32
    cutoff: uint256 = 0
    if block.timestamp > max_age:
        cutoff = block.timestamp - max_age
    oracle: address = empty(address)
    scale: uint256 = 0
    oracle, scale = staticcall engine.price_feed(order.market_id)
    found: uint8 = 0
    answer: uint256 = 0
    latest_answer: uint256 = 0
    if order.kind == KIND_MARKET or order.armed:
        found, answer, latest_answer = self._fill_round(oracle, order.commit_time, cutoff)
        if found == ROUND_FOUND:
            return self._fill_check(order, size, answer, latest_answer, scale)
        if found == ROUND_LEFT_WINDOW and order.kind == KIND_MARKET:
            return EXPIRED, "order_book: fill round left the window", 0, 0, False
        if found != ROUND_LEFT_WINDOW:
            return PENDING, self._round_reason(found), size, 0, True
        # an armed order that missed its round rests again: judged below like any resting order

    # a resting order arms on the latest round: published after it, inside the window
    found, answer = self._latest_round(oracle, order.commit_time, cutoff)
    if found != ROUND_FOUND:
        return PENDING, self._round_reason(found), size, 0, False
    if order.kind == KIND_STOP_LOSS or order.kind == KIND_TAKE_PROFIT:
        price: uint256 = answer * scale
        if order.trigger_on_mark:
            price = self._engine_view(abi_encode(order.market_id, method_id=method_id("mark_price(uint256)")))
            if price == 0:
                return PENDING, "order_book: price not usable", size, 0, False
        # a stop-loss sells a long when the price falls to the trigger, and buys back
        # a short when it rises to it; a take-profit the other way round
        falls_to_trigger: bool = (order.kind == KIND_STOP_LOSS) == (size < 0)
        if falls_to_trigger:
            if price > order.trigger_price:
                return PENDING, "order_book: trigger not reached", size, 0, False
        elif price < order.trigger_price:
            return PENDING, "order_book: trigger not reached", size, 0, False
    else:
        # a limit order arms when its fill at the latest round is within its limit
        fill: uint256 = self._engine_view(abi_encode(order.market_id, size, method_id=method_id("fill_price(uint256,int256)")))
        if fill == 0:
            return PENDING, "order_book: price not usable", size, 0, False
        if (size > 0 and fill > order.acceptable_price) or (size < 0 and fill < order.acceptable_price):
            return PENDING, "order_book: fill price beyond limit", size, 0, False
        if order.post_only and not self._reduces_skew(order.market_id, size):
            return PENDING, "order_book: post-only order would take", size, 0, False
    return ARMED, "", size, 0, False


@internal
@view
def _fill_check(order: Order, size: int256, answer: uint256, latest_answer: uint256, scale: uint256) -> (uint8, String[128], int256, uint256, bool):
    """
    @dev An order whose fill round is in the window: EXECUTED unless its fill
         there is beyond its acceptable price or a post-only order would take.
         The fill at that round is the engine's fill now scaled by the round's
         answer over the latest (the skew impact is proportional to the index);
         the engine's exact check decides, and its refusal leaves it pending.
    """
    fill: uint256 = self._engine_view(abi_encode(order.market_id, size, method_id=method_id("fill_price(uint256,int256)")))
    if fill == 0:
        return PENDING, "order_book: price not usable", size, 0, True
    fill = fill * answer // latest_answer
    if (size > 0 and fill > order.acceptable_price) or (size < 0 and fill < order.acceptable_price):
        return PENDING, "order_book: fill price beyond limit", size, 0, True
    if order.post_only and not self._reduces_skew(order.market_id, size):
        return PENDING, "order_book: post-only order would take", size, 0, True
    return EXECUTED, "", size, answer * scale, True


@internal
@view
def _reduces_skew(market_id: uint256, size: int256) -> bool:
    """
    @dev True when the whole trade reduces abs(skew), so all of it pays the maker fee.
         The skew is signed and reads no price, so it cannot revert.
    """
    skew: int256 = staticcall engine.skew(market_id)
    return (skew > 0 and size < 0 and -size <= skew) or (skew < 0 and size > 0 and size <= -skew)


@internal
@pure
def _round_reason(found: uint8) -> String[128]:
    if found == ROUND_NONE_YET:
        return "order_book: no round after the order yet"
    if found == ROUND_LEFT_WINDOW:
        return "order_book: price too old"
    return "order_book: price not usable"


@internal
@view
def _round(oracle: address, round_id: uint256, latest: bool) -> (bool, uint256, uint256, uint256):
    """
    @dev A Chainlink round (the latest one, or round_id) as (usable, round id, answer,
         updated_at); unusable when the call reverts, returns the wrong shape, or the
         answer is not positive.
    """
    ok: bool = False
    response: Bytes[160] = b""
    if latest:
        ok, response = raw_call(oracle, method_id("latestRoundData()"), max_outsize=160, is_static_call=True, revert_on_failure=False)
    else:
        ok, response = raw_call(oracle, abi_encode(convert(round_id, uint80), method_id=method_id("getRoundData(uint80)")), max_outsize=160, is_static_call=True, revert_on_failure=False)
    if not ok or len(response) != 160:
        return False, 0, 0, 0
    rid: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint80 = 0
    rid, answer, started_at, updated_at, answered_in = abi_decode(response, (uint80, int256, uint256, uint256, uint80))
    if answer <= 0:
        return False, 0, 0, 0
    return True, convert(rid, uint256), convert(answer, uint256), updated_at


@internal
@view
def _latest_round(oracle: address, after: uint256, cutoff: uint256) -> (uint8, uint256):
    """
    @dev The latest round's answer, if it was published after `after` and not before `cutoff`.
    """
    ok: bool = False
    latest: uint256 = 0
    answer: uint256 = 0
    updated_at: uint256 = 0
    ok, latest, answer, updated_at = self._round(oracle, 0, True)
    if not ok or updated_at > block.timestamp:
        return ROUND_UNUSABLE, 0
    if updated_at <= after:
        return ROUND_NONE_YET, 0
    if updated_at < cutoff:
        return ROUND_LEFT_WINDOW, 0
    return ROUND_FOUND, answer


@internal
@view
def _fill_round(oracle: address, after: uint256, cutoff: uint256) -> (uint8, uint256, uint256):
    """
    @dev The first round published strictly after `after` (a block time): its
         answer and the latest answer, or why there is none to fill at
         (ROUND_NONE_YET: not published yet; ROUND_LEFT_WINDOW: published before
         `cutoff`; ROUND_UNUSABLE: a read failed). Round times never decrease,
         so it is the round r with updated_at(r) > after >= updated_at(r - 1),
         whoever asks and whenever. Found by galloping back from the latest
         round (1, 2, 4, ... rounds) until a round at or before `after`, then
         bisecting; every probe after `after` but before `cutoff` ends the search,
         so it reads O(log n) rounds, n the rounds published in the window.
         Round ids are consecutive (the devnet oracle; Chainlink within one
         phase): a missing id reads as unusable.
    """
    ok: bool = False
    hi: uint256 = 0
    hi_answer: uint256 = 0
    updated_at: uint256 = 0
    ok, hi, hi_answer, updated_at = self._round(oracle, 0, True)
    if not ok or updated_at > block.timestamp:
        return ROUND_UNUSABLE, 0, 0
    if updated_at <= after:
        return ROUND_NONE_YET, 0, 0
    if updated_at < cutoff:
        return ROUND_LEFT_WINDOW, 0, 0
    latest_answer: uint256 = hi_answer
    # lo: a round id at or before `after` (0: none, as if published at time 0)
    lo: uint256 = 0
    step: uint256 = 1
    answer: uint256 = 0
    rid: uint256 = 0
    for _: uint256 in range(MAX_PROBES):
        if step >= hi:
            break
        ok, rid, answer, updated_at = self._round(oracle, hi - step, False)
        if not ok:
            return ROUND_UNUSABLE, 0, 0
        if updated_at <= after:
            lo = hi - step
            break
        if updated_at < cutoff:
            return ROUND_LEFT_WINDOW, 0, 0
        hi -= step
        hi_answer = answer
        step *= 2
    for _: uint256 in range(MAX_PROBES):
        if hi - lo <= 1:
            break
        mid: uint256 = (lo + hi) // 2
        ok, rid, answer, updated_at = self._round(oracle, mid, False)
        if not ok:
            return ROUND_UNUSABLE, 0, 0
        if updated_at <= after:
            lo = mid
        elif updated_at < cutoff:
            return ROUND_LEFT_WINDOW, 0, 0
        else:
            hi = mid
            hi_answer = answer
    return ROUND_FOUND, hi_answer, latest_answer


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
    @dev One execution attempt; returns the outcome, its reason and the fee the executor earned.
    """
    order: Order = self._load(order_id)
    if order.owner == empty(address):
        return MISSING, "order_book: no such order", 0
    outcome: uint8 = 0
    reason: String[128] = ""
    size: int256 = 0
    fill_index: uint256 = 0
    fixed: bool = False
    outcome, reason, size, fill_index, fixed = self._readiness(order)
    if pausable.paused and (outcome == EXECUTED or outcome == ARMED):
        outcome = PENDING
        reason = "order_book: paused"
    adds_risk: bool = not order.reduce_only
    if order.armed and not fixed and outcome != EXPIRED and outcome != CANCELLED:
        # its round left the window: it rests again (re-armed below if its trigger holds)
        self._orders[order_id][0] ^= FLAG_ARMED << 168
        if adds_risk:
            self.pending_market_orders[order.owner][order.subaccount] -= 1
    if outcome == PENDING:
        return outcome, reason, 0
    if outcome == ARMED:
        word: uint256 = self._orders[order_id][0]
        self._orders[order_id][0] = (word & ~(MASK_40 << TIME_SHIFT)) | (FLAG_ARMED << 168) | (block.timestamp << TIME_SHIFT)
        if adds_risk:
            self.pending_market_orders[order.owner][order.subaccount] += 1
        log OrderArmed(order_id=order_id, owner=order.owner, executor=msg.sender, armed_at=block.timestamp)
        return outcome, reason, 0
    words: uint256[3] = self._orders[order_id]
    self._remove(order_id, order)
    if outcome == EXECUTED:
        assert msg.gas >= MIN_EXECUTION_GAS, "order_book: gas too low to execute"
        ok: bool = False
        response: Bytes[196] = b""
        ok, response = raw_call(
            engine.address,
            abi_encode(order.market_id, size, order.acceptable_price, order.subaccount, order.owner, fill_index, method_id=MODIFY_POSITION),
            max_outsize=196,
            revert_on_failure=False,
        )
        if ok:
            log OrderExecuted(order_id=order_id, owner=order.owner, executor=msg.sender, size_delta=size, keeper_fee=order.keeper_fee)
            return EXECUTED, "", order.keeper_fee
        reason = self._revert_reason(response)
        if self._is_pending_refusal(reason):
            # the market is paused, halted, reduce-only or full now, not the order wrong:
            # it waits at the same round, and no executor earns a fee for the refusal
            self._orders[order_id] = words
            if order.committer != empty(address):
                self._committers[order_id] = convert(order.committer, uint256) | (self.operator_epoch[order.owner][order.committer] << 160)
            if (order.kind == KIND_MARKET or order.armed) and adds_risk:
                self.pending_market_orders[order.owner][order.subaccount] += 1
            return PENDING, reason, 0
        outcome = CANCELLED
    log OrderCancelled(order_id=order_id, owner=order.owner, caller=msg.sender, fee_to=order.owner, keeper_fee=order.keeper_fee, outcome=outcome, reason=reason)
    self._pay(order.owner, order.keeper_fee)
    return outcome, reason, 0


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
def _is_pending_refusal(reason: String[128]) -> bool:
    """
    @dev True for an engine refusal that leaves the order pending: one of PENDING_REFUSALS,
         or any refusal of the pricing module (PRICING_PREFIX).
    """
    if len(reason) >= 9 and slice(reason, 0, 9) == PRICING_PREFIX:
        return True
    return keccak256(reason) in PENDING_REFUSALS


@internal
def _remove(order_id: uint256, order: Order):
    self._orders[order_id] = empty(uint256[3])
    if order.committer != empty(address):
        self._committers[order_id] = 0
    if (order.kind == KIND_MARKET or order.armed) and not order.reduce_only:
        self.pending_market_orders[order.owner][order.subaccount] -= 1


@internal
def _pay(receiver: address, amount: uint256):
    if amount != 0:
        assert extcall collateral_token.transfer(receiver, amount, default_return_value=True), "order_book: transfer failed"
