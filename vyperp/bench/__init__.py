"""Benchmarks (not part of `make test`): `gas_scenarios` (gas per operation on a steady chain),
`profiler` (where that gas goes, by storage slot), `keeper_crash` (the liquidator's latency after
a crash among thousands of accounts) and `report` (docs/benchmarks.md). Their commands are
vyperp/cli/gas_benchmark.py and vyperp/cli/keeper_benchmark.py; their anvil is the devnet's
launcher (vyperp/devnet/anvil.py)."""
