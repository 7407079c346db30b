"""Oracle feeder: pushes prices from a path or a simulated market through a PriceOracle's reporters.

How one round is made (rule S9, one transmission per round). The feeder holds its reporters'
keys: for each round every reporter signs an EIP-712 observation of the price for the oracle's
next round, off chain (`vyperp.oracle_signing`), and the first reporter sends all of them in one
`PriceOracle.transmit`, which publishes their median. No observation is on chain before its
round. The observations are signed as observed at the round's time (see Clocks). All
observations carry the same price, so the median is that price.

The oracle needs `quorum` observations per round: fewer reporters than the quorum are refused.
It writes one round per timestamp: a step due at the latest round's timestamp would revert.

Clocks:
- devnet mode moves chain time along the source: the path's point at offset `t` is published at
  `start + t`, where `start` is the chain's pending timestamp at the first step. The next block's
  timestamp is pinned there (`evm_setNextBlockTimestamp`) unless the chain is already later: then
  the chain's clock decides, and the rest of the path shifts later by the lag (a chain cannot go
  back; the lag is logged). Other senders on the same chain (a devnet's keepers) can only make
  a round land a second late this way, never make the pin fail.
- live mode follows the chain's own clock (wall clock on an automining anvil): a step publishes
  the latest path point that is due by now (skipping missed ones), or, for a simulated market, a
  move over the time since the last round. It never pins a timestamp (which would race the other
  senders' blocks): its observations are observed at the pending time and the round lands at the
  next block's.

A replay that moves chain time would leave every other market's price stale: `HeldFeeds`
republishes their latest answers at the replay's timestamps.

Deviation bound: while the oracle's answer is fresh a round's median may move it by at most
`max_deviation_bps`. A price beyond the bound is clamped to it (logged and counted as
`clamped`), so a feeder never locks itself out; `FeedRound.clamped` tells a replay that checks.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

from vyperp.keepers.metrics import KeeperMetrics
from vyperp.oracle_signing import transmit_round
from vyperp.sim.paths import JumpDiffusion, PricePath, PricePoint

BPS = 10_000


class FeedMode(str, Enum):
    DEVNET = "devnet"  # the feeder moves chain time along the path
    LIVE = "live"  # the chain's own clock decides which point is due


@dataclass(frozen=True)
class FeedRound:
    """One round the feeder published."""

    round_id: int
    timestamp: int
    price: Decimal  # what was published, human units
    answer: int  # the same in oracle units
    requested: Decimal  # what the source asked for (differs only when clamped)
    clamped: bool


class PathSource:
    """Replays a price path point by point."""

    def __init__(self, path: PricePath):
        self.path = path
        self.next_index = 0

    @property
    def exhausted(self) -> bool:
        return self.next_index >= len(self.path)

    def next_point(self, elapsed: int | None, current_price: Decimal | None) -> PricePoint | None:
        """Devnet (`elapsed` None): the next point. Live: the latest point due by `elapsed`."""
        if self.exhausted:
            return None
        if elapsed is None:
            point = self.path[self.next_index]
            self.next_index += 1
            return point
        due = None
        while not self.exhausted and self.path[self.next_index].t <= elapsed:
            due = self.path[self.next_index]
            self.next_index += 1
        return due


class SimulatedSource:
    """A live simulated market: each round moves the oracle's current price by a jump-diffusion.

    Starting from the on-chain answer (not from its own last price) means manual rounds and
    other feeders are respected.
    """

    exhausted = False

    def __init__(self, model: JumpDiffusion, *, seed: int, step_seconds: int = 12,
                 price_decimals: int = 8, start_price: Decimal | None = None):
        self.model = model
        self.rng = random.Random(seed)
        self.step_seconds = step_seconds
        self.quantum = Decimal(1).scaleb(-price_decimals)
        self.start_price = start_price
        self.last_t: int | None = None

    def next_point(self, elapsed: int | None, current_price: Decimal | None) -> PricePoint | None:
        """The first call publishes the current (or start) price; later ones move it.

        Devnet (`elapsed` None): `step_seconds` later. Live: over the time since the last round.
        """
        if self.last_t is None:
            self.last_t = 0 if elapsed is None else elapsed
            start = current_price if current_price is not None else self.start_price
            if start is None:
                raise ValueError("the oracle has no answer yet: give the source a start_price")
            return PricePoint(self.last_t, start.quantize(self.quantum))
        t = self.last_t + self.step_seconds if elapsed is None else elapsed
        if t - self.last_t < self.step_seconds:
            return None  # live: at most one round per step_seconds, however often it is asked
        moved = self.model.step(float(current_price), t - self.last_t, self.rng)
        self.last_t = t
        return PricePoint(t, Decimal(repr(moved)).quantize(self.quantum))


def signers_among_test_accounts(accounts, addresses) -> list:
    """The node's test accounts behind reporter addresses (a devnet's reporters are test accounts)."""
    by_address = {account.address.lower(): account for account in accounts.test_accounts}
    missing = [address for address in addresses if address.lower() not in by_address]
    if missing:
        raise ValueError(f"reporters {missing} are not test accounts of this node")
    return [by_address[address.lower()] for address in addresses]


def pin_next_block(chain, target: int, now: int) -> int:
    """The time to observe a round at for a block at `target`: the next block's timestamp is
    pinned there, unless the chain is already past it (its pending time `now`, or a block another
    sender mined since), in which case the chain's clock decides and the pending time is the
    observation time."""
    from ape.exceptions import ProviderError

    if target >= now:
        try:
            chain.pending_timestamp = target
            return target
        except ProviderError as error:
            if "Timestamp error" not in str(error):
                raise
    return int(chain.pending_timestamp)


class HeldFeeds:
    """Feeds held at their latest answer while a replay moves chain time, so that the engine finds
    their markets' prices usable at every block of the replay.

    `feeds` maps a market to (oracle, reporters, max_age): at each timestamp given to `refresh`,
    a feed whose latest round would be at least half its `max_age` old gets a new round at the
    same answer, at that timestamp. The latest rounds are read once, in one multicall; the holder
    must keep every other writer off these feeds meanwhile (`vyperp.devnet.feed_claims`).
    """

    def __init__(self, feeds: dict[str, tuple], *, chain=None):
        from ape_ethereum.multicall import Call

        from vyperp.chain import ensure_multicall

        if chain is None:
            from ape import chain
        self.chain = chain
        self.feeds = {name: (oracle, list(reporters), int(max_age))
                      for name, (oracle, reporters, max_age) in feeds.items()}
        self.latest: dict[str, tuple[int, int]] = {}
        self.republished = 0
        if not self.feeds:
            return
        ensure_multicall()
        call = Call()
        for oracle, _, _ in self.feeds.values():
            call.add(oracle.latestRoundData)
        for name, (round_id, answer, _, updated_at, _) in zip(self.feeds, call(), strict=True):
            if int(round_id):  # a feed without a round has no answer to hold
                self.latest[name] = (int(answer), int(updated_at))

    def refresh(self, timestamp: int) -> list[str]:
        """Republishes the feeds that would be half their max age old at `timestamp`."""
        refreshed = []
        for name, (answer, updated_at) in self.latest.items():
            oracle, reporters, max_age = self.feeds[name]
            if timestamp - updated_at < max_age // 2:
                continue
            observed_at = pin_next_block(self.chain, timestamp, int(self.chain.pending_timestamp))
            receipt = transmit_round(oracle, answer, reporters, reporters[0],
                                     observed_at=observed_at)
            self.latest[name] = (answer, int(receipt.timestamp))
            self.republished += 1
            refreshed.append(name)
        return refreshed


class OracleFeeder:
    """Publishes one round per `step()`: its reporters (accounts holding their keys, e.g. a
    node's test accounts) sign observations and the first transmits them together."""

    def __init__(self, oracle, reporters, source: PathSource | SimulatedSource, *,
                 mode: FeedMode | str = FeedMode.DEVNET, chain=None,
                 metrics: KeeperMetrics | None = None):
        if chain is None:
            from ape import chain
        self.oracle = oracle
        self.reporters = list(reporters)
        self.source = source
        self.mode = FeedMode(mode)
        self.chain = chain
        self.metrics = metrics or KeeperMetrics("oracle_feeder")
        self.decimals = int(oracle.decimals())
        self.quorum = int(oracle.quorum())
        self.max_deviation_bps = int(oracle.max_deviation_bps())
        self.max_report_age = int(oracle.max_report_age())
        if len(self.reporters) < self.quorum:
            raise ValueError(
                f"{len(self.reporters)} reporter(s) cannot reach the oracle's quorum of {self.quorum}"
            )
        self.start: int | None = None

    @property
    def exhausted(self) -> bool:
        return self.source.exhausted

    def to_answer(self, price: Decimal) -> int:
        """A human price in the oracle's integer units (half-even at the last decimal)."""
        return int((price * 10**self.decimals).to_integral_value(rounding=ROUND_HALF_EVEN))

    def from_answer(self, answer: int) -> Decimal:
        return Decimal(answer).scaleb(-self.decimals)

    def step(self) -> FeedRound | None:
        """Publishes the source's next price; None when nothing is due (or the source is done)."""
        with self.metrics.measure():
            latest = self._latest_answer()
            now = int(self.chain.pending_timestamp)
            if self.start is None:
                self.start = now
            current = self.from_answer(latest[0]) if latest else None
            elapsed = None if self.mode is FeedMode.DEVNET else now - self.start
            point = self.source.next_point(elapsed, current)
            if point is None:
                return None
            # PriceOracle writes one round per timestamp: after a round another writer sent in
            # this second (the devnet's loop before a replay took the feed, or a replay handing
            # it back), ours goes in the next one
            after_latest = latest[1] + 1 if latest else 0
            if self.mode is FeedMode.LIVE:
                target = max(now, after_latest)
                observed_at = now if target == now else pin_next_block(self.chain, target, now)
            else:
                target = self.start + point.t
                observed_at = pin_next_block(self.chain, max(target, after_latest), now)
            answer, clamped = self._within_bound(self.to_answer(point.price), latest, observed_at)
            receipt = transmit_round(self.oracle, answer, self.reporters, self.reporters[0],
                                     observed_at=observed_at)
            self.metrics.spent(receipt.gas_used, receipt.gas_price)
            self.metrics.handled(len(self.reporters))  # observations signed and transmitted
            round_id, _, _, updated_at, _ = self.oracle.latestRoundData()
            if self.mode is FeedMode.DEVNET and updated_at > target:
                self._shift(int(updated_at) - target)
            return FeedRound(
                round_id=int(round_id),
                timestamp=int(updated_at),
                price=self.from_answer(answer),
                answer=answer,
                requested=point.price,
                clamped=clamped,
            )

    def run(self, steps: int | None = None,
            on_round: Callable[[FeedRound], object] = lambda published: None) -> list[FeedRound]:
        """Steps until the source is exhausted or `steps` rounds were published, calling
        `on_round` after each round."""
        rounds: list[FeedRound] = []
        while not self.exhausted and (steps is None or len(rounds) < steps):
            published = self.step()
            if published is None:
                break
            rounds.append(published)
            on_round(published)
        return rounds

    def _latest_answer(self) -> tuple[int, int] | None:
        """(answer, updated_at) of the latest round, None before the first."""
        if int(self.oracle.latestRound()) == 0:
            return None
        _, answer, _, updated_at, _ = self.oracle.latestRoundData()
        return int(answer), int(updated_at)

    def _shift(self, lag: int) -> None:
        """The chain is later than the path: the rest of the path moves later by `lag`."""
        self.metrics.log.warning("chain is %d s ahead of the path; shifting it", lag)
        self.metrics.count("lag_seconds", lag)
        self.start += lag

    def _within_bound(self, answer: int, latest: tuple[int, int] | None,
                      timestamp: int) -> tuple[int, bool]:
        """The answer clamped to the deviation bound when the current answer is fresh."""
        if latest is None or timestamp - latest[1] > self.max_report_age:
            return answer, False
        current = latest[0]
        allowed = current * self.max_deviation_bps // BPS
        bounded = min(max(answer, current - allowed), current + allowed)
        if bounded != answer:
            self.metrics.log.warning(
                "%s: %s clamped to %s by the %d bps deviation bound",
                self.oracle.address, answer, bounded, self.max_deviation_bps,
            )
            self.metrics.count("clamped")
        return max(bounded, 1), bounded != answer
