"""Who feeds a market's oracle on a devnet: the oracle loop, or a replay that claimed the feed.

A claim is an exclusive `flock` on `<state-dir>/claims/<market>.lock`. `ape run seed-oracles`
claims every feed it publishes to, waiting for a round the oracle loop is sending to finish, and
holds the claims until it exits. The oracle loop sends each market's round while holding that
market's lock, and leaves a market whose lock it cannot take at once alone. So the two never
send for the same feed at the same time (no clash on round ids, nor on the reporters' nonces),
and the kernel drops a claim when its process ends, however it ends: a replay that crashed never
leaves a market unfed, and no pid can be reused into a false claim. The file's text (the holder's
pid and what it does) is for the loop's log and for people; the lock is the claim.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO


def claim_file(state_dir: Path, market: str) -> Path:
    return Path(state_dir) / "claims" / f"{market}.lock"


def _open(state_dir: Path, market: str) -> IO[str]:
    path = claim_file(state_dir, market)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a+")  # created if missing, never truncated by a mere look


def _try_lock(stream: IO[str]) -> bool:
    try:
        fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder_of(state_dir: Path, market: str) -> str:
    """What the claim file says about its holder (meaningful while the feed is claimed)."""
    path = claim_file(state_dir, market)
    return path.read_text().strip() if path.is_file() else ""


@contextmanager
def claim_feeds(
    state_dir: Path,
    markets: Iterable[str],
    holder: str,
    on_wait: Callable[[str, str], None] = lambda market, holder: None,
) -> Iterator[None]:
    """Holds the feeds of `markets` for the block. Waits while another process holds one (the
    oracle loop during one round; another replay until it ends), telling `on_wait` the market
    and its holder. Markets are taken in name order, so two replays cannot deadlock."""
    with ExitStack() as held:
        for market in sorted(set(markets)):
            stream = held.enter_context(_open(state_dir, market))
            if not _try_lock(stream):
                on_wait(market, holder_of(state_dir, market))
                fcntl.flock(stream, fcntl.LOCK_EX)
            stream.truncate(0)
            stream.write(f"{holder} (pid {os.getpid()})\n")
            stream.flush()
        yield  # closing the files releases the locks


@contextmanager
def unless_claimed(state_dir: Path, market: str) -> Iterator[bool]:
    """The oracle loop's side: True (and the market's lock held for the block) when nobody claimed
    the feed; False at once when somebody did."""
    with _open(state_dir, market) as stream:
        yield _try_lock(stream)
