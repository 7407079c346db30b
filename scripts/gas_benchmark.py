"""`ape run gas_benchmark` (or `make bench`): gas per operation on anvil, into docs/benchmarks.md."""

from vyperp.cli.gas_benchmark import cli

__all__ = ["cli"]
