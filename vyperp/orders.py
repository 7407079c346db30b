"""Orders on the OrderBook in human units: deploy helper, order types, and a client the SDK wraps.

A trader commits an order (market, limit, stop-loss, take-profit) with a keeper fee in the
collateral token. A market order fills at the first oracle round published after the block of its
commit (rule S8), whoever executes it and whenever; a resting order is armed once its trigger holds
and then fills at the first round after its arming. The executor earns the fee only for a fill;
an order that ends any other way refunds it to its owner (docs/orders.md has the rules). Sizes and prices cross this module's surface as Decimals and
keeper fees as Decimals of the token; the contract's 18-decimal integers and token units stay
inside. Listing reads one page of ids per call (``OrderBook.orders_of``), never one call per order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from vyperp.errors import VyperpError
from vyperp.units import WAD, from_wad, to_token_units, to_wad

# OrderBook.MAX_SCAN: ids one view call scans.
SCAN_PAGE = 1000
# A buy accepts fills up to 0.5 % above the quote, a sell down to 0.5 % below it.
DEFAULT_SLIPPAGE = Decimal("0.005")
DEFAULT_MARKET_ORDER_LIFETIME = 600  # seconds; the contract allows up to 3600
DEFAULT_RESTING_LIFETIME = 7 * 86400  # limit, stop-loss, take-profit


class OrderError(VyperpError):
    """An order the client refuses before it reaches the chain."""


class OrderKind(IntEnum):
    MARKET = 0
    LIMIT = 1
    STOP_LOSS = 2
    TAKE_PROFIT = 3

    @classmethod
    def parse(cls, name: str | OrderKind) -> OrderKind:
        if isinstance(name, OrderKind):
            return name
        try:
            return cls[name.upper().replace("-", "_")]
        except KeyError:
            raise OrderError(f"unknown order kind {name!r}") from None

    @property
    def triggered(self) -> bool:
        return self in (OrderKind.STOP_LOSS, OrderKind.TAKE_PROFIT)


class Outcome(IntEnum):
    """OrderBook's outcome codes of one execution attempt."""

    EXECUTED = 1  # filled at its fill round; fee to the executor
    CANCELLED = 2  # operator revoked, nothing to reduce, the engine refused it for the account; fee refunded
    EXPIRED = 3  # at or after its expiry, or its fill round left the window; fee refunded
    PENDING = 4  # not executable now (or refused for pause, halt, breaker, capacity); stays
    MISSING = 5  # no such order
    ARMED = 6  # a resting order whose trigger held: it fills at the first round after this block


# Engine refusals that leave an order pending (OrderBook.PENDING_REFUSALS), and the prefix of
# the price refusals that do too.
PENDING_REFUSALS = (
    "engine: paused",
    "engine: market is reduce-only",
    "engine: open interest cap",
    "engine: open interest above vault capacity",
    "engine: fill price above limit",
    "engine: fill price below limit",
)
PENDING_REFUSAL_PREFIX = "pricing: "


@dataclass(frozen=True)
class OrderSettings:
    """A market's execution settings on the OrderBook."""

    max_age: int = 60  # the observation window: seconds an order's fill round stays usable
    min_keeper_fee: Decimal = Decimal("1")  # collateral tokens


@dataclass(frozen=True)
class Order:
    """A pending order, in human units."""

    id: int
    owner: str
    subaccount: int
    market_id: int
    kind: OrderKind
    size_delta: Decimal  # > 0 buys
    acceptable_price: Decimal  # a buy's ceiling, a sell's floor; the limit of a limit order
    trigger_price: Decimal | None  # stop-loss and take-profit only
    reduce_only: bool
    post_only: bool
    trigger_on_mark: bool
    commit_time: int  # the commit's block time; the arming's once armed
    expiry: int
    keeper_fee: Decimal
    armed: bool = False
    committer: str | None = None  # the operator that committed it (None: the owner)


def deploy_order_book(
    protocol,
    admin,
    *,
    project=None,
    settings: Mapping[int, OrderSettings] | None = None,
):
    """Deploys an OrderBook over ``protocol.engine``, owned by ``admin``, connects it as the
    engine's order book and enables orders in the given markets (default: every listed market
    with ``OrderSettings()``). Returns the contract."""
    if project is None:
        from ape import project
    book = project.OrderBook.deploy(protocol.engine, sender=admin)
    protocol.admin.set_order_book(book, sender=admin)
    if settings is None:
        settings = {market_id: OrderSettings() for market_id in range(protocol.engine.market_count())}
    decimals = int(protocol.token.decimals())
    for market_id, market_settings in settings.items():
        configure_market(book, admin, market_id, market_settings, decimals)
    return book


def configure_market(book, admin, market_id: int, settings: OrderSettings, token_decimals: int):
    """Enables (or changes) orders in one market."""
    return book.set_market_settings(
        market_id,
        settings.max_age,
        to_token_units(settings.min_keeper_fee, token_decimals),
        sender=admin,
    )


def order_from_chain(raw, token_decimals: int) -> Order:
    """An ``OrderBook.Order`` struct in human units."""
    kind = OrderKind(raw.kind)
    return Order(
        id=int(raw.id),
        owner=str(raw.owner),
        subaccount=int(raw.subaccount),
        market_id=int(raw.market_id),
        kind=kind,
        size_delta=from_wad(raw.size_delta),
        acceptable_price=from_wad(raw.acceptable_price),
        trigger_price=from_wad(raw.trigger_price) if kind.triggered else None,
        reduce_only=bool(raw.reduce_only),
        post_only=bool(raw.post_only),
        trigger_on_mark=bool(raw.trigger_on_mark),
        commit_time=int(raw.commit_time),
        expiry=int(raw.expiry),
        keeper_fee=Decimal(int(raw.keeper_fee)).scaleb(-token_decimals),
        armed=bool(raw.armed),
        committer=None if int(str(raw.committer), 16) == 0 else str(raw.committer),
    )


class OrderBookClient:
    """Place, list and cancel orders on one OrderBook, in human units.

    ``engine`` quotes acceptable prices (``fill_price``); ``token`` is the collateral token the
    keeper fee is paid in. The SDK can hold one of these over its deployment's contracts.
    """

    def __init__(self, book, engine, token, *, chain=None):
        if chain is None:
            from ape import chain
        self.book = book
        self.engine = engine
        self.token = token
        self.chain = chain
        self.token_decimals = int(token.decimals())
        self.market_names: dict[int, str] = {}  # id -> name, for display; filled from a manifest

    def market_id(self, market: int | str) -> int:
        """A market id from its id or its manifest name."""
        if isinstance(market, int) or str(market).isdigit():
            return int(market)
        for market_id, name in self.market_names.items():
            if name == market:
                return market_id
        raise OrderError(f"unknown market {market!r}")

    def settings(self, market_id: int) -> OrderSettings:
        raw = self.book.market_settings(market_id)
        return OrderSettings(
            max_age=int(raw.max_age),
            min_keeper_fee=Decimal(int(raw.min_keeper_fee)).scaleb(-self.token_decimals),
        )

    def place(
        self,
        market_id: int,
        kind: OrderKind | str,
        size_delta: Decimal | int | str,
        sender,
        *,
        limit_price: Decimal | int | str | None = None,
        trigger_price: Decimal | int | str | None = None,
        slippage: Decimal | str = DEFAULT_SLIPPAGE,
        keeper_fee: Decimal | int | str | None = None,
        lifetime: int | None = None,
        reduce_only: bool = False,
        post_only: bool = False,
        trigger_on_mark: bool = False,
        subaccount: int = 0,
        owner=None,
    ) -> int:
        """Commits an order and returns its id; approves the keeper fee when needed.

        Acceptable price: a limit order's is ``limit_price``; a market order's is the current
        quote moved by ``slippage`` against the trader; a stop-loss or take-profit's is its
        trigger price moved by ``slippage`` (or ``limit_price`` when given). The keeper fee
        defaults to the market's minimum, the lifetime to 10 minutes for market orders and 7 days
        otherwise.
        """
        kind = OrderKind.parse(kind)
        delta = to_wad(size_delta)
        if delta == 0:
            raise OrderError("an order needs a non-zero size")
        tolerance = to_wad(slippage)
        if not 0 <= tolerance < WAD:
            raise OrderError("slippage must be in [0, 1)")
        trigger = 0
        if kind.triggered:
            if trigger_price is None:
                raise OrderError(f"a {kind.name.lower()} order needs a trigger price")
            trigger = to_wad(trigger_price)
        elif trigger_price is not None:
            raise OrderError("only stop-loss and take-profit orders take a trigger price")
        if kind is OrderKind.LIMIT:
            if limit_price is None:
                raise OrderError("a limit order needs a limit price")
            acceptable = to_wad(limit_price)
        elif limit_price is not None:
            acceptable = to_wad(limit_price)
        else:
            reference = trigger if kind.triggered else self.engine.fill_price(market_id, delta)
            acceptable = _move_against(reference, delta, tolerance)
        settings = self.settings(market_id)
        if settings.max_age == 0:
            raise OrderError(f"market {market_id} takes no orders")
        fee = to_token_units(
            settings.min_keeper_fee if keeper_fee is None else keeper_fee, self.token_decimals
        )
        if lifetime is None:
            lifetime = (
                DEFAULT_MARKET_ORDER_LIFETIME
                if kind is OrderKind.MARKET
                else DEFAULT_RESTING_LIFETIME
            )
        expiry = int(self.chain.pending_timestamp) + lifetime
        # nothing is signed before the wallet is known to cover the fee; each transaction is
        # simulated (eth_call) first, the commit after the approve it needs
        if fee and self.token.balanceOf(str(sender)) < fee:
            raise OrderError(
                f"{sender} holds less than the keeper fee "
                f"{Decimal(fee).scaleb(-self.token_decimals).normalize():f} of the collateral token"
            )
        if fee and self.token.allowance(sender, self.book) < fee:
            _send(self.token.approve, self.book, fee, sender=sender)
        receipt = _send(
            self.book.commit_order,
            market_id,
            int(kind),
            delta,
            acceptable,
            trigger,
            expiry,
            fee,
            reduce_only,
            post_only,
            trigger_on_mark,
            subaccount,
            str(owner or sender),
            sender=sender,
        )
        return int(receipt.events.filter(self.book.OrderCommitted)[0].order_id)

    def pending(self, owner, *, start: int = 0) -> list[Order]:
        """Every pending order of ``owner`` (all subaccounts), one view call per 1,000 ids."""
        owner = str(owner)
        end = int(self.book.next_order_id())
        found = []
        cursor = start
        while cursor < end:
            page = self.book.orders_of(owner, cursor, SCAN_PAGE)
            found.extend(order_from_chain(raw, self.token_decimals) for raw in page)
            # a full page may stop before the end of its scan: resume after its last order
            cursor = int(page[-1].id) + 1 if len(page) == 100 else cursor + SCAN_PAGE
        return found

    def order(self, order_id: int) -> Order | None:
        raw = self.book.order(order_id)
        if int(str(raw.owner), 16) == 0:
            return None
        return order_from_chain(raw, self.token_decimals)

    def cancel(self, order_id: int, sender):
        """Cancels an order, its fee back to the owner: the owner's resting order that is neither
        armed nor executable now, or anyone's order that is over (expired, fill round out of the
        window, operator revoked, nothing to reduce)."""
        return _send(self.book.cancel, order_id, sender=sender)


def connect_client(project, network_choice: str, root, *, order_book: str | None = None) -> OrderBookClient:
    """A client over the manifest of a network: the order book is ``order_book`` or the
    manifest's (the deploy records it)."""
    from vyperp.manifest import Deployment, ManifestError

    deployment = Deployment.load(network_choice, root)
    order_book = order_book or deployment.order_book
    if not order_book:
        raise ManifestError(f"{Deployment.path_for(network_choice, root)} names no order_book; pass its address")
    contracts = deployment.contracts(project)
    client = OrderBookClient(project.OrderBook.at(order_book), contracts.engine, contracts.token)
    client.market_names = {entry.id: name for name, entry in deployment.markets.items()}
    return client


def _send(method, *args, sender):
    """Sends a transaction after simulating it with ``eth_call``: a revert raises
    ContractLogicError with the contract's reason and nothing is sent."""
    method.call(*args, sender=sender, skip_trace=True)  # no call trace printed on a revert
    return method(*args, sender=sender)


def _move_against(price: int, delta: int, tolerance: int) -> int:
    """A buy's ceiling (rounded up) or a sell's floor (rounded down) ``tolerance`` from ``price``."""
    if delta > 0:
        return -(-price * (WAD + tolerance) // WAD)
    return price * (WAD - tolerance) // WAD
