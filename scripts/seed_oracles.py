"""`ape run seed-oracles` (or `seed_oracles`): replays a price path through a market's oracle.

`scripts/seed-oracles.py` is a symlink to this file: `ape run` names a command after its file (the
click command's own name is ignored), and both names are in use."""

from vyperp.cli.seed import cli

__all__ = ["cli"]
