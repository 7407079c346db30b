"""What the command lines (`ape run trade`, `ape run orders`, ...) share: one-line errors, checked
amounts, ``--json`` output, the options several commands take, and the check that the devnet
answers before connecting.

Every refusal -- bad input, an unknown market, a missing manifest, a transaction whose preflight
(``eth_call``) reverts -- ends the command with one line ``error: <reason>`` on stderr and a
non-zero exit code (2 for usage errors, 1 otherwise), never a traceback. A revert's reason is the
contract's own ``module: reason`` string.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from ape import project
from ape.api import ProviderAPI
from ape.cli import ConnectedProviderCommand
from ape.cli.commands import get_param_from_ctx
from ape.exceptions import ApeException, ContractLogicError
from pydantic import ValidationError

from vyperp.devnet.anvil import rpc_answers
from vyperp.devnet.settings import DEFAULT_PORT
from vyperp.errors import VyperpError
from vyperp.manifest import DEFAULT_ROOT

# Refusals the commands turn into one line: every vyperp error (the SDK's, the order client's, a
# manifest that does not fit), and anything Ape raises (a revert in a preflight, a bad address).
REFUSALS = (VyperpError, ApeException, ValidationError)


# ``--deployments``: the directory of the manifests, passed as ``deployments_root``.
deployments_option = click.option(
    "--deployments", "deployments_root", type=click.Path(file_okay=False, path_type=Path),
    default=lambda: project.path / DEFAULT_ROOT, show_default="deployments/",
    help="Directory of the deployment manifests.",
)
subaccount_option = click.option(
    "--subaccount", type=click.IntRange(min=0), default=0, show_default=True, help="Subaccount id."
)


class OneLineError(click.ClickException):
    """A ClickException shown as the single line ``error: <message>``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def reason(error: BaseException) -> str:
    """One line for an error: a revert's reason string, else the message's first line."""
    if isinstance(error, ContractLogicError):
        message = error.revert_message or "reverted without a reason"
    elif isinstance(error, click.ClickException):
        message = error.format_message()
    else:
        message = str(error) or type(error).__name__
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class OneLineErrors(click.Group):
    """A click group whose commands end every refusal with one ``error: ...`` line.

    Parsing a subcommand's arguments and running it both happen in ``Group.invoke``, so usage
    errors (exit code 2) and the SDK's and Ape's errors (exit code 1) are caught here, also when
    `ape run` nests the group under its own command.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OneLineError:
            raise
        except click.UsageError as error:
            raise OneLineError(reason(error), exit_code=2) from None
        except click.ClickException as error:
            raise OneLineError(reason(error), exit_code=error.exit_code) from None
        except REFUSALS as error:
            raise OneLineError(reason(error)) from None


class DevnetCommand(ConnectedProviderCommand):
    """A command that acts on a deployed chain: on the local foundry network (the devnet's), it
    refuses in one line when no devnet answers, before Ape connects.

    Connecting there would start an anvil: ape-foundry starts one at ``APE_FOUNDRY_HOST`` when
    nothing answers, or on a free port without it, and the command would then run on an empty
    chain and blame the manifest. A provider passed in the click context (tests) is used as is.
    """

    def invoke(self, ctx: click.Context) -> Any:
        given = isinstance(ctx.obj, dict) and "provider" in ctx.obj
        provider = get_param_from_ctx(ctx, "network")
        if self.callback is not None and not given and isinstance(provider, ProviderAPI):
            refuse_without_devnet(provider)
        return super().invoke(ctx)


def refuse_without_devnet(provider: ProviderAPI) -> None:
    """OneLineError unless an anvil answers where ``provider`` (ape-foundry on a local network)
    would attach; says how to start the devnet (`make devnet`) or attach to it."""
    if provider.name != "foundry" or provider.network.name != "local":
        return  # not the devnet's network
    host = os.environ.get("APE_FOUNDRY_HOST") or provider.settings.host
    devnet_url = f"http://127.0.0.1:{os.environ.get('DEVNET_PORT', DEFAULT_PORT)}"
    if host in (None, "auto"):  # a new anvil on a free port, with nothing deployed
        if rpc_answers(devnet_url):
            raise OneLineError(
                f"APE_FOUNDRY_HOST is not set: `export APE_FOUNDRY_HOST={devnet_url}` to attach "
                "to the devnet answering there"
            )
        raise OneLineError(
            f"no devnet answers at {devnet_url}: start it with "
            f"`{start_devnet_command(devnet_url)}`, then `export APE_FOUNDRY_HOST={devnet_url}`"
        )
    url = host if host.startswith("http") else f"http://{host}"
    if not rpc_answers(url):
        raise OneLineError(f"no devnet answers at {url}: start it with `{start_devnet_command(url)}`")


def start_devnet_command(url: str) -> str:
    port = url.rsplit(":", 1)[-1].rstrip("/")
    return "make devnet" if port == str(DEFAULT_PORT) else f"DEVNET_PORT={port} make devnet"


def parse_decimal(param_type: click.ParamType, value, param, ctx, refusal: str) -> Decimal:
    """`value` as a Decimal; anything else fails the parameter with "<refusal>, not <value>"."""
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        param_type.fail(f"{refusal}, not {value!r}", param, ctx)


class Amount(click.ParamType):
    """A positive, finite decimal number (collateral amount, size). "-5" reaches it as a value
    (the commands ignore unknown options) and is refused as not positive."""

    name = "amount"

    def __init__(self, what: str = "amount"):
        self.what = what

    def convert(self, value, param, ctx) -> Decimal:
        number = parse_decimal(self, value, param, ctx, f"{self.what} must be a number")
        if not number.is_finite():
            self.fail(f"{self.what} must be a finite number, not {value!r}", param, ctx)
        if number <= 0:
            self.fail(f"{self.what} must be positive, not {value}", param, ctx)
        return number


class Fraction(click.ParamType):
    """A decimal fraction in [0, 1) (slippage)."""

    name = "fraction"

    def convert(self, value, param, ctx) -> Decimal:
        number = parse_decimal(self, value, param, ctx, "must be a number")
        if not number.is_finite() or not 0 <= number < 1:
            self.fail(f"must be in [0, 1), not {value}", param, ctx)
        return number


# A command whose arguments may look like options ("-5"): unknown options reach the arguments,
# where the Amount type refuses them by value.
ACCEPTS_NEGATIVE = {"ignore_unknown_options": True}


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of tables (for scripts)."
)


def plain(value: Any) -> Any:
    """A JSON-ready copy: dataclasses as objects, Decimals as exact strings, enums as values,
    infinities as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return None if not value.is_finite() else f"{value:f}"
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, int) else value.name.lower()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), indent=2))
