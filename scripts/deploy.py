"""`ape run deploy`: deploy vyperp to the connected network, or bring its deployment up to date."""

from vyperp.cli.deploy import cli

__all__ = ["cli"]
