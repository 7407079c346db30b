"""`ape run seed-oracles`: replays a price path through a market's oracle reporters on a devnet.

    ape run seed-oracles --market BTC-USD --csv data/paths/btc.csv --steps 100
    ape run seed-oracles --market ETH-USD --csv data/paths/crash.csv --relative
    ape run seed-oracles --market SOL-USD --generate --seed 7 --vol 0.9 --jumps 365 --steps 300

Each point becomes one oracle round at `start + t` (devnet time moves along the path; see
`vyperp.keepers.oracle_feeder`). The oracle and its reporters come from the deployment manifest
`deployments/<network>.json`; the reporters must be this node's test accounts.
A relative path (`--relative`, e.g. crash.csv) and a generated one start at the oracle's current
price unless `--start-price` is given.
"""

from decimal import Decimal
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand

from vyperp.cli.common import deployments_option
from vyperp.errors import VyperpError
from vyperp.keepers.oracle_feeder import OracleFeeder, PathSource, signers_among_test_accounts
from vyperp.manifest import Deployment, MarketEntry
from vyperp.sim.paths import JumpDiffusion, PricePath, generate_path


def read_market(network_choice: str, market: str, root: Path) -> MarketEntry:
    """The market's entry of the deployment manifest."""
    if not Deployment.exists(network_choice, root):
        path = Deployment.path_for(network_choice, root)
        raise click.ClickException(f"no deployment manifest at {path}: run the deploy first")
    try:
        return Deployment.load(network_choice, root).market(market)
    except VyperpError as error:
        raise click.ClickException(str(error)) from None


@click.command(cls=ConnectedProviderCommand, name="seed-oracles")
@click.option("--market", required=True, help="Market name in the manifest, e.g. BTC-USD.")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A t,price CSV path (data/paths/*.csv).")
@click.option("--relative", is_flag=True, help="The CSV's prices are multipliers (start at 1.0).")
@click.option("--generate", is_flag=True, help="Generate a jump-diffusion path instead of a CSV.")
@click.option("--seed", default=1, show_default=True, help="Generator seed.")
@click.option("--vol", default=0.6, show_default=True, help="Annual volatility.")
@click.option("--drift", default=0.0, show_default=True, help="Annual drift.")
@click.option("--jumps", default=0.0, show_default=True, help="Jumps per year.")
@click.option("--jump-mean", default=0.0, show_default=True, help="Mean log size of a jump.")
@click.option("--jump-stdev", default=0.0, show_default=True, help="Stdev of a jump's log size.")
@click.option("--step-seconds", default=12, show_default=True, help="Seconds between generated points.")
@click.option("--steps", type=int, help="Rounds to publish (default: the whole CSV; 100 generated).")
@click.option("--start-price", type=str, help="First price of a relative or generated path.")
@deployments_option
def cli(provider, market, csv_file, relative, generate, seed, vol, drift, jumps, jump_mean, jump_stdev, step_seconds, steps,
        start_price, deployments_root):
    """Publishes a price path through a market's oracle, one round per point."""
    from ape import accounts, project

    if bool(csv_file) == generate:
        raise click.UsageError("give exactly one of --csv and --generate")
    entry = read_market(provider.network.choice, market, deployments_root)
    oracle = project.PriceOracle.at(entry.oracle)
    first_price = Decimal(start_price) if start_price else None
    if first_price is None and (relative or generate):
        first_price = Decimal(int(oracle.latestAnswer())).scaleb(-int(oracle.decimals()))
        if first_price == 0:
            raise click.UsageError("the oracle has no price yet: give --start-price")

    if generate:
        model = JumpDiffusion(annual_volatility=vol, annual_drift=drift, jumps_per_year=jumps,
                              jump_mean=jump_mean, jump_stdev=jump_stdev)
        path = generate_path(model, start_price=first_price, steps=(steps or 100) - 1,
                             step_seconds=step_seconds, seed=seed,
                             price_decimals=int(oracle.decimals()))
    else:
        path = PricePath.load(csv_file)
        if relative:
            path = path.scaled(first_price, price_decimals=int(oracle.decimals()))

    try:
        reporters = signers_among_test_accounts(accounts, entry.reporters)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    feeder = OracleFeeder(oracle, reporters, PathSource(path))
    rounds = feeder.run(steps)
    if not rounds:
        raise click.ClickException("no round published")
    clamped = sum(1 for published in rounds if published.clamped)
    click.echo(
        f"{market}: {len(rounds)} rounds, {rounds[0].price} -> {rounds[-1].price}, "
        f"rounds {rounds[0].round_id}..{rounds[-1].round_id}, "
        f"time {rounds[0].timestamp}..{rounds[-1].timestamp}"
        + (f", {clamped} clamped by the deviation bound" if clamped else "")
    )
