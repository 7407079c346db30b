"""The order commands behind `ape run orders place|list|cancel` (scripts/orders.py): the trader's
orders on the OrderBook named in the manifest.

    ape run orders place BTC-USD market buy 1 --account TEST::2
    ape run orders place BTC-USD limit sell 0.5 --limit-price 99000 --post-only --account TEST::2
    ape run orders place BTC-USD stop-loss sell 1 --trigger-price 90000 --account TEST::2
    ape run orders list --account TEST::2
    ape run orders cancel 7 --account TEST::2

Sizes are positive base units, the side gives the direction; prices and fees are human units. The logic lives in
vyperp.orders; docs/orders.md describes the order types and when they execute.
"""

import click
from ape import chain, project
from ape.cli import account_option
from rich.console import Console
from rich.table import Table

from vyperp.cli.common import (
    ACCEPTS_NEGATIVE, Amount, DevnetCommand, Fraction, OneLineErrors, deployments_option, echo_json,
    json_option, subaccount_option,
)
from vyperp.orders import DEFAULT_SLIPPAGE, OrderKind, connect_client

KINDS = [kind.name.lower().replace("_", "-") for kind in OrderKind]


def _client(deployments_root, order_book):
    return connect_client(project, chain.provider.network_choice, deployments_root, order_book=order_book)


def common(command):
    command = deployments_option(command)
    command = click.option("--order-book", default=None, help="OrderBook address (default: the manifest's).")(command)
    return account_option()(command)


@click.group(cls=OneLineErrors, help=__doc__)
def cli():
    pass


@cli.command(cls=DevnetCommand, context_settings=ACCEPTS_NEGATIVE)
@common
@click.argument("market")
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@click.argument("side", type=click.Choice(["buy", "sell"]), metavar="SIDE")
@click.argument("size", type=Amount("size"))
@click.option("--limit-price", type=Amount("limit price"), help="Limit orders: the limit; others: the worst fill accepted.")
@click.option("--trigger-price", type=Amount("trigger price"), help="Stop-loss and take-profit: the arming price.")
@click.option("--slippage", type=Fraction(), default=DEFAULT_SLIPPAGE, show_default=True)
@click.option("--keeper-fee", type=Amount("keeper fee"), help="Collateral paid to whoever fills it, refunded otherwise (default: the market's minimum).")
@click.option("--lifetime", type=click.IntRange(min=1), help="Seconds until expiry.")
@click.option("--reduce-only", is_flag=True)
@click.option("--post-only", is_flag=True)
@click.option("--on-mark", is_flag=True, help="Trigger on the mark price instead of the index.")
@subaccount_option
def place(account, deployments_root, order_book, market, kind, side, size, limit_price, trigger_price, slippage,
          keeper_fee, lifetime, reduce_only, post_only, on_mark, subaccount):
    """Commit a KIND order to SIDE SIZE base units of MARKET."""
    client = _client(deployments_root, order_book)
    order_id = client.place(
        client.market_id(market), kind, size if side == "buy" else -size, account, limit_price=limit_price, trigger_price=trigger_price,
        slippage=slippage, keeper_fee=keeper_fee, lifetime=lifetime, reduce_only=reduce_only,
        post_only=post_only, trigger_on_mark=on_mark, subaccount=subaccount)
    _print_orders(client, [client.order(order_id)], f"order {order_id} committed")


@cli.command(name="list", cls=DevnetCommand)
@common
@json_option
def list_(account, deployments_root, order_book, as_json):
    """List the account's pending orders."""
    client = _client(deployments_root, order_book)
    orders = client.pending(account)
    if as_json:
        echo_json([{"market": client.market_names.get(order.market_id, str(order.market_id)), **vars(order)}
                   for order in orders])
        return
    _print_orders(client, orders, f"pending orders of {account.address}")


@cli.command(cls=DevnetCommand)
@common
@click.argument("order_id", type=click.IntRange(min=0))
def cancel(account, deployments_root, order_book, order_id):
    """Cancel ORDER_ID, its fee back to its owner: your resting order while it is neither armed nor
    executable, or anyone's order that is over (expired, fill round out of the window, operator revoked)."""
    client = _client(deployments_root, order_book)
    if client.order(order_id) is None:
        raise click.ClickException(f"no pending order {order_id}")
    client.cancel(order_id, account)
    click.echo(f"order {order_id} cancelled")


def _print_orders(client, orders, title):
    table = Table(title=title)
    for column in ("id", "market", "kind", "size", "acceptable", "trigger", "flags", "expiry", "fee"):
        table.add_column(column)
    for order in orders:
        flags = ",".join(name for name, on in (("reduce-only", order.reduce_only), ("post-only", order.post_only),
                                               ("on-mark", order.trigger_on_mark),
                                               ("armed", order.armed), ("by-operator", order.committer is not None)) if on)
        table.add_row(str(order.id), client.market_names.get(order.market_id, str(order.market_id)),
                      order.kind.name.lower().replace("_", "-"), f"{order.size_delta:f}",
                      f"{order.acceptable_price:,.4f}",
                      "" if order.trigger_price is None else f"{order.trigger_price:,.4f}",
                      flags, str(order.expiry), f"{order.keeper_fee:f}")
    Console(width=140).print(table)
