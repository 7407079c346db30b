"""`ape run trade` end to end: the click group driven by CliRunner on the test chain.

The test passes the running test provider in the click context (Ape's ConnectedProviderCommand
uses ``ctx.obj["provider"]`` when present), so the commands act on the deployed devnet instead
of starting another anvil. ``TEST::2`` is the trader test account the deploy funded.
"""

import json
from decimal import Decimal

import pytest
from click.testing import CliRunner

from vyperp.cli.trade import cli as trade
from vyperp.manifest import Deployment

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
    assert output == "error: unknown market 'DOGE-USD' (listed: BTC-USD, ETH-USD, SOL-USD)\n"
    output = run("account", expect_exit=2)
    assert output == "error: give an OWNER address or --account\n"


@pytest.fixture
def trading(sdk, trader):
    """The trader with 10,000 deposited and a 1 BTC long (IM 4,750 at 20x)."""
    sdk.deposit(10_000, trader)
    sdk.open_position("BTC-USD", 1, "long", trader, slippage="0.01")
    return trader


def chain_state(sdk, trader):
    """What a refused command must leave as it was: nonce, wallet and engine collateral."""
    return trader.nonce, sdk.wallet_balance(trader), sdk.account(trader).collateral


# Bad inputs a new user met (issue #14): each is refused with one line, exit code 1 (2 for
# usage errors) and nothing sent. A revert's reason is the engine's own string.
BAD_INPUTS = [
    (("deposit", "abc"), 2, "error: Invalid value for 'AMOUNT': amount must be a number, not 'abc'"),
    (("deposit", "-5"), 2, "error: Invalid value for 'AMOUNT': amount must be positive, not -5"),
    (("deposit", "0"), 2, "error: Invalid value for 'AMOUNT': amount must be positive, not 0"),
    (("deposit", "nan"), 2, "error: Invalid value for 'AMOUNT': amount must be a finite number, not 'nan'"),
    (("deposit", "1e30"), 1, "error: {trader} holds 990000 of the collateral token, less than 1000000000000000000000000000000"),
    (("deposit", "1e90"), 1, "error: amount 1E+90 is too large"),
    (("deposit", "0.0000001"), 1, "error: 1E-7 has more than 6 decimals"),
    (("withdraw", "9000"), 1, "error: engine: insufficient margin"),
    (("withdraw", "1e30"), 1, "error: engine: insufficient collateral"),
    (("withdraw", "-5"), 2, "error: Invalid value for 'AMOUNT': amount must be positive, not -5"),
    (("open", "BTC-USD", "2", "long"), 1, "error: engine: insufficient margin"),
    (("open", "BTC-USD", "-1", "long"), 2, "error: Invalid value for 'SIZE': size must be positive, not -1"),
    (("open", "BTC-USD", "abc", "long"), 2, "error: Invalid value for 'SIZE': size must be a number, not 'abc'"),
    (("open", "BTC-USD", "1", "sideways"), 2, "error: Invalid value for 'SIDE': 'sideways' is not one of 'long', 'short'."),
    (("open", "BTC-USD", "1", "long", "--slippage", "2"), 2, "error: Invalid value for '--slippage': must be in [0, 1), not 2"),
    (("open", "DOGE-USD", "1", "long"), 1, "error: unknown market 'DOGE-USD' (listed: BTC-USD, ETH-USD, SOL-USD)"),
    (("close", "ETH-USD"), 1, "error: no position in ETH-USD"),
]


@pytest.mark.parametrize(("args", "exit_code", "line"), BAD_INPUTS, ids=[" ".join(case[0]) for case in BAD_INPUTS])
def test_bad_input_is_one_line_and_sends_nothing(chain, manifest_root, sdk, trading, capfd, args, exit_code, line):
    before = chain_state(sdk, trading)
    capfd.readouterr()
    result = CliRunner().invoke(
        trade,
        [*args, "--account", TRADER, "--deployments", str(manifest_root)],
        obj={"provider": chain.provider},
    )
    assert "Traceback" not in result.output
    assert result.output.splitlines() == [line.format(trader=trading.address)]
    assert result.exit_code == exit_code
    assert chain_state(sdk, trading) == before
    # nor does Ape print a call trace of the reverted preflight (it writes to the process's stdout,
    # which CliRunner does not capture)
    printed = capfd.readouterr()
    assert "tx.origin" not in printed.out + printed.err and "reverted" not in printed.out + printed.err


def test_read_commands_print_json(run, sdk, trading):
    account = json.loads(run("account", "--account", TRADER, "--json"))
    assert account["owner"] == trading.address
    assert Decimal(account["collateral"]) == Decimal("10000") - Decimal("57.000285")  # less the taker fee
    [position] = account["positions"]
    assert (position["market"], position["side"], Decimal(position["size"])) == ("BTC-USD", "long", 1)
    markets = json.loads(run("markets", "--json"))
    assert [market["name"] for market in markets] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert Decimal(markets[0]["index_price"]) == 95_000 and Decimal(markets[0]["max_leverage"]) == 20
    assert markets[0]["params"]["imr"] == 5 * 10**16  # the engine's 18-decimal integer
    assert Decimal(markets[0]["long_open_interest"]) == 1 and markets[0]["status"] == "open"


def test_orders_list_prints_json(chain, manifest_root, trading):
    from vyperp.cli.orders import cli

    common = ["--deployments", str(manifest_root), "--account", TRADER]

    def run_orders(*args):
        result = CliRunner().invoke(cli, [*args, *common], obj={"provider": chain.provider})
        assert result.exit_code == 0, result.output
        return result.output

    run_orders("place", "BTC-USD", "limit", "buy", "0.5", "--limit-price", "90000")
    [order] = json.loads(run_orders("list", "--json"))
    assert (order["market"], order["kind"], Decimal(order["size_delta"]), Decimal(order["acceptable_price"])) == (
        "BTC-USD", "limit", Decimal("0.5"), 90_000
    )
    refused = CliRunner().invoke(cli, ["place", "BTC-USD", "limit", "buy", "-1", "--limit-price", "90000", *common],
                                 obj={"provider": chain.provider})
    assert (refused.exit_code, refused.output) == (2, "error: Invalid value for 'SIZE': size must be positive, not -1\n")


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
