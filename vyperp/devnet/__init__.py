"""The devnet: a persistent anvil with vyperp deployed, its keepers, a trader simulation and a
live dashboard, supervised by one process (`ape run devnet up`, which `make devnet` runs).

Processes. The supervisor starts anvil itself with ``--state`` (chain state saved on exit and
every ``state_interval`` seconds, loaded on the next start) on a fixed port, then attaches Ape to
it: ape-foundry connects to an anvil already listening at ``APE_FOUNDRY_HOST`` instead of
starting its own, which leaves ``host: auto`` in ape-config.yaml (a free port per test run)
untouched. It deploys (``deploy_network`` is idempotent: a resumed chain keeps its manifest),
then starts every entry of ``loops.PROCESSES`` as a child ``ape run devnet loop <name>`` with the same
``APE_FOUNDRY_HOST``, each logging to ``<state dir>/logs/<name>.log``. A liquidator or an order
keeper is one more ``LoopSpec`` in ``loops.KEEPERS``.

Why plain loops rather than ``silverback run``: a devnet's automining anvil makes blocks only
when a transaction arrives, so block handlers stall on an idle chain and the fastest cron is a
minute, while the oracle must publish every few seconds to keep prices fresh (and to move chain
time). A loop steps on wall-clock time. The bots in bots/ drive the same keeper classes for
operators who want Silverback.

Modules: `anvil` (the one anvil launcher, shared with the benchmarks), `settings` (port,
files), `loops` (the keeper and simulation processes), `status` (their status files),
`supervisor` (starts and restarts everything), `dashboard` (the live view).

Status. Each loop writes ``<state dir>/status/<name>.json`` after every step (what it last
did, steps, errors); the dashboard shows it beside the chain's figures without any RPC request.
"""

from vyperp.errors import VyperpError


class DevnetError(VyperpError):
    """The devnet cannot start as asked."""
