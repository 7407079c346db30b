"""`ape run keeper_benchmark`: liquidator latency after a crash among 1,000 and 10,000 accounts;
writes its block of docs/benchmarks.md. Not part of `make test` (the 10,000 run takes minutes).

    ape run keeper_benchmark [--accounts 1000 --accounts 10000]

Every size gets its own fresh anvil (started by the command, without Ape's step tracing); see
vyperp/bench/keeper_crash.py for the scenario and what is measured.
"""

import platform
from pathlib import Path

import click
from ape import accounts, networks, project

from vyperp.bench.keeper_crash import render_markdown, run_crash
from vyperp.bench.report import REPORT, write_block
from vyperp.devnet.anvil import fresh_anvil


@click.command(help=__doc__)
@click.option("--accounts", "sizes", type=int, multiple=True, default=(1_000, 10_000),
              show_default=True, help="Accounts with open positions (repeat for several runs).")
@click.option("--output", type=click.Path(path_type=Path), default=REPORT, show_default=True)
def cli(sizes, output):
    results = []
    for size in sizes:
        click.echo(f"{size:,} accounts: opening positions on a fresh anvil ...")
        with fresh_anvil(networks) as provider:
            result = run_crash(project, accounts, provider, size)
        click.echo(
            f"  set-up {result.population.setup_seconds:.1f} s; {result.liquidatable:,} "
            f"liquidatable; known after {result.set_known_s:.3f} s; last mined after "
            f"{result.last_mined_s} s; {result.keeper_requests} keeper requests; "
            f"exact: {result.exact}")
        results.append(result)
    environment = (f"Machine: {platform.machine()}, Python {platform.python_version()}, "
                   "anvil 1.7.1 from npm.")
    write_block("keepers", render_markdown(results, environment), output)
    click.echo(f"wrote {output}")
