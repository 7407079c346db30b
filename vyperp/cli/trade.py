"""The trader command line: `ape run trade <command>` (scripts/trade.py runs this group).

Every command connects with Ape's ``--network`` (default: the project's default network), reads
the manifest that ``ape run deploy`` wrote, and prints rich tables (``--json`` on the read
commands). Commands that send transactions take ``--account`` (an Ape alias, or ``TEST::<n>``
for a test account) and simulate each transaction before signing it: a refusal prints one line
``error: <reason>`` (a revert's reason is the contract's, e.g. ``engine: insufficient margin``),
sends nothing and exits non-zero.
"""

from __future__ import annotations

import datetime

from decimal import Decimal
from pathlib import Path

import click
from ape import project
from ape.cli import account_option
from rich.console import Console
from rich.table import Table

from vyperp.cli.common import (
    ACCEPTS_NEGATIVE, Amount, DevnetCommand, Fraction, OneLineErrors, deployments_option, echo_json,
    json_option, plain, subaccount_option,
)
from vyperp.sdk import DEFAULT_SLIPPAGE, AccountState, MarketState, Side, TradeResult, Vyperp

PRICE_PLACES = 4
MONEY_PLACES = 6
SIZE_PLACES = 6
RATE_PLACES = 6
MIN_WIDTH = 130
# The number columns of the positions and trade tables: (header, field, decimal places).
POSITION_FIGURES = (
    ("entry", "entry_price", PRICE_PLACES), ("mark", "mark_price", PRICE_PLACES),
    ("notional", "notional", MONEY_PLACES), ("uPnL", "unrealized_pnl", MONEY_PLACES),
    ("funding owed", "funding_owed", MONEY_PLACES),
    ("liq. price", "liquidation_price", PRICE_PLACES),
)
TRADE_FIGURES = (
    ("size delta", "size_delta", SIZE_PLACES), ("new size", "new_size", SIZE_PLACES),
    ("fill price", "fill_price", PRICE_PLACES), ("fee", "fee", MONEY_PLACES),
    ("realized PnL", "realized_pnl", MONEY_PLACES), ("funding paid", "funding_paid", MONEY_PLACES),
)


slippage_option = click.option(
    "--slippage", type=Fraction(), default=DEFAULT_SLIPPAGE, show_default=True,
    help="Worst fill accepted, as a fraction of the quoted fill price (0.005 = 0.5 %).",
)


def _sender_options(command):
    """--account, --deployments and --subaccount: what every command that sends takes."""
    return account_option()(deployments_option(subaccount_option(command)))


def _collateral_command(function):
    """A command that moves AMOUNT of collateral of --account's subaccount (deposit, withdraw)."""
    function = _sender_options(click.argument("amount", type=Amount())(function))
    return cli.command(cls=DevnetCommand, context_settings=ACCEPTS_NEGATIVE)(function)


def _sdk(deployments_root: Path) -> Vyperp:
    return Vyperp.connect(project, root=deployments_root)


def _market(sdk: Vyperp, name: str) -> str:
    sdk.market_id(name)  # an unknown market is refused before anything else
    return name


@click.group(name="trade", cls=OneLineErrors, help=__doc__)
def cli():
    pass


@_collateral_command
def deposit(account, deployments_root, subaccount, amount):
    """Deposit AMOUNT of collateral (approving the engine first when needed)."""
    _move_collateral(Vyperp.deposit, "deposited", deployments_root, account, subaccount, amount)


@_collateral_command
def withdraw(account, deployments_root, subaccount, amount):
    """Withdraw AMOUNT of collateral to the account's owner."""
    _move_collateral(Vyperp.withdraw, "withdrew", deployments_root, account, subaccount, amount)


def _move_collateral(move, done: str, deployments_root, account, subaccount, amount) -> None:
    """The SDK's `move` (deposit or withdraw), then the account under "<done> <amount>"."""
    sdk = _sdk(deployments_root)
    move(sdk, amount, account, subaccount=subaccount)
    _print_account(sdk.account(account, subaccount), f"{done} {amount}")


@cli.command(name="open", cls=DevnetCommand, context_settings=ACCEPTS_NEGATIVE)
@_sender_options
@slippage_option
@click.argument("market")
@click.argument("size", type=Amount("size"))
@click.argument("side", type=click.Choice([side.value for side in Side]), metavar="SIDE")
def open_(account, deployments_root, subaccount, slippage, market, size, side):
    """Open or increase a position: SIZE base units of MARKET, long or short."""
    sdk = _sdk(deployments_root)
    result = sdk.open_position(
        _market(sdk, market), size, side, account, slippage=slippage, subaccount=subaccount
    )
    _console().print(trade_table(result))


@cli.command(cls=DevnetCommand)
@_sender_options
@slippage_option
@click.argument("market")
def close(account, deployments_root, subaccount, slippage, market):
    """Close the whole position in MARKET."""
    sdk = _sdk(deployments_root)
    result = sdk.close_position(
        _market(sdk, market), account, slippage=slippage, subaccount=subaccount
    )
    _console().print(trade_table(result))


@cli.command(cls=DevnetCommand)
@account_option(prompt=False)
@deployments_option
@subaccount_option
@json_option
@click.argument("owner", required=False)
def account(account, deployments_root, subaccount, as_json, owner):
    """Equity, margins, leverage and positions (with liquidation prices) of OWNER or --account."""
    if owner is None and account is None:
        raise click.UsageError("give an OWNER address or --account")
    sdk = _sdk(deployments_root)
    state = sdk.account(owner or account, subaccount)
    if as_json:
        echo_json(_account_json(state))
    else:
        _print_account(state)


@cli.command(cls=DevnetCommand)
@deployments_option
@json_option
def markets(deployments_root, as_json):
    """Prices, skew, open interest and funding rate of every market, and queued changes (S10)."""
    states = _sdk(deployments_root).markets()
    if as_json:
        echo_json([_market_json(state) for state in states])
        return
    _console().print(markets_table(states))
    for line in pending_lines(states):
        _console().print(line)


def _account_json(state: AccountState) -> dict:
    """An account for ``--json``: its fields (leverage and health null when infinite), with each
    position's side and whether the account is liquidatable."""
    data = plain(state)
    for shown, position in zip(data["positions"], state.positions, strict=True):
        shown["side"] = position.side.value
    data["liquidatable"] = state.liquidatable
    return data


def _market_json(state: MarketState) -> dict:
    """A market for ``--json``: its state, with the engine's 18-decimal parameters as integers
    and the leverage, status and queued changes the table shows."""
    return {
        "name": state.name,
        "id": state.id,
        "index_price": state.index_price,
        "mark_price": state.mark_price,
        "skew": state.skew,
        "long_open_interest": state.long_open_interest,
        "short_open_interest": state.short_open_interest,
        "funding_rate": state.funding_rate,
        "funding_index": state.funding_index,
        "max_leverage": state.max_leverage,
        "reduce_only": state.reduce_only,
        "status": _status(state),
        "params": state.config,
        "pending_params": state.pending_config,
        "pending_effective_at": state.pending_effective_at,
    }


# ---- tables ----


def markets_table(states: list[MarketState]) -> Table:
    table = Table(title="markets")
    for column in (
        "market",
        "index",
        "mark",
        "skew",
        "long OI",
        "short OI",
        "funding / 8h",
        "max lev",
        "status",
    ):
        table.add_column(column, justify="left" if column in ("market", "status") else "right")
    for state in states:
        table.add_row(
            state.name,
            _fmt(state.index_price, PRICE_PLACES),
            _fmt(state.mark_price, PRICE_PLACES),
            _fmt(state.skew, SIZE_PLACES),
            _fmt(state.long_open_interest, SIZE_PLACES),
            _fmt(state.short_open_interest, SIZE_PLACES),
            _percent(state.funding_rate),
            f"{state.max_leverage.normalize():f}x",
            _status(state),
        )
    return table


def pending_lines(states: list[MarketState]) -> list[str]:
    """One line per market with queued parameters (S10): what changes and from when."""
    lines = []
    for state in states:
        if state.pending_effective_at is None:
            continue
        when = datetime.datetime.fromtimestamp(state.pending_effective_at, datetime.timezone.utc)
        changes = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in state.pending_changes.items())
        lines.append(f"{state.name}: queued from {when:%Y-%m-%d %H:%M:%S} UTC (apply_change({state.id})): {changes or 'no field changes'}")
    return lines


def account_tables(state: AccountState) -> tuple[Table, Table]:
    summary = Table()
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    for label, value in (
        ("collateral", _fmt(state.collateral, MONEY_PLACES)),
        ("unrealized PnL", _fmt(state.unrealized_pnl, MONEY_PLACES)),
        ("funding owed", _fmt(state.funding_owed, MONEY_PLACES)),
        ("equity", _fmt(state.equity, MONEY_PLACES)),
        ("initial margin", _fmt(state.initial_margin, MONEY_PLACES)),
        ("maintenance margin", _fmt(state.maintenance_margin, MONEY_PLACES)),
        ("free collateral", _fmt(state.free_collateral, MONEY_PLACES)),
        ("notional", _fmt(state.notional, MONEY_PLACES)),
        ("leverage", _ratio(state.leverage)),
        ("health (equity / MM)", _ratio(state.health)),
    ):
        summary.add_row(label, value)

    positions = Table(title="positions")
    positions.add_column("market")
    positions.add_column("side")
    for column in ("size", *(header for header, _, _ in POSITION_FIGURES)):
        positions.add_column(column, justify="right")
    for position in state.positions:
        positions.add_row(
            position.market,
            position.side.value,
            _fmt(abs(position.size), SIZE_PLACES),
            *_figures(position, POSITION_FIGURES),
        )
    return summary, positions


def trade_table(result: TradeResult) -> Table:
    table = Table(title=f"{result.market} trade {result.txn_hash}")
    for header, _, _ in TRADE_FIGURES:
        table.add_column(header, justify="right")
    table.add_row(*_figures(result, TRADE_FIGURES))
    return table


def _figures(record, figures) -> list[str]:
    return [_fmt(getattr(record, field), places) for _, field, places in figures]


def _print_account(state: AccountState, headline: str | None = None) -> None:
    console = _console()
    if headline:
        console.print(headline)
    console.print(f"account {state.owner} / subaccount {state.subaccount}")
    summary, positions = account_tables(state)
    console.print(summary)
    if state.positions:
        console.print(positions)
    else:
        console.print("no open positions")


def _console() -> Console:
    # Never narrower than the widest table: a squeezed table would cut digits off numbers.
    return Console(width=max(Console().width, MIN_WIDTH))


def _fmt(value: Decimal | None, places: int) -> str:
    if value is None:
        return "-"
    return f"{value.quantize(Decimal(1).scaleb(-places)):,f}"


def _percent(rate: Decimal | None) -> str:
    return "-" if rate is None else f"{(rate * 100).quantize(Decimal(1).scaleb(-RATE_PLACES)):f} %"


def _ratio(value: Decimal) -> str:
    return "∞" if value.is_infinite() else f"{value.quantize(Decimal('0.0001')):f}"


def _status(state: MarketState) -> str:
    if state.index_price is None:
        return "no usable price"
    return "reduce-only" if state.reduce_only else "open"
