"""`ape run trade` end to end: the click group driven by CliRunner on the test chain.

The test passes the running test provider in the click context (Ape's ConnectedProviderCommand
uses ``ctx.obj["provider"]`` when present), so the commands act on the deployed devnet instead
of starting another anvil. ``TEST::2`` is the trader test account the deploy funded.
"""

import pytest
from click.testing import CliRunner

from vyperp.cli import trade
from vyperp.deployment import Deployment

TRADER = "TEST::2"


def cells(output, first_cell):
    """The cells of the table row that starts with ``first_cell``."""
    for line in output.splitlines():
        row = [cell.strip() for cell in line.strip("│ ").split("│")]
        if row[0] == first_cell:
            return row
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


@pytest.fixture
def run(chain, manifest_root):
    def invoke(*args, expect_exit=0):
        result = CliRunner().invoke(
            trade, [*args, "--deployments", str(manifest_root)], obj={"provider": chain.provider}
        )
        assert result.exit_code == expect_exit, result.output
        return result.output

    return invoke


def test_markets_lists_every_market_with_prices_and_funding(run):
    output = run("markets")
    for name, price in (
        ("BTC-USD", "95,000.0000"),
        ("ETH-USD", "3,500.0000"),
        ("SOL-USD", "150.0000"),
    ):
        assert cells(output, name)[1:3] == [price, price]  # index and mark
    assert "20x" in output and "10x" in output


def test_deposit_open_account_close_withdraw(run, sdk, trader):
    assert cells(run("deposit", "10000", "--account", TRADER), "collateral") == [
        "collateral",
        "10,000.000000",
    ]

    opened = run("open", "BTC-USD", "1", "long", "--account", TRADER, "--slippage", "0.01")
    assert "95,000.4750" in opened and "57.000285" in opened  # fill price, taker fee

    shown = run("account", "--account", TRADER)
    assert cells(shown, "equity") == ["equity", "9,942.524715"]
    assert cells(shown, "leverage") == ["leverage", "9.5549"]
    # market, side, size, entry, mark, notional, uPnL, funding owed, liquidation price
    assert cells(shown, "BTC-USD") == [
        "BTC-USD",
        "long",
        "1.000000",
        "95,000.4750",
        "95,000.0000",
        "95,000.000000",
        "-0.475000",
        "0.000000",
        "87,238.4362",
    ]

    closed = run("close", "BTC-USD", "--account", TRADER)
    assert cells(closed, "-1.000000")[:3] == [
        "-1.000000",
        "0.000000",
        "95,000.4750",
    ]  # delta, size, fill
    free = sdk.account(trader).free_collateral
    assert 9_923 < free < 9_924  # 10,000 less both fees and a few seconds of funding

    withdrawn = run("withdraw", str(free), "--account", TRADER)
    assert "no open positions" in withdrawn
    assert sdk.wallet_balance(trader) == 990_000 + free
    assert sdk.account(trader).free_collateral == 0


def test_account_of_another_owner_by_address(run, trader):
    assert f"account {trader.address} / subaccount 0" in run("account", trader.address)


def test_errors_are_reported_without_a_traceback(run):
    output = run("open", "DOGE-USD", "1", "long", "--account", TRADER, expect_exit=1)
    assert "Error: unknown market 'DOGE-USD' (listed: BTC-USD, ETH-USD, SOL-USD)" in output
    output = run("account", expect_exit=2)
    assert "give an OWNER address or --account" in output


def test_a_manifest_for_another_chain_state_is_refused(chain, manifest_root, tmp_path):
    stale = Deployment.load("ethereum:local", manifest_root)
    stale.engine = "0x000000000000000000000000000000000000dEaD"
    stale.save(tmp_path)
    result = CliRunner().invoke(
        trade, ["markets", "--deployments", str(tmp_path)], obj={"provider": chain.provider}
    )
    assert result.exit_code == 1
    assert (
        "no code at the engine address 0x000000000000000000000000000000000000dEaD" in result.output
    )
    assert "run `ape run deploy`" in result.output
