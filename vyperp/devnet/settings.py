"""One devnet's port, files and processes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8545
DEFAULT_STATE_DIR = Path(".devnet")
NETWORK = "ethereum:local"
NETWORK_CHOICE = "ethereum:local:foundry"


class _UnderRoot:
    """A path of `DevnetPaths`, named relative to its root."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, paths: DevnetPaths | None, owner) -> Path | _UnderRoot:
        return self if paths is None else paths.root / self.name


@dataclass(frozen=True)
class DevnetPaths:
    """Where one devnet keeps its chain state, logs and process status."""

    root: Path = DEFAULT_STATE_DIR
    state = _UnderRoot("state.json")  # anvil's dumped chain, loaded on a restart
    logs = _UnderRoot("logs")  # one <process>.log per child process
    status = _UnderRoot("status")  # the processes' status files (vyperp.devnet.status)
    anvil_pid = _UnderRoot("anvil.pid")  # finds an anvil whose supervisor was killed

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        for directory in (self.root, self.logs, self.status):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class DevnetSettings:
    """One devnet: its port, its files, and what runs on it."""

    paths: DevnetPaths = field(default_factory=DevnetPaths)
    port: int = DEFAULT_PORT
    deployments: Path = Path("deployments")
    config: Path = Path("config/markets.yaml")
    # seconds between anvil's state dumps, so even a killed anvil loses little
    state_interval: int = 10
    oracle_step_seconds: int = 5
    processes: tuple[str, ...] | None = None  # names from PROCESSES; None: all of them

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def child_env(self) -> dict[str, str]:
        """The environment that attaches a child's Ape to this devnet's anvil."""
        # unbuffered, so each process's log shows its steps as they happen
        return {**os.environ, "APE_FOUNDRY_HOST": self.url, "PYTHONUNBUFFERED": "1"}
