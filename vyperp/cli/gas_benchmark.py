"""`ape run gas_benchmark` (or `make bench`): gas per operation on anvil, into docs/benchmarks.md.
The scenario is vyperp.bench.gas_scenarios; each benchmark adds a function
`(net, sections) -> Section` to `BENCHMARKS`, run in order on the same chain."""

import datetime

import click
from ape.cli import ConnectedProviderCommand, network_option

from vyperp.bench import profiler
from vyperp.bench.gas_scenarios import (
    SteadyMarkets,
    core_benchmarks,
    liquidation_benchmarks,
    order_book_benchmarks,
    setup_lines,
)
from vyperp.bench.report import ROOT, Section, render_section, toolchain_line, write_markdown

BENCHMARKS = [
    core_benchmarks,
    liquidation_benchmarks,
    order_book_benchmarks,
    profiler.where_the_gas_goes,
]


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--explain", is_flag=True, help="Also print each traced transaction's storage slots and opcode gas.")
def cli(network, explain):
    """Measure gas per operation on a local anvil and write docs/benchmarks.md."""
    from ape import accounts, chain, project

    profiler.EXPLAIN = explain

    choice = chain.provider.network_choice
    click.echo(f"gas benchmark on {choice}")
    net = SteadyMarkets(project, chain, accounts)
    sections: list[Section] = []
    for benchmark in BENCHMARKS:
        sections.append(benchmark(net, sections))
    path = write_markdown(
        sections,
        date=datetime.date.today().isoformat(),
        toolchain=[toolchain_line()],
        setup=setup_lines(choice),
    )
    for section in sections:
        click.echo(render_section(section))
    click.echo(f"wrote {path.relative_to(ROOT)}")
