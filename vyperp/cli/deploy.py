"""`ape run deploy`: deploy vyperp to the connected network, or bring its deployment up to date.

Markets and settings come from config/markets.yaml; the manifest goes to
deployments/<ecosystem>_<network>.json. A second run reuses what the manifest names (after
checking the chain id and the code at every address) and only lists markets the config gained.

On local networks the deployer is test account 0, the oracle reporters are test accounts 6, 7
and 8 (quorum 2), every new oracle gets a first price, and the first run funds the devnet:
test accounts 2 and 3 (traders) get 1,000,000 dUSD each and test account 4 (LP) gets
10,000,000 dUSD, of which it deposits 5,000,000 into the LP vault (amounts in the config).
Other networks need --account.
"""

from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand, account_option

from vyperp import roles
from vyperp.errors import VyperpError
from vyperp.network_deploy import DEFAULT_CONFIG, NetworkPlan, deploy_network


@click.command(cls=ConnectedProviderCommand, help=__doc__)
@account_option(prompt=False)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    default=lambda: project.path / DEFAULT_CONFIG,
    help="Markets and deploy settings.",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    default=lambda: project.path / "deployments",
    help="Directory of the manifests.",
)
@click.option("--force", is_flag=True, help="Deploy markets whose open-interest cap breaks rule S3.")
def cli(provider, account, config_path, root, force):
    try:
        # the whole config is checked before anything is sent
        plan = NetworkPlan.load(provider.network_choice, config_path)
    except (ValueError, VyperpError) as error:
        raise click.ClickException(str(error)) from None
    local = provider.network.is_local
    if account is None:
        if not local:
            raise click.UsageError("--account is required on a non-local network")
        account = accounts.test_accounts[roles.ADMIN]
    test_accounts = accounts.test_accounts if local else ()
    try:
        report = deploy_network(
            project,
            plan,
            account,
            reporters=roles.reporters_of(test_accounts) if local else (),
            local_accounts=test_accounts,
            root=root,
            log=click.echo,
            force=force,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    path = report.deployment.path_for(plan.network, root)
    if report.changed_anything:
        click.echo(f"wrote {path} (chain {chain.chain_id}, block {chain.blocks.head.number})")
    else:
        click.echo(f"{path} is up to date: nothing deployed")
