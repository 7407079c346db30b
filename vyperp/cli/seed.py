"""`ape run seed-oracles`: replays a price path through a market's oracle reporters on a devnet.

    ape run seed-oracles --market BTC-USD --csv data/paths/btc.csv --steps 100
    ape run seed-oracles --market ETH-USD --csv data/paths/crash.csv
    ape run seed-oracles --market SOL-USD --generate --seed 7 --vol 0.9 --jumps 365 --steps 300

Each point becomes one oracle round at `start + t`: chain time moves as the path says, and only
so (see `vyperp.keepers.oracle_feeder`). A path replays its moves from the market's current
on-chain price (its prices times current / first; `--start-price` for another start), or, with
`--absolute`, a CSV's own prices. The oracle and its reporters come from the deployment manifest
`deployments/<network>.json`; the reporters must be this node's test accounts.

Beside a running devnet (`ape run devnet up`, state in `--state-dir`) the replay claims the
market's feed and those of the other markets from the devnet's oracle loop
(`vyperp.devnet.feed_claims`): the loop leaves them alone until the replay exits, then follows
on from their last prices. Meanwhile the other markets are republished at their last answer
whenever the replay's time would make them half their `max_price_age` old, so every market
keeps a usable price at every block of the replay.
"""

from decimal import Decimal
from pathlib import Path

import click

from vyperp.cli.common import Amount, DevnetCommand, deployments_option
from vyperp.cli.devnet import state_dir_option
from vyperp.errors import VyperpError
from vyperp.keepers.oracle_feeder import (
    BPS,
    HeldFeeds,
    OracleFeeder,
    PathSource,
    signers_among_test_accounts,
)
from vyperp.manifest import Deployment
from vyperp.sim.paths import JumpDiffusion, PricePath, generate_path


def read_deployment(network_choice: str, root: Path) -> Deployment:
    if not Deployment.exists(network_choice, root):
        path = Deployment.path_for(network_choice, root)
        raise click.ClickException(f"no deployment manifest at {path}: run the deploy first")
    try:
        return Deployment.load(network_choice, root)
    except VyperpError as error:
        raise click.ClickException(str(error)) from None


def max_price_ages(project, deployment: Deployment, names) -> dict[str, int]:
    """The engine's `max_price_age` of the named markets, in one multicall."""
    from ape_ethereum.multicall import Call

    from vyperp.chain import ensure_multicall
    from vyperp.contracts import engine_contract
    from vyperp.params import MarketConfig

    names = list(names)
    if not names:
        return {}
    ensure_multicall()
    engine = engine_contract(project, deployment.engine)
    call = Call()
    for name in names:
        call.add(engine.params, deployment.market(name).id)
    return {
        name: int(MarketConfig.from_tuple(params).max_price_age)
        for name, params in zip(names, call(), strict=True)
    }


@click.command(cls=DevnetCommand, name="seed-oracles")
@click.option("--market", required=True, help="Market name in the manifest, e.g. BTC-USD.")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A t,price CSV path (data/paths/*.csv).")
@click.option("--absolute", is_flag=True,
              help="Publish the CSV's own prices (default: its moves from the current price).")
@click.option("--generate", is_flag=True, help="Generate a jump-diffusion path instead of a CSV.")
@click.option("--seed", default=1, show_default=True, help="Generator seed.")
@click.option("--vol", default=0.6, show_default=True, help="Annual volatility.")
@click.option("--drift", default=0.0, show_default=True, help="Annual drift.")
@click.option("--jumps", default=0.0, show_default=True, help="Jumps per year.")
@click.option("--jump-mean", default=0.0, show_default=True, help="Mean log size of a jump.")
@click.option("--jump-stdev", default=0.0, show_default=True, help="Stdev of a jump's log size.")
@click.option("--step-seconds", default=12, show_default=True, help="Seconds between generated points.")
@click.option("--steps", type=click.IntRange(min=1),
              help="Rounds to publish (default: the whole CSV; 100 generated).")
@click.option("--start-price", type=Amount("start price"),
              help="First price of the path (default: the market's current price).")
@state_dir_option
@deployments_option
def cli(provider, market, csv_file, absolute, generate, seed, vol, drift, jumps, jump_mean,
        jump_stdev, step_seconds, steps, start_price, state_dir, deployments_root):
    """Publishes a price path through a market's oracle, one round per point."""
    from ape import accounts, project

    from vyperp.devnet.feed_claims import claim_feeds

    if bool(csv_file) == generate:
        raise click.UsageError("give exactly one of --csv and --generate")
    if absolute and (generate or start_price):
        raise click.UsageError("--absolute publishes a CSV's own prices: not with --generate "
                               "or --start-price")
    deployment = read_deployment(provider.network.choice, deployments_root)
    try:
        deployment.market(market)
        path = PricePath.load(csv_file) if csv_file else None
        # every feed the replay publishes to: its market's, and the others it keeps fresh
        reporters = {name: signers_among_test_accounts(accounts, entry.reporters)
                     for name, entry in deployment.markets.items() if entry.reporters}
    except (VyperpError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if market not in reporters:
        raise click.ClickException(f"{market}'s feed has no reporters in the manifest")

    def waiting(name: str, holder: str) -> None:
        click.echo(f"waiting for {name}'s feed, held by {holder or 'another process'}")

    with claim_feeds(state_dir, reporters, f"seed-oracles replaying {market}", on_wait=waiting):
        oracle = project.PriceOracle.at(deployment.market(market).oracle)
        decimals = int(oracle.decimals())
        current = Decimal(int(oracle.latestAnswer())).scaleb(-decimals)
        first_price = start_price or current
        if first_price == 0 and not absolute:
            raise click.UsageError("the oracle has no price yet: give --start-price")
        if generate:
            model = JumpDiffusion(annual_volatility=vol, annual_drift=drift, jumps_per_year=jumps,
                                  jump_mean=jump_mean, jump_stdev=jump_stdev)
            path = generate_path(model, start_price=first_price, steps=(steps or 100) - 1,
                                 step_seconds=step_seconds, seed=seed, price_decimals=decimals)
        elif absolute:
            refuse_a_jump_the_oracle_would_clamp(path, current, int(oracle.max_deviation_bps()),
                                                 market)
        else:
            path = path.scaled(first_price, price_decimals=decimals)
        try:
            feeder = OracleFeeder(oracle, reporters[market], PathSource(path))
        except ValueError as error:  # fewer reporters than the quorum
            raise click.ClickException(str(error)) from None

        others = [name for name in reporters if name != market]
        ages = max_price_ages(project, deployment, others)
        oracles = {name: project.PriceOracle.at(deployment.market(name).oracle) for name in others}
        held = HeldFeeds({name: (oracles[name], reporters[name], ages[name]) for name in others})
        rounds = feeder.run(steps, on_round=lambda published: held.refresh(published.timestamp))
    if not rounds:
        raise click.ClickException("no round published")
    clamped = sum(1 for published in rounds if published.clamped)
    click.echo(
        f"{market}: {len(rounds)} rounds, {rounds[0].price} -> {rounds[-1].price}, "
        f"rounds {rounds[0].round_id}..{rounds[-1].round_id}, "
        f"time {rounds[0].timestamp}..{rounds[-1].timestamp}"
        + (f", {clamped} clamped by the deviation bound" if clamped else "")
    )
    if others:
        click.echo(f"held {', '.join(others)} at their last answer: {held.republished} rounds")


def refuse_a_jump_the_oracle_would_clamp(path: PricePath, current: Decimal, max_deviation_bps: int,
                                         market: str) -> None:
    """An absolute path must start within one round's move of the current price: the oracle
    would clamp the jump, and the engine's breaker would halt the market on it."""
    if current == 0:
        return  # no answer yet: the first round may be anything
    jump = abs(path[0].price / current - 1)
    if jump * BPS > max_deviation_bps:
        raise click.ClickException(
            f"the path starts at {path[0].price}, {jump:.1%} from {market}'s {current:f}; a round "
            f"may move it {Decimal(max_deviation_bps) / BPS:.0%} at most: drop --absolute to "
            f"replay its moves from {current:f}"
        )
