"""The dashboard's snapshot of a known state on the e2e devnet, its rendering, and its cost in
RPC requests."""

import os
import time
from decimal import Decimal

import pytest

from vyperp.devnet.dashboard import DashboardReader, render_text
from vyperp.devnet.status import ProcessStatus
from vyperp.oracle_signing import transmit_round
from vyperp.units import from_wad

NETWORK = "ethereum:local"
LP_DEPOSIT = Decimal(5_000_000)  # config/markets.yaml: what the devnet's LP deposits
BTC_PRICE = Decimal(95_000)  # its BTC-USD initial_price


@pytest.fixture
def status_dir(tmp_path):
    now = time.time()
    ProcessStatus(name="oracle", pid=os.getpid(), interval=1.0, started_at=now - 60,
                  updated_at=now, steps=42, last_action="BTC-USD 95000",
                  last_action_at=now - 2).save(tmp_path)  # fmt: skip
    # a pid no process has: the keeper died without marking itself stopped
    ProcessStatus(name="funding", pid=2**22 + 1, interval=5.0, started_at=now - 60,
                  updated_at=now - 1, steps=3, errors=1,
                  last_error="ContractLogicError: stale").save(tmp_path)  # fmt: skip
    return tmp_path


@pytest.fixture
def reader(project, sdk, status_dir):
    return DashboardReader(project, sdk.deployment, status_dir=status_dir)


def table_row(text: str, first_cell: str) -> str:
    """The rendered table row whose first cell is ``first_cell``."""
    cells = (line.split("│") for line in text.splitlines())
    return next("│".join(row) for row in cells if len(row) > 2 and row[1].strip() == first_cell)


def column_headers(text: str, title: str) -> list[str]:
    """The headers of the rendered table titled ``title``, each joined across the lines it
    wrapped onto."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title) + 2  # past ┏━━┓
    header_lines = []
    for line in lines[start:]:
        if line.startswith("┡"):
            break
        header_lines.append(line.split("┃")[1:-1])
    return [" ".join(p.strip() for p in parts if p.strip()) for parts in zip(*header_lines)]


MARKET_COLUMNS = "market", "status", "index", "mark", "skew", "funding / 8h", "OI long", "OI short"
# the same in priority order: the last ones give way first when the width is short
MARKET_PRIORITY = "market", "mark", "status", "funding / 8h", "OI long", "OI short", "index", "skew"


def test_snapshot_of_a_fresh_devnet(reader):
    snapshot = reader.snapshot()
    assert [m.name for m in snapshot.markets] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    btc = snapshot.markets[0]
    assert btc.index_price == btc.mark_price == BTC_PRICE
    assert btc.skew == btc.long_open_interest == btc.short_open_interest == 0
    assert snapshot.vault_assets == LP_DEPOSIT
    assert snapshot.share_price == 1
    assert snapshot.insurance_balance == 0
    assert snapshot.liquidations == 0


def test_snapshot_after_a_trade_shows_interest_skew_and_fees(reader, sdk, trader, chain):
    sdk.deposit(100_000, trader)
    trade = sdk.open_position("BTC-USD", Decimal(2), "long", trader)
    vault_share = from_wad(sdk.contracts.engine.vault_fee_share())

    snapshot = reader.snapshot()
    btc = snapshot.markets[0]
    assert btc.long_open_interest == btc.skew == 2 and btc.short_open_interest == 0
    assert btc.funding_rate is not None
    # the fee is split between the vault and the insurance fund
    assert snapshot.insurance_balance == trade.fee - trade.fee * vault_share
    assert snapshot.block == chain.blocks.head.number

    text = render_text(snapshot, width=200)
    btc_line = table_row(text, "BTC-USD")
    assert "95,000.00 " in btc_line and "2.0000" in btc_line
    assert f"insurance fund {snapshot.insurance_balance:,.2f}" in text
    assert "liquidations 0" in text
    oracle_line = table_row(text, "oracle")
    assert "alive" in oracle_line and "42" in oracle_line and "BTC-USD 95000" in oracle_line
    funding_line = table_row(text, "funding")
    assert "down" in funding_line and "error: ContractLogicError: stale" in funding_line


def test_a_refresh_is_a_handful_of_rpc_requests(reader, chain):
    reader.snapshot()  # first use warms Ape's caches (contract types, chain id)
    chain.mine()  # a new block: the refresh also scans it for liquidations
    web3_provider = chain.provider.web3.provider
    sent = []
    original = web3_provider.make_request

    def counting(method, params):
        sent.append(method)
        return original(method, params)

    web3_provider.make_request = counting
    try:
        reader.snapshot()
    finally:
        del web3_provider.make_request
    # the head block, every market and vault figure in one multicall at that block, and the
    # liquidations logged since the last refresh
    assert sent == ["eth_getBlockByNumber", "eth_call", "eth_getLogs"]


def test_liquidations_are_counted_from_events(reader, sdk, trader, keeper, reporters, chain):
    sdk.deposit(10_000, trader)
    sdk.open_position("BTC-USD", Decimal(2), "long", trader)  # 19x
    assert reader.snapshot().liquidations == 0
    oracle = sdk.contracts.oracles["BTC-USD"]
    signers = reporters[: oracle.quorum()]
    transmit_round(oracle, 92_000 * 10**8, signers, signers[0])
    chain.mine(deltatime=61)  # the mark's TWAP window passes at the new price
    assert sdk.account(trader).liquidatable

    sdk.contracts.engine.liquidate(trader, sender=keeper)
    snapshot = reader.snapshot()
    assert snapshot.liquidations == 1
    assert snapshot.markets[0].long_open_interest < 2  # closed, partly for an account this size
    assert reader.snapshot().liquidations == 1  # counted once however often it refreshes


def test_each_market_shows_its_status(reader, sdk, keeper, reporters, chain):
    """Open on a fresh devnet; an ETH index beyond the breaker move (15 %) of its last accepted
    one halts that market (S4), and the row says so rather than leave an empty mark unexplained."""
    assert [m.status for m in reader.snapshot().markets] == ["open", "open", "open"]
    eth = sdk.deployment.markets["ETH-USD"].id
    sdk.contracts.engine.checkpoint_funding([eth], sender=keeper)  # ETH's index is accepted
    oracle = sdk.contracts.oracles["ETH-USD"]
    signers = reporters[: oracle.quorum()]
    for _ in range(2):  # +21 % in two rounds, each inside the oracle's 10 % bound
        chain.mine(deltatime=1)
        transmit_round(oracle, oracle.latestAnswer() * 11 // 10, signers, signers[0])
    snapshot = reader.snapshot()
    assert [m.status for m in snapshot.markets] == ["open", "halted", "open"]
    assert "halted" in table_row(render_text(snapshot, width=200), "ETH-USD")


@pytest.mark.parametrize(
    ("width", "columns"),
    [(60, range(4, 6)), (80, range(6, 8)), (120, [8])],
    ids=["width-60", "width-80", "width-120"],
)
def test_the_dashboard_fits_the_width_and_cuts_no_number(reader, sdk, trader, width, columns):
    """At any width every line fits and no figure ends in an ellipsis; the Markets table shows
    the most important columns that fit, dropping the least important first and naming them:
    at 80 at least market, mark, status, funding and both OI (not all eight: the prices alone
    need more), at 120 all of them."""
    sdk.deposit(100_000, trader)
    sdk.open_position("SOL-USD", Decimal(1_250), "short", trader)  # OI and skew of 10-11 digits
    snapshot = reader.snapshot()

    text = render_text(snapshot, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    shown = column_headers(text, "Markets")
    kept = MARKET_PRIORITY[: len(shown)]  # no column shown while a more important one is not
    assert len(shown) in columns and shown == [c for c in MARKET_COLUMNS if c in kept]
    hidden = [c for c in MARKET_COLUMNS if c not in kept]
    assert (f"not shown at this width: {', '.join(hidden)}" in text) == bool(hidden)
    sol = snapshot.markets[2]
    sol_line = table_row(text, "SOL-USD")
    assert f"{sol.mark_price:,.4f}" in sol_line and "open" in sol_line
    if "OI short" in shown:
        assert f"{sol.short_open_interest:,.4f}" in sol_line  # the whole figure, on one line
    assert "alive" in table_row(text, "oracle") and "down" in table_row(text, "funding")


def test_a_process_message_is_shown_as_written(project, sdk, tmp_path):
    """A loop's error message is its exception's text; brackets in it are not rich markup (a
    closing tag that opens nothing made rendering raise, every refresh)."""
    now = time.time()
    ProcessStatus(name="orders", pid=os.getpid(), interval=1.0, started_at=now - 60,
                  updated_at=now, steps=1, errors=1,
                  last_error="ValueError: closing [/x] and [bold]").save(tmp_path)  # fmt: skip
    snapshot = DashboardReader(project, sdk.deployment, status_dir=tmp_path).snapshot()
    assert "error: ValueError: closing [/x] and [bold]" in render_text(snapshot, width=120)
