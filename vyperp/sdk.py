"""The vyperp SDK: one object over a deployment, in human units.

Amounts of collateral are Decimals of the token (dUSD), sizes are Decimals of the base asset,
prices and rates are Decimals; the contracts' token units and 18-decimal integers stay inside.
Reads that cover several markets or accounts go out as one batched call (Multicall3 through
``ape_ethereum.multicall``, or ``EngineLens.account_statuses``), never one call per item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any

from ape import chain
from ape.exceptions import ContractLogicError
from ape_ethereum import multicall

from vyperp.chain import ensure_multicall
from vyperp.errors import VyperpError
from vyperp.manifest import DEFAULT_ROOT, Deployment, MarketEntry, ProtocolContracts
from vyperp.network_deploy import MarketSpec, list_market
from vyperp.params import MarketConfig
from vyperp.units import EXACT, WAD, from_units, from_wad, to_wad

MAX_UINT256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20
INFINITY = Decimal("Infinity")
# A buy accepts fills up to 0.5 % above the quote, a sell down to 0.5 % below it.
DEFAULT_SLIPPAGE = Decimal("0.005")
# EngineLens.MAX_BATCH: accounts per account_statuses call.
STATUS_BATCH = 500
# The 18-decimal fields AccountState takes from Engine.account_health, and TradeResult from the
# PositionModified event, under the same names.
ACCOUNT_HEALTH_FIELDS = (
    "collateral", "unrealized_pnl", "funding_owed", "equity", "initial_margin",
    "maintenance_margin", "notional",
)
TRADE_EVENT_FIELDS = ("size_delta", "new_size", "fill_price", "fee", "realized_pnl", "funding_paid")


class Side(str, Enum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1


@dataclass(frozen=True)
class MarketState:
    """A market as the engine sees it now. Prices are None while the feed is unusable."""

    name: str
    id: int
    config: MarketConfig
    index_price: Decimal | None
    mark_price: Decimal | None
    skew: Decimal
    long_open_interest: Decimal
    short_open_interest: Decimal
    funding_rate: Decimal | None  # per 8 h, as if accrued now; > 0: longs pay
    funding_index: Decimal | None
    reduce_only: bool
    # S10: parameters queued for the market and when anyone may apply them (None: nothing queued)
    pending_config: MarketConfig | None = None
    pending_effective_at: int | None = None

    @property
    def pending_changes(self) -> dict[str, tuple[Any, Any]]:
        """Fields the queued parameters change: name -> (now, queued)."""
        if self.pending_config is None:
            return {}
        now, queued = vars(self.config), vars(self.pending_config)
        return {name: (now[name], queued[name]) for name in now if now[name] != queued[name]}

    @property
    def max_leverage(self) -> Decimal:
        return WAD / Decimal(self.config.imr)


# The engine views a MarketState is read from, one call each per market, in this order.
MARKET_VIEWS = (
    "params", "index_price", "mark_price", "long_open_interest", "short_open_interest",
    "current_funding", "is_reduce_only", "pending_market_params",
)


def add_market_reads(batch: multicall.Call, engine, market_id: int) -> None:
    """Adds one market's `MARKET_VIEWS` to a Multicall3 batch, which may carry other calls (the
    dashboard reads the vault in the same one, at one block)."""
    for view in MARKET_VIEWS:
        batch.add(getattr(engine, view), market_id)


def market_state(name: str, market_id: int, answers: Sequence) -> MarketState:
    """A market from the answers to its `MARKET_VIEWS`; a view that reverted (a stale or invalid
    price) answers None."""
    params, index, mark, long_oi, short_oi, funding, reduce_only, pending = answers
    queued = pending is not None and int(pending[1]) != 0
    return MarketState(
        name=name,
        id=market_id,
        config=MarketConfig.from_tuple(params),
        index_price=_wad_or_none(index),
        mark_price=_wad_or_none(mark),
        skew=from_wad(long_oi - short_oi),
        long_open_interest=from_wad(long_oi),
        short_open_interest=from_wad(short_oi),
        funding_index=None if funding is None else from_wad(funding[0]),
        funding_rate=None if funding is None else from_wad(funding[1]),
        reduce_only=bool(reduce_only),
        pending_config=MarketConfig.from_tuple(pending[0]) if queued else None,
        pending_effective_at=int(pending[1]) if queued else None,
    )


@dataclass(frozen=True)
class PositionState:
    """One open position of an account, valued at the mark."""

    market: str
    market_id: int
    size: Decimal  # > 0 long, < 0 short
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    unrealized_pnl: Decimal
    funding_owed: Decimal  # > 0: the position pays
    liquidation_price: Decimal | None  # None: no price liquidates it

    @property
    def side(self) -> Side:
        return Side.LONG if self.size > 0 else Side.SHORT


@dataclass(frozen=True)
class AccountState:
    """An account (owner, subaccount): collateral, margins and its positions."""

    owner: str
    subaccount: int
    collateral: Decimal
    unrealized_pnl: Decimal
    funding_owed: Decimal
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    notional: Decimal
    free_collateral: Decimal  # what a withdrawal can take now
    leverage: Decimal  # notional / equity; Infinity at or below zero equity
    health: Decimal  # equity / maintenance margin; Infinity without positions
    positions: tuple[PositionState, ...]

    @property
    def liquidatable(self) -> bool:
        return self.notional > 0 and self.equity < self.maintenance_margin


@dataclass(frozen=True)
class AccountStatus:
    """The keeper's view of an account, from one batched lens call."""

    owner: str
    subaccount: int
    equity: Decimal
    maintenance_margin: Decimal
    notional: Decimal
    liquidatable: bool


@dataclass(frozen=True)
class TradeResult:
    """What the engine reported for one trade (its PositionModified event)."""

    market: str
    size_delta: Decimal
    new_size: Decimal
    fill_price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    funding_paid: Decimal
    txn_hash: str


@dataclass(frozen=True)
class LpPosition:
    """An LP's vault shares and what they are worth."""

    owner: str
    shares: Decimal  # in the wallet
    value: Decimal  # assets all its shares (wallet and requested) would be claimed for now
    max_withdraw: Decimal  # what it can claim now: its claimable request, under the utilization limit
    requested: Decimal = Decimal(0)  # shares escrowed in its redemption request
    claimable_at: int = 0  # when the request can be claimed (unix seconds); 0 without one


class Vyperp:
    """Markets, accounts and trader, LP, keeper and admin actions over one deployment."""

    def __init__(self, project, deployment: Deployment, *, root: Path = DEFAULT_ROOT):
        self.project = project
        self.deployment = deployment
        self.contracts: ProtocolContracts = deployment.contracts(project)
        self.root = Path(root)
        self.token_decimals = int(self.contracts.token.decimals())
        self.share_decimals = int(self.contracts.vault.decimals())

    @classmethod
    def connect(
        cls, project, network_choice: str | None = None, *, root: Path = DEFAULT_ROOT
    ) -> Vyperp:
        """The SDK over the manifest of the connected network (or of ``network_choice``)."""
        deployment = Deployment.load(network_choice or chain.provider.network_choice, root)
        # a restarted local chain keeps its chain id but loses the code: name that, not a
        # contract-type lookup failure
        problems = deployment.check_chain(chain.chain_id, chain.provider.get_code)
        if problems:
            path = Deployment.path_for(deployment.network, root)
            raise VyperpError(
                f"{path} does not match the chain ({'; '.join(problems)}); run `ape run deploy`"
            )
        return cls(project, deployment, root=root)

    # ---- units ----

    def to_token_units(self, amount: Decimal | int | str) -> int:
        """Collateral in token units; refuses amounts finer than the token's decimals."""
        units = Decimal(str(amount)).scaleb(self.token_decimals, EXACT)
        if units != units.to_integral_value():
            raise VyperpError(f"{amount} has more than {self.token_decimals} decimals")
        return int(units)

    def from_token_units(self, units: int) -> Decimal:
        return from_units(units, self.token_decimals)

    # ---- markets ----

    @property
    def market_names(self) -> list[str]:
        return list(self.deployment.markets)

    def market_id(self, name: str) -> int:
        return self.deployment.market(name).id

    def markets(self, names: Sequence[str] | None = None) -> list[MarketState]:
        """Every market (or the named ones) in one batched call."""
        names = list(names or self.market_names)
        batch = self._batch()
        for name in names:
            add_market_reads(batch, self.contracts.engine, self.market_id(name))
        answers, per_market = list(batch()), len(MARKET_VIEWS)
        return [
            market_state(name, self.market_id(name), answers[per_market * i : per_market * (i + 1)])
            for i, name in enumerate(names)
        ]

    def market(self, name: str) -> MarketState:
        return self.markets([name])[0]

    def fill_price(self, market: str, size_delta: Decimal | int | str) -> Decimal:
        """The price a trade of ``size_delta`` (signed base units) would fill at now."""
        return from_wad(
            self.contracts.engine.fill_price(self.market_id(market), to_wad(size_delta))
        )

    def limit_price(
        self,
        market: str,
        size_delta: Decimal | int | str,
        slippage: Decimal | str = DEFAULT_SLIPPAGE,
    ) -> Decimal:
        """The acceptable price a trade of ``size_delta`` is sent with: the engine's quote moved
        by ``slippage`` against the trader (a buy's ceiling, a sell's floor)."""
        return from_wad(self._limit_price(self.market_id(market), to_wad(size_delta), slippage))

    def trade_fee(self, market: str, size_delta: Decimal | int | str) -> Decimal:
        return from_wad(self.contracts.lens.trade_fee(self.market_id(market), to_wad(size_delta)))

    # ---- accounts ----

    def account(self, owner, subaccount: int = 0) -> AccountState:
        """An account with every position, in two batched calls whatever its size."""
        engine, lens = self.contracts.engine, self.contracts.lens
        owner = _address(owner)
        summary = self._batch()
        summary.add(engine.account_health, owner, subaccount)
        summary.add(lens.free_collateral, owner, subaccount)
        summary.add(lens.leverage, owner, subaccount)
        summary.add(lens.health, owner, subaccount)
        summary.add(engine.open_markets, owner, subaccount)
        health, free, leverage, health_ratio, mask = self._all_answered(summary, f"account {owner}")

        market_ids = [market_id for market_id in range(mask.bit_length()) if mask >> market_id & 1]
        details = self._batch()
        for market_id in market_ids:
            details.add(engine.open_positions, owner, subaccount, market_id)
            details.add(engine.position_value, owner, subaccount, market_id)
            details.add(lens.entry_price, owner, subaccount, market_id)
            details.add(lens.liquidation_price, owner, subaccount, market_id)
        answers = self._all_answered(details, f"positions of {owner}") if market_ids else []
        positions = []
        for index, market_id in enumerate(market_ids):
            stored, value, entry, liquidation = answers[4 * index : 4 * index + 4]
            positions.append(
                PositionState(
                    market=self.deployment.market_name(market_id),
                    market_id=market_id,
                    size=from_wad(stored.size),
                    entry_price=from_wad(entry),
                    mark_price=from_wad(value.mark_price),
                    notional=from_wad(value.notional),
                    unrealized_pnl=from_wad(value.unrealized_pnl),
                    funding_owed=from_wad(value.funding_owed),
                    liquidation_price=from_wad(liquidation) if liquidation else None,
                )
            )
        return AccountState(
            owner=owner,
            subaccount=subaccount,
            **_from_wad_fields(health, ACCOUNT_HEALTH_FIELDS),
            free_collateral=self.from_token_units(free),
            leverage=INFINITY if leverage == MAX_UINT256 else from_wad(leverage),
            health=INFINITY if health_ratio == MAX_UINT256 else from_wad(health_ratio),
            positions=tuple(positions),
        )

    def account_statuses(self, accounts: Iterable[tuple[Any, int]]) -> list[AccountStatus]:
        """Equity, maintenance margin and liquidatability of many (owner, subaccount) pairs,
        one lens call per 500 accounts."""
        refs = [(_address(owner), subaccount) for owner, subaccount in accounts]
        statuses = []
        for start in range(0, len(refs), STATUS_BATCH):
            chunk = refs[start : start + STATUS_BATCH]
            for (owner, subaccount), status in zip(
                chunk, self.contracts.lens.account_statuses(chunk), strict=True
            ):
                statuses.append(
                    AccountStatus(
                        owner=owner,
                        subaccount=subaccount,
                        equity=from_wad(status.equity),
                        maintenance_margin=from_wad(status.maintenance_margin),
                        notional=from_wad(status.notional),
                        liquidatable=status.liquidatable,
                    )
                )
        return statuses

    def wallet_balance(self, owner) -> Decimal:
        """Collateral tokens the address holds outside the engine."""
        return self.from_token_units(self.contracts.token.balanceOf(_address(owner)))

    # ---- trader actions ----

    def deposit(self, amount: Decimal | int | str, sender, *, subaccount: int = 0, owner=None):
        """Approves the engine when needed, then deposits ``amount`` of collateral.

        Nothing is sent unless the deposit can pass: the wallet must hold the amount, and the
        approve and then the deposit are each simulated (``eth_call``) before they are signed.
        The deposit needs the allowance, so its own simulation runs after the approve; with the
        balance checked first, only a token's own rules (a pause, a block list) can refuse it
        then, and the error says the approve was mined.
        """
        units = self._positive_units(amount)
        owner = _address(owner or sender)
        if owner == ZERO_ADDRESS:
            raise VyperpError("owner is the zero address")
        self._check_wallet(sender, units)
        approved = self._approve(self.contracts.engine, units, sender)
        try:
            return self._send(self.contracts.engine.deposit, units, subaccount, owner, sender=sender)
        except ContractLogicError as error:
            if approved:
                error.revert_message = (
                    f"{error.revert_message} (the approve of {self.from_token_units(units)} "
                    "was sent; the deposit was not)"
                )
            raise

    def withdraw(self, amount: Decimal | int | str, sender, *, subaccount: int = 0, owner=None):
        """Withdraws collateral to the owner (the sender, or an account it operates); simulated
        first, so a withdrawal the engine refuses raises its reason and sends nothing."""
        units = self._positive_units(amount)
        return self._send(
            self.contracts.engine.withdraw, units, subaccount, _address(owner or sender), sender=sender
        )

    def set_operator(self, operator, approved: bool, sender):
        return self.contracts.engine.set_operator(_address(operator), approved, sender=sender)

    def trade(
        self,
        market: str,
        size_delta: Decimal | int | str,
        sender,
        *,
        slippage: Decimal | str = DEFAULT_SLIPPAGE,
        subaccount: int = 0,
        owner=None,
    ) -> TradeResult:
        """Buys (``size_delta`` > 0) or sells, accepting a fill at most ``slippage`` worse than
        the engine's quote for this size."""
        delta = to_wad(size_delta)
        if delta == 0:
            raise VyperpError("a trade needs a non-zero size")
        market_id = self.market_id(market)
        limit = self._limit_price(market_id, delta, slippage)
        receipt = self._send(
            self.contracts.engine.modify_position,
            market_id, delta, limit, subaccount, _address(owner or sender), sender=sender,
        )
        return self._trade_result(market, receipt)

    def open_position(
        self, market: str, size: Decimal | int | str, side: Side | str, sender, **options
    ) -> TradeResult:
        """Opens or increases a position by ``size`` (positive) on ``side``."""
        size = Decimal(str(size))
        if size <= 0:
            raise VyperpError("size must be positive; the side gives the direction")
        return self.trade(market, size * Side(side).sign, sender, **options)

    def reduce_position(
        self,
        market: str,
        size: Decimal | int | str,
        sender,
        *,
        subaccount: int = 0,
        owner=None,
        **options,
    ) -> TradeResult:
        """Reduces the position by ``size`` (positive, at most the position's size)."""
        size = Decimal(str(size))
        current = self._position_size(market, owner or sender, subaccount)
        if size <= 0 or size > abs(current):
            raise VyperpError(f"reduce by more than 0 and at most {abs(current)} in {market}")
        return self.trade(
            market,
            -size if current > 0 else size,
            sender,
            subaccount=subaccount,
            owner=owner,
            **options,
        )

    def close_position(
        self,
        market: str,
        sender,
        *,
        slippage: Decimal | str = DEFAULT_SLIPPAGE,
        subaccount: int = 0,
        owner=None,
    ) -> TradeResult:
        """Closes the whole position in a market."""
        owner_address = _address(owner or sender)
        current = to_wad(self._position_size(market, owner_address, subaccount))
        if current == 0:
            raise VyperpError(f"no position in {market}")
        market_id = self.market_id(market)
        limit = self._limit_price(market_id, -current, slippage)
        receipt = self._send(
            self.contracts.engine.close_position,
            market_id, limit, subaccount, owner_address, sender=sender,
        )
        return self._trade_result(market, receipt)

    # ---- LP actions ----

    def share_price(self) -> Decimal:
        """Collateral one whole vault share redeems for now."""
        return self.from_token_units(self.contracts.vault.convertToAssets(10**self.share_decimals))

    def lp_position(self, owner) -> LpPosition:
        vault, owner = self.contracts.vault, _address(owner)
        batch = self._batch()
        batch.add(vault.balanceOf, owner)
        batch.add(vault.maxWithdraw, owner)
        batch.add(vault.redeem_request, owner)
        shares, max_withdraw, (requested, claimable_at) = self._all_answered(batch, f"LP position of {owner}")
        held = shares + requested
        return LpPosition(
            owner=owner,
            shares=from_units(shares, self.share_decimals),
            value=self.from_token_units(vault.convertToAssets(held)) if held else Decimal(0),
            max_withdraw=self.from_token_units(max_withdraw),
            requested=from_units(requested, self.share_decimals),
            claimable_at=int(claimable_at),
        )

    def lp_deposit(self, amount: Decimal | int | str, sender, *, receiver=None) -> Decimal:
        """Deposits collateral into the LP vault; returns the shares minted."""
        units = self._positive_units(amount)
        self._approve(self.contracts.vault, units, sender)
        receipt = self.contracts.vault.deposit(units, _address(receiver or sender), sender=sender)
        minted = receipt.events.filter(self.contracts.vault.Deposit)[0].shares
        return from_units(minted, self.share_decimals)

    def lp_request_redeem(self, shares: Decimal | int | str, sender) -> int:
        """Moves vault shares into the sender's redemption request (escrow in the vault); returns
        when the whole request can be claimed with `lp_redeem` (unix seconds). A pending request
        grows and its clock restarts. The shares keep bearing the vault's gains and losses until
        claimed, and are paid at the price then."""
        receipt = self.contracts.vault.request_redeem(self._share_units(shares), sender=sender)
        return receipt.events.filter(self.contracts.vault.RedeemRequested)[0].claimable_at

    def lp_cancel_redeem(self, sender) -> Decimal:
        """Returns the sender's escrowed shares to its wallet; returns how many."""
        owner = _address(sender)
        if self.contracts.vault.redeem_request(owner)[0] == 0:
            raise VyperpError(f"{owner} has no redemption request")
        receipt = self.contracts.vault.cancel_redeem(sender=sender)
        returned = receipt.events.filter(self.contracts.vault.RedeemCancelled)[0].shares
        return from_units(returned, self.share_decimals)

    def lp_redeem(self, shares: Decimal | int | str, sender, *, receiver=None) -> Decimal:
        """Claims shares of the sender's redemption request (see `lp_request_redeem`) once it is
        claimable; returns the collateral paid out, priced now."""
        units, owner = self._share_units(shares), _address(sender)
        requested, claimable_at = self.contracts.vault.redeem_request(owner)
        if units > requested:
            raise VyperpError(
                f"{owner} has requested {from_units(requested, self.share_decimals)} shares; "
                "request a redemption first (lp_request_redeem)"
            )
        # the claim is mined in a later block than the head: compare with the pending timestamp
        if chain.pending_timestamp < claimable_at:
            raise VyperpError(f"the redemption request of {owner} is claimable from {claimable_at}")
        receipt = self.contracts.vault.redeem(units, _address(receiver or sender), owner, sender=sender)
        paid = receipt.events.filter(self.contracts.vault.Withdraw)[0].assets
        return self.from_token_units(paid)

    def _share_units(self, shares: Decimal | int | str) -> int:
        units = Decimal(str(shares)).scaleb(self.share_decimals, EXACT)
        if units <= 0 or units != units.to_integral_value():
            raise VyperpError(
                f"shares must be positive with at most {self.share_decimals} decimals"
            )
        return int(units)

    # ---- keeper actions ----

    def checkpoint_funding(self, sender, markets: Sequence[str] | None = None):
        """Accrues funding in every market (or the named ones) in one transaction."""
        ids = [self.market_id(name) for name in (markets or self.market_names)]
        return self.contracts.engine.checkpoint_funding(ids, sender=sender)

    # ---- admin ----

    def add_market(
        self,
        name: str,
        oracle,
        sender,
        *,
        params: dict[str, Any] | None = None,
        reporters: Sequence[str] = (),
        atomic_trading: bool = False,
    ) -> MarketEntry:
        """Lists a market on an existing feed with MarketConfig defaults plus human overrides
        (as in config/markets.yaml), and records it in the manifest. `atomic_trading` allows
        direct trades at the current oracle price (devnets); otherwise only orders trade."""
        if name in self.deployment.markets:
            raise VyperpError(f"{name} is already listed as market {self.market_id(name)}")
        feed = self.project.PriceOracle.at(_address(oracle))
        config = MarketSpec(name=name, description=name, params=dict(params or {})).market_config(
            feed.address
        )
        entry = list_market(
            self.contracts, sender, config, reporters, feed.decimals(), atomic_trading=atomic_trading
        )
        self.deployment.markets[name] = entry
        self.contracts.oracles[name] = feed
        self.deployment.save(self.root)
        return entry

    # ---- internals ----

    def _batch(self) -> multicall.Call:
        """A Multicall3 batch; a local chain without Multicall3 (a fresh anvil) gets it injected."""
        ensure_multicall(chain.provider)
        return multicall.Call()

    @staticmethod
    def _all_answered(batch: multicall.Call, what: str) -> list:
        answers = list(batch())
        if any(answer is None for answer in answers):
            raise VyperpError(
                f"cannot read the {what}: a market it holds has no usable price (stale or invalid)"
            )
        return answers

    def _positive_units(self, amount) -> int:
        try:
            number = Decimal(str(amount))
        except InvalidOperation:
            raise VyperpError(f"amount must be a number, not {amount!r}") from None
        if not number.is_finite():
            raise VyperpError(f"amount must be a finite number, not {amount}")
        units = self.to_token_units(number)
        if units <= 0:
            raise VyperpError("amount must be positive")
        # the engine scales token units to 18 decimals in an int256
        if units * 10 ** max(0, 18 - self.token_decimals) >= 2**255:
            raise VyperpError(f"amount {amount} is too large")
        return units

    def _check_wallet(self, holder, units: int) -> None:
        held = self.contracts.token.balanceOf(_address(holder))
        if held < units:
            raise VyperpError(
                f"{_address(holder)} holds {_plain(self.from_token_units(held))} of the collateral "
                f"token, less than {_plain(self.from_token_units(units))}"
            )

    def _approve(self, spender, units: int, owner) -> bool:
        """Approves ``units`` when the allowance is short (simulated first); True when it sent."""
        if self.contracts.token.allowance(owner, spender) >= units:
            return False
        self._send(self.contracts.token.approve, spender, units, sender=owner)
        return True

    @staticmethod
    def _send(method, *args, sender):
        """Sends a transaction after simulating it with ``eth_call``: a revert raises
        ContractLogicError with the contract's reason and nothing is signed or sent."""
        method.call(*args, sender=sender, skip_trace=True)  # no call trace printed on a revert
        return method(*args, sender=sender)

    def _limit_price(self, market_id: int, delta: int, slippage: Decimal | str) -> int:
        tolerance = to_wad(slippage)
        if not 0 <= tolerance < WAD:
            raise VyperpError("slippage must be in [0, 1)")
        quote = self.contracts.engine.fill_price(market_id, delta)
        if delta > 0:
            return -(-quote * (WAD + tolerance) // WAD)  # a buy's ceiling, rounded up
        return quote * (WAD - tolerance) // WAD  # a sell's floor, rounded down

    def _position_size(self, market: str, owner, subaccount: int) -> Decimal:
        position = self.contracts.engine.open_positions(
            _address(owner), subaccount, self.market_id(market)
        )
        return from_wad(position.size)

    def _trade_result(self, market: str, receipt) -> TradeResult:
        event = receipt.events.filter(self.contracts.engine.PositionModified)[0]
        return TradeResult(
            market=market,
            **_from_wad_fields(event, TRADE_EVENT_FIELDS),
            txn_hash=str(receipt.txn_hash),
        )


def _address(account) -> str:
    return str(getattr(account, "address", account))


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros (1E+30 -> 1000000000000000000000000000000)."""
    return f"{value.normalize():f}"


def _wad_or_none(value) -> Decimal | None:
    return None if value is None else from_wad(value)


def _from_wad_fields(record, names: Sequence[str]) -> dict[str, Decimal]:
    """The named 18-decimal fields of a struct or event, as Decimals under the same names."""
    return {name: from_wad(getattr(record, name)) for name in names}
