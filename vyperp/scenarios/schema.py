"""The schema of a scenario file (scenarios/*.yaml), checked whole before any transaction.

A scenario is a fresh deployment (markets as in config/markets.yaml), an oracle path per market,
a trader population and LPs, played for ``duration`` seconds of chain time in rounds of
``round_seconds``. ``reduced`` names the smaller run the tests use: coarser rounds over the same
path, fewer traders and LPs scaled down. Every mapping refuses keys it does not know; an error is
one line naming the file and the key (``scenarios/x.yaml: markets.BTC-USD.path.segments.2.ramp:
...``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vyperp.config_schema import MarketParams, OracleSection, read_yaml
from vyperp.errors import VyperpError

Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Share = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[int, Field(gt=0)]
# A relative move: -0.5 halves the price, 1 doubles it; never to zero or below.
Move = Annotated[Decimal, Field(gt=-1, allow_inf_nan=False)]


class ScenarioError(VyperpError, ValueError):
    """A scenario file that cannot be read or does not fit the schema; one line."""


class ScenarioRunError(VyperpError):
    """A scenario that could not be played to its end (set-up refused, a keeper failing)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Span(_Strict):
    """A range whose ``high`` is not below its ``low``."""

    @model_validator(mode="after")
    def _ordered(self):
        if self.high < self.low:
            raise ValueError(f"high {self.high} is below low {self.low}")
        return self


class Range(_Span):
    """A uniform draw between ``low`` and ``high`` (equal for a fixed value)."""

    low: NonNegative
    high: NonNegative


class IntRange(_Span):
    low: Annotated[int, Field(ge=1)]
    high: Annotated[int, Field(ge=1)]


# ---- oracle paths ----


class Hold(_Strict):
    """The price stays where it is for ``hold`` seconds (one round at each round time)."""

    hold: Seconds


class Ramp(_Strict):
    """A geometric move by ``ramp`` (-0.5: down 50 %) spread evenly over ``seconds``."""

    ramp: Move
    seconds: Seconds


class Gap(_Strict):
    """The next round is ``gap`` away from the last (-0.9: 90 % down in one round)."""

    gap: Move


class Silent(_Strict):
    """The feed publishes nothing for ``silent`` seconds (its price goes stale)."""

    silent: Seconds


class Oscillate(_Strict):
    """A sine of relative ``amplitude`` and ``period`` seconds around the price, for
    ``seconds``; it ends where it started."""

    oscillate: Positive
    period: Seconds
    seconds: Seconds


Segment = Hold | Ramp | Gap | Silent | Oscillate


class PiecewisePath(_Strict):
    kind: Literal["piecewise"]
    segments: list[Segment] = Field(min_length=1)


class GeneratedPath(_Strict):
    """Jump-diffusion (vyperp.sim.paths.JumpDiffusion), annual rates, seeded by the scenario."""

    kind: Literal["generated"]
    volatility: NonNegative
    drift: Decimal = Decimal(0)
    jumps_per_year: NonNegative = Decimal(0)
    jump_stdev: NonNegative = Decimal(0)


class CsvPath(_Strict):
    """A ``t,price`` file (data/paths); ``relative`` files start at 1.0 and scale to the
    market's initial price."""

    kind: Literal["csv"]
    file: str
    relative: bool = False


PathSpec = Annotated[PiecewisePath | GeneratedPath | CsvPath, Field(discriminator="kind")]


class ScenarioMarket(_Strict):
    initial_price: Positive
    params: MarketParams = Field(default_factory=MarketParams)  # type: ignore[valid-type]
    path: PathSpec


# ---- participants ----


class TraderGroup(_Strict):
    """``count`` traders drawn alike: collateral, leverage and holding time from their ranges,
    side long with probability ``long_share``. A flat trader opens with probability
    ``open_probability`` per round; a position is closed after its holding time, or earlier by a
    stop-loss at ``stop_loss`` of the collateral lost (0: none)."""

    name: str
    count: Annotated[int, Field(ge=1)]
    collateral: Range
    leverage: Range
    long_share: Share = Decimal("0.5")
    hold_rounds: IntRange
    open_probability: Share = Decimal(1)
    stop_loss: Share = Decimal(0)
    markets: list[str] = Field(default_factory=list)


class LiquidityProvider(_Strict):
    """Deposits ``deposit`` dUSD at round ``enter_round``; at ``leave_round`` requests to redeem
    all its shares and claims them as soon as the vault's withdrawal delay lets it."""

    name: str
    deposit: Positive
    enter_round: Annotated[int, Field(ge=0)] = 0
    leave_round: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _leaves_after_entering(self):
        if self.leave_round is not None and self.leave_round <= self.enter_round:
            raise ValueError(f"leave_round {self.leave_round} is not after enter_round "
                             f"{self.enter_round}")
        return self


class Reduced(_Strict):
    """The test size: coarser rounds over the same path, groups of at most ``max_traders``."""

    round_seconds: Seconds
    max_traders: Annotated[int, Field(ge=1)]


class Scenario(_Strict):
    name: str
    description: str
    seed: int = 1
    duration: Seconds
    round_seconds: Seconds
    vault_deposit: Positive
    oracle: OracleSection = Field(default_factory=OracleSection)
    markets: dict[str, ScenarioMarket] = Field(min_length=1)
    traders: list[TraderGroup] = Field(default_factory=list)
    lps: list[LiquidityProvider] = Field(default_factory=list)
    reduced: Reduced

    @model_validator(mode="after")
    def _consistent(self):
        for group in self.traders:
            unknown = sorted(set(group.markets) - set(self.markets))
            if unknown:
                raise ValueError(f"trader group {group.name!r} trades unknown markets {unknown}")
        if self.round_seconds > self.duration:
            raise ValueError(f"round_seconds {self.round_seconds} is longer than duration "
                             f"{self.duration}")
        return self

    @property
    def rounds(self) -> int:
        return self.duration // self.round_seconds

    def reduced_size(self) -> Scenario:
        """The same scenario at its test size."""
        shrunk = [group.model_copy(update={"count": min(group.count, self.reduced.max_traders)})
                  for group in self.traders]
        scale = self.round_seconds / self.reduced.round_seconds
        lps = [lp.model_copy(update={
            "enter_round": int(lp.enter_round * scale),
            "leave_round": None if lp.leave_round is None else max(int(lp.leave_round * scale),
                                                                   int(lp.enter_round * scale) + 1),
        }) for lp in self.lps]
        return self.model_copy(update={"round_seconds": self.reduced.round_seconds,
                                       "traders": shrunk, "lps": lps})


def load_scenario(path: Path | str) -> Scenario:
    """The scenario in ``path`` after checking all of it; raises ScenarioError."""
    path = Path(path)
    raw = read_yaml(path, ScenarioError)
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping, got {type(raw).__name__}")
    try:
        scenario = Scenario(**raw)
    except ValidationError as error:
        raise ScenarioError(f"{path}: " + "; ".join(_problems(error))) from None
    for name, market in scenario.markets.items():
        if isinstance(market.path, CsvPath) and not Path(market.path.file).is_file():
            raise ScenarioError(f"{path}: markets.{name}.path.file: no file {market.path.file}")
    return scenario


def _problems(error: ValidationError) -> list[str]:
    """One "key: what is wrong" per problem. A segment is tried as each kind: the kind whose
    keys it has (no key missing or unknown) explains what is wrong with it; a segment that has
    no kind's keys names the forms a segment takes."""
    problems, segments = [], {}
    for item in error.errors():
        # pydantic names the path's kind in the location: the file's keys do not have it
        loc = [str(part) for part in item["loc"] if str(part) not in _PATH_KINDS]
        if "segments" in loc and len(loc) > loc.index("segments") + 2:
            where = loc.index("segments") + 2
            if loc[where] in _SEGMENT_KINDS:
                key = ".".join(loc[:where])
                segments.setdefault(key, {}).setdefault(loc[where], []).append(
                    (".".join(loc[:where] + loc[where + 1:]), item))
                continue
        problems.append(_problem(".".join(loc), item))
    for key, kinds in segments.items():
        fitting = [errors for errors in kinds.values()
                   if all(item["type"] not in ("missing", "extra_forbidden") for _, item in errors)]
        if len(fitting) == 1:
            problems += [_problem(where, item) for where, item in fitting[0]]
        else:
            problems.append(f"{key}: not a segment (one of: {_SEGMENT_FORMS})")
    return problems


def _problem(key: str, item: dict) -> str:
    what = ("unknown key" if item["type"] == "extra_forbidden"
            else f"{item['msg'][0].lower()}{item['msg'][1:]}")
    if item["type"] not in ("extra_forbidden", "missing") and "input" in item:
        what += f", got {item['input']!r}"
    return f"{key or '(top level)'}: {what}"


_SEGMENT_KINDS = {"Hold", "Ramp", "Gap", "Silent", "Oscillate"}
_SEGMENT_FORMS = "{hold: s}, {ramp: move, seconds: s}, {gap: move}, {silent: s}, " \
                 "{oscillate: amplitude, period: s, seconds: s}"
_PATH_KINDS = {"piecewise", "generated", "csv"}


SCENARIO_DIR = Path("scenarios")


def scenario_names(directory: Path = SCENARIO_DIR) -> list[str]:
    """The scenarios shipped in ``directory`` (file names without .yaml)."""
    return sorted(path.stem for path in directory.glob("*.yaml"))
