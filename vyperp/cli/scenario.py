"""`ape run scenario NAME`: plays scenarios/NAME.yaml on a fresh anvil with the real contracts
and keepers, and writes its report to reports/NAME/ (index.html, rounds.csv, summary.json).

    ape run scenario crash-50
    ape run scenario crash-50 --reduced        # the size the tests run
    ape run scenario --list

The file is checked whole before anything starts (an error names the file and the key). The
exit code is 1 when a solvency rule failed (the report says where), 0 when all held.
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import accounts, networks, project
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vyperp.cli.common import OneLineError, reason
from vyperp.devnet.anvil import fresh_anvil
from vyperp.errors import VyperpError
from vyperp.scenarios.report import write_report
from vyperp.scenarios.runner import run_scenario
from vyperp.scenarios.schema import SCENARIO_DIR, load_scenario, scenario_names

REPORTS = Path("reports")


@click.command(help=__doc__)
@click.argument("name", required=False)
@click.option("--reduced", is_flag=True, help="Run the scenario at its test size.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=REPORTS,
              show_default=True, help="Reports go to OUTPUT/NAME/.")
@click.option("--list", "list_them", is_flag=True, help="List the shipped scenarios.")
def cli(name, reduced, output, list_them):
    if list_them:
        for shipped in scenario_names():
            click.echo(shipped)
        return
    if name is None:
        raise OneLineError("name a scenario (ape run scenario --list shows them)", exit_code=2)
    path = SCENARIO_DIR / f"{name}.yaml"
    if not path.is_file():
        raise OneLineError(f"no scenario {path} (have: {', '.join(scenario_names())})",
                           exit_code=2)
    try:
        scenario = load_scenario(path)
    except VyperpError as error:
        raise OneLineError(reason(error), exit_code=2) from None
    if reduced:
        scenario = scenario.reduced_size()
    try:
        with fresh_anvil(networks) as provider, Progress(
            TextColumn(f"{scenario.name}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("rounds"), TimeElapsedColumn(),
        ) as progress:
            task = progress.add_task("rounds", total=scenario.rounds + 1)
            result = run_scenario(
                scenario, project, accounts, provider,
                on_round=lambda done, total: progress.update(task, completed=done))
    except VyperpError as error:
        raise OneLineError(reason(error)) from None
    report = write_report(result, output / scenario.name)
    for verdict in result.verdicts.values():
        click.echo(f"{verdict.rule}: {'pass' if verdict.passed else 'FAIL'} "
                   f"({verdict.checks} checks, worst {verdict.worst} {verdict.unit})")
    click.echo(f"report: {report}")
    if not result.passed:
        raise OneLineError("a solvency rule failed: see the report's verdict table")
