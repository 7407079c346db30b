"""The status files the devnet's loops write after every step, read by the dashboard and the
supervisor without any RPC request."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ProcessStatus:
    """What a loop last did, as its status file records it."""

    name: str
    pid: int
    interval: float
    started_at: float
    updated_at: float
    steps: int = 0
    errors: int = 0
    last_action: str | None = None
    last_action_at: float | None = None
    last_error: str | None = None
    stopped: bool = False

    def save(self, directory: Path) -> None:
        """Written atomically, so a reader never sees half a file."""
        partial = directory / f".{self.name}.json.tmp"
        partial.write_text(json.dumps(asdict(self)))
        partial.replace(directory / f"{self.name}.json")

    def alive(self, now: float | None = None) -> bool:
        """Running and stepping: its process exists and it wrote within a few intervals."""
        now = time.time() if now is None else now
        return (
            not self.stopped
            and process_exists(self.pid)
            and now - self.updated_at < 3 * self.interval + 30
        )


def read_statuses(directory: Path) -> list[ProcessStatus]:
    """Every status file under ``directory``, by name."""
    statuses = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            statuses.append(ProcessStatus(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # a file from another version, or removed while listing
    return statuses


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_lines(statuses: Sequence[ProcessStatus]) -> str:
    """One line per loop, for runs without the dashboard."""
    return "\n".join(
        f"{s.name}: {'stopped' if s.stopped else 'alive' if s.alive() else 'down'}, "
        f"{s.steps} steps, {s.errors} errors, "
        f"last: {s.last_action or '-'}"
        for s in statuses
    )
