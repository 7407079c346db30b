"""`ape run devnet`: a persistent local devnet with keepers, simulated traders and a dashboard.

    ape run devnet up                        # what `make devnet` runs; Ctrl-C stops everything
    ape run devnet up --duration 30 --no-dashboard
    APE_FOUNDRY_HOST=http://127.0.0.1:8545 ape run devnet dashboard --network ethereum:local:foundry

`up` starts anvil on --port with its state in --state-dir (resumed when the directory has one),
deploys from config/markets.yaml unless the manifest already matches the chain, starts the
keepers and the trader simulation as child processes (`ape run devnet loop <name>`, logs under
<state-dir>/logs/), and shows the dashboard. The devnet itself is vyperp.devnet.
"""

import signal
from pathlib import Path

import click
from ape import accounts, config, networks, project

from vyperp.cli.common import DevnetCommand, deployments_option
from vyperp.devnet import DevnetError
from vyperp.devnet.loops import PROCESSES, LoopContext, run_loop
from vyperp.devnet.settings import (
    DEFAULT_PORT,
    DEFAULT_STATE_DIR,
    NETWORK,
    DevnetPaths,
    DevnetSettings,
)
from vyperp.devnet.status import read_statuses, status_lines
from vyperp.devnet.supervisor import Devnet, wait
from vyperp.manifest import Deployment


state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE_DIR,
    show_default=True, help="Chain state, logs and process status.",
)
oracle_step_option = click.option(
    "--oracle-step", type=click.IntRange(min=1), default=5, show_default=True,
    help="Seconds between two rounds of a market's oracle.",
)


@click.group(help=__doc__)
def cli():
    pass


@cli.command()
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, envvar="DEVNET_PORT",
              help="anvil's port (env DEVNET_PORT).")
@state_dir_option
@deployments_option
@oracle_step_option
@click.option("--duration", type=float, help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--dashboard/--no-dashboard", default=True, show_default=True)
@click.option("--process", "processes", multiple=True, type=click.Choice(list(PROCESSES)),
              help="Start only these processes (repeatable; default: all).")
@click.option("--no-processes", is_flag=True, help="Start no keeper or simulation.")
def up(port, state_dir, deployments_root, oracle_step, duration, dashboard, processes, no_processes):
    """Start (or resume) the devnet; Ctrl-C stops it and saves the chain."""
    settings = DevnetSettings(
        paths=DevnetPaths(state_dir),
        port=port,
        deployments=deployments_root,
        config=project.path / "config" / "markets.yaml",
        oracle_step_seconds=oracle_step,
        processes=() if no_processes else (tuple(processes) or None),
    )
    devnet = Devnet(settings, log=click.echo)
    # `kill <pid>` stops the devnet as Ctrl-C does, rather than orphaning anvil
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        run = devnet.start(project, accounts, networks, config)
        click.echo(
            f"devnet {'resumed' if run.resumed else 'created'} at block {run.start_block}; "
            f"manifest {run.manifest}; deployed: {', '.join(run.deployed) or 'nothing'}"
        )
        if dashboard:
            from vyperp.devnet.dashboard import DashboardReader, run_live

            reader = DashboardReader(
                project, Deployment.load(NETWORK, deployments_root), status_dir=settings.paths.status
            )
            run_live(reader, duration=duration, on_refresh=devnet.supervise)
        else:
            wait(duration, on_tick=devnet.supervise)
        if given_up := devnet.given_up():
            click.echo(f"{', '.join(given_up)} kept exiting; see {settings.paths.logs}")
    except DevnetError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        click.echo("stopping the devnet")
    finally:
        devnet.stop()
        click.echo(status_lines(read_statuses(settings.paths.status)))


@cli.command(cls=DevnetCommand)
@click.argument("name", type=click.Choice(list(PROCESSES)))
@state_dir_option
@deployments_option
@oracle_step_option
@click.option("--duration", type=float, help="Stop after this many seconds.")
def loop(name, state_dir, deployments_root, oracle_step, duration):
    """One devnet process (a keeper or the simulation), stepping until SIGINT/SIGTERM."""
    settings = DevnetSettings(
        paths=DevnetPaths(state_dir), deployments=deployments_root, oracle_step_seconds=oracle_step
    )
    spec = PROCESSES[name]
    context = LoopContext(project, accounts, Deployment.load(NETWORK, deployments_root), settings)
    step = spec.build(context)
    run_loop(
        name,
        step,
        interval=spec.interval,
        status_dir=settings.paths.status,
        log=click.echo,
        duration=duration,
    )


@cli.command(cls=DevnetCommand)
@state_dir_option
@deployments_option
@click.option("--duration", type=float, help="Stop after this many seconds.")
def dashboard(state_dir, deployments_root, duration):
    """The live dashboard alone, attached to a running devnet."""
    from vyperp.devnet.dashboard import DashboardReader, run_live

    reader = DashboardReader(
        project, Deployment.load(NETWORK, deployments_root), status_dir=DevnetPaths(state_dir).status
    )
    try:
        run_live(reader, duration=duration)
    except KeyboardInterrupt:
        pass
