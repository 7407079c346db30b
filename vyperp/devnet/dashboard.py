"""The devnet's live terminal view: markets, vault, insurance fund, liquidations, keepers.

A refresh is a handful of RPC requests whatever the number of markets: the head block, one
Multicall3 call for every market and vault figure (read at that block, so they agree), and,
once the engine's ABI has a ``Liquidation`` event, one log query for the blocks since the last
refresh. Keeper status comes from the status files the devnet's loops write (no RPC).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from vyperp.devnet.status import ProcessStatus, read_statuses
from vyperp.sdk import MARKET_VIEWS, add_market_reads, market_state
from vyperp.units import from_wad

LIQUIDATION_EVENT = "Liquidation"


@dataclass(frozen=True)
class MarketRow:
    """One market's figures; prices and funding are None while its feed is unusable."""

    name: str
    index_price: Decimal | None
    mark_price: Decimal | None
    skew: Decimal
    funding_rate: Decimal | None  # per 8 h, > 0: longs pay
    long_open_interest: Decimal
    short_open_interest: Decimal
    # "open", "paused", "reduce-only" (breaker), "halted" (an outlier, S4) or "stale" (no usable price)
    status: str = "open"


@dataclass(frozen=True)
class DashboardSnapshot:
    """Everything one refresh shows, read at one block."""

    block: int
    timestamp: int
    markets: tuple[MarketRow, ...]
    vault_assets: Decimal
    vault_shares: Decimal
    share_price: Decimal  # collateral per whole share
    insurance_balance: Decimal
    liquidations: int | None  # None: the engine has no Liquidation event yet
    keepers: tuple[ProcessStatus, ...] = ()


class DashboardReader:
    """Reads snapshots of one deployment."""

    def __init__(self, project, deployment, *, status_dir: Path | None = None, chain=None):
        from ape_ethereum.multicall import Call

        from vyperp.chain import ensure_multicall

        if chain is None:
            from ape import chain
        self.chain = chain
        self.deployment = deployment
        self.contracts = deployment.contracts(project)
        self.status_dir = status_dir
        self._call_type = Call
        ensure_multicall(chain.provider)
        self.token_decimals = int(self.contracts.token.decimals())
        self.share_decimals = int(self.contracts.vault.decimals())
        has_event = any(
            event.name == LIQUIDATION_EVENT for event in self.contracts.engine.contract_type.events
        )
        self._liquidation_event = (
            getattr(self.contracts.engine, LIQUIDATION_EVENT) if has_event else None
        )
        self._liquidations = 0
        self._scanned_through = deployment.deploy_block - 1

    def snapshot(self) -> DashboardSnapshot:
        engine, vault = self.contracts.engine, self.contracts.vault
        head = self.chain.blocks.head
        call = self._call_type()
        markets = self.deployment.markets
        for entry in markets.values():
            add_market_reads(call, engine, entry.id)
            call.add(engine.is_halted, entry.id)
        call.add(engine.paused)
        call.add(vault.totalAssets)
        call.add(vault.totalSupply)
        call.add(vault.convertToAssets, 10**self.share_decimals)
        call.add(engine.insurance_balance)
        answers = list(call(block_id=head.number))

        per_market = len(MARKET_VIEWS) + 1  # and is_halted
        paused = answers[per_market * len(markets)]
        rows = []
        for position, (name, entry) in enumerate(markets.items()):
            *views, halted = answers[per_market * position : per_market * (position + 1)]
            state = market_state(name, entry.id, views)
            rows.append(
                MarketRow(
                    name=name,
                    index_price=state.index_price,
                    mark_price=state.mark_price,
                    skew=state.skew,
                    funding_rate=state.funding_rate,
                    long_open_interest=state.long_open_interest,
                    short_open_interest=state.short_open_interest,
                    status=_market_status(state.index_price, halted, state.reduce_only, paused),
                )
            )
        assets, shares, share_value, insurance = answers[per_market * len(markets) + 1 :]
        return DashboardSnapshot(
            block=int(head.number),
            timestamp=int(head.timestamp),
            markets=tuple(rows),
            vault_assets=Decimal(assets).scaleb(-self.token_decimals),
            vault_shares=Decimal(shares).scaleb(-self.share_decimals),
            share_price=Decimal(share_value).scaleb(-self.token_decimals),
            insurance_balance=from_wad(insurance),
            liquidations=self._count_liquidations(int(head.number)),
            keepers=tuple(read_statuses(self.status_dir)) if self.status_dir else (),
        )

    def _count_liquidations(self, head: int) -> int | None:
        """Liquidation events so far, scanning only the blocks since the last refresh."""
        if self._liquidation_event is None:
            return None
        if head > self._scanned_through:
            self._liquidations += sum(
                1 for _ in self._liquidation_event.range(self._scanned_through + 1, head + 1)
            )
            self._scanned_through = head
        return self._liquidations


# ---- rendering ----


@dataclass(frozen=True)
class ColumnSpec:
    """A table column, in display order; ``rank`` orders the columns by importance: when the
    width is short the highest ranks give way first. Cells of a column that ``wraps`` break
    between words (and take the width left over); all others (numbers) stay whole on one line."""

    header: str
    rank: int
    justify: str = "right"
    wraps: bool = False


MARKET_COLUMNS = (
    ColumnSpec("market", 0, "left"),
    ColumnSpec("status", 2, "left"),
    ColumnSpec("index", 6),
    ColumnSpec("mark", 1),  # the price positions are valued and liquidated at
    ColumnSpec("skew", 7),  # OI long minus OI short, so it gives way first
    ColumnSpec("funding / 8h", 3),
    ColumnSpec("OI long", 4),
    ColumnSpec("OI short", 5),
)

PROCESS_COLUMNS = (
    ColumnSpec("process", 0, "left"),
    ColumnSpec("status", 1, "left"),
    ColumnSpec("steps", 5),
    ColumnSpec("errors", 3),
    ColumnSpec("last action", 2, "left", wraps=True),  # also says the last error
    ColumnSpec("age", 4),
)


def render(snapshot: DashboardSnapshot, *, now: float | None = None) -> DashboardView:
    """The snapshot as a rich renderable that lays itself out for the width it is given."""
    return DashboardView(snapshot, time.time() if now is None else now)


@dataclass(frozen=True)
class DashboardView:
    """Protocol figures, markets and processes, fitted to the console's width at each render
    (a live view follows the terminal as it is resized)."""

    snapshot: DashboardSnapshot
    now: float

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        snapshot = self.snapshot
        header = f"vyperp devnet  block {snapshot.block}  chain time {snapshot.timestamp}"
        figures = [
            f"vault value [bold]{_number(snapshot.vault_assets, 2)}[/]",
            f"shares {_number(snapshot.vault_shares, 2)}",
            f"share price [bold]{_number(snapshot.share_price, 6)}[/]",
            f"insurance fund [bold]{_number(snapshot.insurance_balance, 2)}[/]",
            "liquidations "
            + ("n/a" if snapshot.liquidations is None else f"[bold]{snapshot.liquidations}[/]"),
        ]
        # each figure stays whole (label and number); narrow terminals get more rows of them
        protocol = Columns([_unbroken(figure) for figure in figures], padding=(0, 3))
        # the title holds numbers too, so a narrow panel wraps it into the body instead
        fits_title = len(header) + 6 <= width
        yield Panel(
            protocol if fits_title else Group(header, protocol),
            title=header if fits_title else None,
            title_align="left",
        )
        yield _fitted_table(
            "Markets", MARKET_COLUMNS, [_market_cells(row) for row in snapshot.markets], width
        )
        yield _fitted_table(
            "Processes",
            PROCESS_COLUMNS,
            [_process_cells(status, self.now) for status in snapshot.keepers],
            width,
        )


def _market_cells(row: MarketRow) -> list[str]:
    return [
        row.name,
        row.status,
        _price(row.index_price),
        _price(row.mark_price),
        _number(row.skew, 4),
        "stale" if row.funding_rate is None else f"{row.funding_rate * 100:.6f} %",
        _number(row.long_open_interest, 4),
        _number(row.short_open_interest, 4),
    ]


def _process_cells(status: ProcessStatus, now: float) -> list[str]:
    return [
        status.name,
        _process_state(status, now),
        str(status.steps),
        str(status.errors),
        # the loops' own words (an exception's message), shown as written, never as markup
        escape(status.last_action or (status.last_error and f"error: {status.last_error}") or "-"),
        "-" if status.last_action_at is None else f"{now - status.last_action_at:.0f} s",
    ]


def _fitted_table(
    title: str, specs: tuple[ColumnSpec, ...], rows: list[list[str]], width: int
) -> Table:
    """A table of the most important columns that fit in ``width`` whole, spread over it.

    A column needs its widest cell on one line (a wrapping column: its longest word) and its
    header's longest word (a header may wrap), plus two of padding and one of border; the first
    column is kept whatever the width."""
    columns = zip(*rows) if rows else [()] * len(specs)
    needed = [
        max(_longest_word(spec.header), *(_cell_width(cell, spec.wraps) for cell in cells))
        for spec, cells in zip(specs, columns)
    ]
    kept: set[int] = set()
    used = 1  # the table's left border
    for index in sorted(range(len(specs)), key=lambda i: specs[i].rank):
        if kept and used + needed[index] + 3 > width:
            break  # no narrower, less important column in the place of one that does not fit
        kept.add(index)
        used += needed[index] + 3

    hidden = [spec.header for index, spec in enumerate(specs) if index not in kept]
    caption = f"not shown at this width: {', '.join(hidden)}" if hidden else None
    table = Table(title=title, caption=caption, expand=True)
    for index in sorted(kept):
        spec = specs[index]
        table.add_column(
            spec.header,
            justify=spec.justify,
            min_width=needed[index],
            overflow="fold",
            ratio=1 if spec.wraps else None,
        )
    for row in rows:
        # a header may wrap; a number cell never does (and the column is wide enough for it)
        table.add_row(*(row[i] if specs[i].wraps else _unbroken(row[i]) for i in sorted(kept)))
    return table


def render_text(snapshot: DashboardSnapshot, *, width: int = 160, now: float | None = None) -> str:
    """The rendering as plain text (tests, logs)."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(render(snapshot, now=now))
    return console.file.getvalue()


def run_live(
    reader: DashboardReader,
    *,
    refresh_seconds: float = 1.0,
    duration: float | None = None,
    on_refresh: Callable[[], None] = lambda: None,
) -> None:
    """Refreshes until ``duration`` passed or Ctrl-C (which propagates), calling
    ``on_refresh`` before each refresh (the supervisor checks its processes there)."""
    deadline = None if duration is None else time.monotonic() + duration
    with Live(_safe_render(reader), refresh_per_second=4, screen=False) as live:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(refresh_seconds)
            on_refresh()
            live.update(_safe_render(reader))


def _safe_render(reader: DashboardReader):
    # A refresh that fails (a node restarting, a transient RPC error) shows the error and the
    # next refresh tries again, rather than ending the dashboard.
    try:
        return render(reader.snapshot())
    except Exception as error:  # noqa: BLE001
        return Panel(f"{type(error).__name__}: {error}", title="cannot read the chain")


def _market_status(index, halted, reduce_only, paused) -> str:
    """What a trader can do in the market now; the views that price it revert while halted or
    stale, so the mark and funding columns are empty then."""
    if halted:
        return "halted"
    if index is None or halted is None:
        return "stale"
    if paused:
        return "paused"
    return "reduce-only" if reduce_only else "open"


def _cell_width(markup: str, wraps: bool) -> int:
    plain = Text.from_markup(markup).plain
    return _longest_word(plain) if wraps else len(plain)


def _longest_word(text: str) -> int:
    return max(map(len, text.split()), default=0)


def _unbroken(markup: str) -> Text:
    text = Text.from_markup(markup)
    text.no_wrap = True
    return text


def _process_state(status: ProcessStatus, now: float) -> str:
    if status.stopped:
        return "stopped"
    return "[green]alive[/]" if status.alive(now) else "[red]down[/]"


def _price(value: Decimal | None) -> str:
    return "stale" if value is None else _number(value, 4 if value < 1000 else 2)


def _number(value: Decimal, places: int) -> str:
    return f"{value:,.{places}f}"
