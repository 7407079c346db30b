"""A local book of every engine account, rebuilt from the engine's events, that values accounts
without asking the chain about each one.

What the book holds per account (owner, subaccount): collateral and, per market, size, cost and
funding snapshot, exactly as the engine stores them: the cost basis follows `positions._apply_fill`
with the fill price of each `PositionModified`, collateral moves with `Deposit`, `Withdrawal`,
trades (`realized_pnl - fee - funding_paid`), `FundingSettled`, liquidations and deleveraging
(`realized_pnl - funding_paid`), and a position's
funding snapshot is the market's index of the last `FundingCheckpoint` before the event that
settled it (the engine accrues, and logs the accrual, before it settles). Valued with the engine's
mark price and pending funding index of each market (one batched read per step), the book gives
equity, maintenance margin and notional per docs/protocol.md §5 to the wei, so the keeper can rank
10,000 accounts in milliseconds and ask the chain only about the few near liquidation.

Persistence. `to_json`/`from_json` hold the whole book with the last block it includes; a keeper
that restarts from that checkpoint reads events from the next block on, so nothing is applied
twice and nothing is missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vyperp.keepers.rpc import AbiEvents, DecodedLog, RpcClient

WAD = 10**18

# The engine events that move collateral, positions or funding snapshots.
BOOK_EVENTS = (
    "Deposit",
    "Withdrawal",
    "PositionModified",
    "FundingSettled",
    "FundingCheckpoint",
    "PositionLiquidated",
    "Liquidation",
    "Deleveraged",
)


def _mul_floor(x: int, y: int) -> int:
    return (x * y) // WAD


def _mul_ceil(x: int, y: int) -> int:
    return -((-x * y) // WAD)


def _ceil_div(x: int, y: int) -> int:
    return -((-x) // y)


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


AccountKey = tuple[str, int]  # (owner checksum address, subaccount)


@dataclass
class Position:
    """One market's position of an account, in the engine's 18-decimal integers."""

    size: int
    cost: int
    funding_snapshot: int

    def fill(self, size_delta: int, price: int) -> None:
        """`positions._apply_fill`: the cost basis after a fill, rounded as the engine rounds."""
        size, new_size = self.size, self.size + size_delta
        if size == 0 or _sign(size) == _sign(size_delta):
            self.cost += _mul_ceil(size_delta, price)
        elif _sign(new_size) == _sign(size) or new_size == 0:
            self.cost = _ceil_div(self.cost * abs(new_size), abs(size))
        else:
            self.cost = _mul_ceil(new_size, price)
        self.size = new_size


@dataclass
class Account:
    """Collateral and open positions of one (owner, subaccount)."""

    collateral: int = 0
    positions: dict[int, Position] = field(default_factory=dict)


@dataclass(frozen=True)
class MarketQuote:
    """What valuing a market needs at one block; `mark` is None while its price is unusable."""

    market_id: int
    mark: int | None
    funding_index: int  # pending: as if accrued at the block
    mmr: int


@dataclass(frozen=True)
class Valuation:
    """An account valued locally (18 decimals), as `Engine.account_health` would value it."""

    key: AccountKey
    equity: int
    maintenance_margin: int
    notional: int
    position_count: int

    @property
    def margin_ratio(self) -> float:
        """Equity over maintenance margin: below 1 is liquidatable; the ranking key."""
        return self.equity / self.maintenance_margin if self.maintenance_margin else float("inf")


@dataclass(frozen=True)
class BookPosition:
    """One position with its owner, for keepers that scan positions (ADL)."""

    key: AccountKey
    market_id: int
    size: int
    cost: int


class AccountBook:
    """Accounts of one engine, kept up to date from its logs."""

    def __init__(self, engine_address: str, collateral_scale: int, start_block: int):
        self.engine_address = engine_address
        self.collateral_scale = collateral_scale
        self.last_block = start_block - 1  # everything up to and including it is applied
        self.accounts: dict[AccountKey, Account] = {}
        self.funding_index: dict[int, int] = {}
        self.events_applied = 0

    # ---- events ----

    def apply(self, log: DecodedLog) -> None:
        """Applies one engine event; the engine's own order (block, log index) must be kept."""
        args = log.args
        name = log.name
        self.events_applied += 1
        if name == "FundingCheckpoint":
            self.funding_index[args["market_id"]] = args["funding_index"]
            return
        account = self._account(args["owner"], args["subaccount"])
        if name == "Deposit":
            account.collateral += args["amount"] * self.collateral_scale
        elif name == "Withdrawal":
            account.collateral -= args["amount"] * self.collateral_scale
        elif name == "FundingSettled":
            account.collateral -= args["amount"]
            market_id = args["market_id"]
            self._position(account, market_id).funding_snapshot = self._index(market_id)
        elif name == "PositionModified":
            position = self._position(account, args["market_id"])
            position.fill(args["size_delta"], args["fill_price"])
            position.funding_snapshot = self._index(args["market_id"])
            # a trade settles its market's funding and reports it here, not in FundingSettled
            account.collateral += args["realized_pnl"] - args["fee"] - args["funding_paid"]
            self._forget_if_flat(account, args["market_id"])
        elif name in ("PositionLiquidated", "Deleveraged"):
            position = self._position(account, args["market_id"])
            position.fill(args["size_delta"], args["price"])
            position.funding_snapshot = self._index(args["market_id"])
            account.collateral += args["realized_pnl"] - args["funding_paid"]
            self._forget_if_flat(account, args["market_id"])
        elif name == "Liquidation":
            left = account.collateral - args["reward"] - args["insurance_fee"]
            # a full liquidation zeroes a negative balance (the shortfall goes to the waterfall)
            account.collateral = max(left, 0) if args["full"] else left
            self._account(args["liquidator"], 0).collateral += args["reward"]

    def apply_all(self, logs: Iterable[DecodedLog], through_block: int) -> int:
        count = 0
        for log in logs:
            self.apply(log)
            count += 1
        self.last_block = max(self.last_block, through_block)
        return count

    def _account(self, owner: str, subaccount: int) -> Account:
        key = (owner, subaccount)
        account = self.accounts.get(key)
        if account is None:
            account = self.accounts[key] = Account()
        return account

    def _index(self, market_id: int) -> int:
        return self.funding_index.get(market_id, 0)

    @staticmethod
    def _position(account: Account, market_id: int) -> Position:
        position = account.positions.get(market_id)
        if position is None:
            position = account.positions[market_id] = Position(0, 0, 0)
        return position

    @staticmethod
    def _forget_if_flat(account: Account, market_id: int) -> None:
        if account.positions[market_id].size == 0:
            del account.positions[market_id]

    # ---- valuation ----

    def value(self, markets: dict[int, MarketQuote], keys: Iterable[AccountKey] | None = None
              ) -> tuple[list[Valuation], list[AccountKey]]:
        """Valuations of accounts with positions, and the accounts that hold a market without a
        usable price (they cannot be valued, and the engine's views revert for them too)."""
        valued, unpriced = [], []
        for key in self.accounts if keys is None else keys:
            account = self.accounts.get(key)
            if account is None or not account.positions:
                continue
            equity, maintenance, notional = account.collateral, 0, 0
            for market_id, position in account.positions.items():
                quote = markets.get(market_id)
                if quote is None or quote.mark is None:
                    unpriced.append(key)
                    break
                position_notional = _mul_ceil(abs(position.size), quote.mark)
                equity += _mul_floor(position.size, quote.mark) - position.cost
                accrued = quote.funding_index - position.funding_snapshot
                equity -= _ceil_div(position.size * accrued, WAD)
                maintenance += _mul_ceil(position_notional, quote.mmr)
                notional += position_notional
            else:
                valued.append(Valuation(key, equity, maintenance, notional, len(account.positions)))
        return valued, unpriced

    def positions(self) -> list[BookPosition]:
        return [
            BookPosition(key, market_id, position.size, position.cost)
            for key, account in self.accounts.items()
            for market_id, position in account.positions.items()
        ]

    # ---- persistence ----

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine_address,
            "collateral_scale": self.collateral_scale,
            "last_block": self.last_block,
            "funding_index": {str(m): str(i) for m, i in self.funding_index.items()},
            "accounts": [
                [owner, subaccount, str(account.collateral),
                 {str(m): [str(p.size), str(p.cost), str(p.funding_snapshot)]
                  for m, p in account.positions.items()}]
                for (owner, subaccount), account in self.accounts.items()
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountBook:
        book = cls(data["engine"], int(data["collateral_scale"]), int(data["last_block"]) + 1)
        book.funding_index = {int(m): int(i) for m, i in data["funding_index"].items()}
        for owner, subaccount, collateral, positions in data["accounts"]:
            book.accounts[(owner, int(subaccount))] = Account(
                collateral=int(collateral),
                positions={int(m): Position(int(s), int(c), int(f))
                           for m, (s, c, f) in positions.items()},
            )
        return book


class EventSource:
    """Reads an engine's book events from a node in block ranges (one batched post per sync)."""

    def __init__(self, rpc: RpcClient, engine_address: str, contract_type, *,
                 range_size: int = 5_000):
        self.rpc = rpc
        self.engine_address = engine_address
        self.events = AbiEvents(contract_type, BOOK_EVENTS)
        self.range_size = range_size

    def logs(self, from_block: int, to_block: int) -> list[DecodedLog]:
        """Every book event in [from_block, to_block], in chain order."""
        if from_block > to_block:
            return []
        ranges: Sequence[tuple[int, int]] = [
            (start, min(start + self.range_size - 1, to_block))
            for start in range(from_block, to_block + 1, self.range_size)
        ]
        requests = [
            ("eth_getLogs", [{"address": self.engine_address, "fromBlock": hex(start),
                              "toBlock": hex(end), "topics": [self.events.topics]}])
            for start, end in ranges
        ]
        decoded = []
        for result in self.rpc.batch(requests):
            for raw in result.unwrap():
                log = self.events.decode(raw)
                if log is not None:
                    decoded.append(log)
        decoded.sort(key=lambda log: (log.block_number, log.log_index))
        return decoded

    def sync(self, book: AccountBook, to_block: int) -> int:
        """Brings the book up to `to_block`; returns how many events it applied."""
        return book.apply_all(self.logs(book.last_block + 1, to_block), to_block)
