"""The schema of config/markets.yaml, checked as a whole before the deployer sends anything.

Every section refuses keys it does not know (a misspelt key is an error, not a silently ignored
setting) and checks its values' types; an error is one line naming the file, the network, the
market and the key. A YAML syntax error names the file and the line.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from vyperp.errors import VyperpError
from vyperp.params import MarketConfig

# Seconds (MarketConfig's unsigned integers) and amounts, fractions and rates (uint256 in
# 18 decimals on chain): all non-negative.
Seconds = Annotated[int, Field(ge=0, strict=False)]
Human = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")]

_SECONDS = {"max_price_age", "mark_window", "breaker_window"}
_BOOLS = {"dynamic_funding"}


class ConfigError(VyperpError, ValueError):
    """config/markets.yaml cannot be read or does not fit the schema; one line. Also a ValueError:
    the deploy command refuses it with the other invalid-value errors of a plan."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _params_model() -> type[BaseModel]:
    """MarketConfig's fields (less the oracle, which the deploy fills in), each optional."""
    annotations: dict[str, Any] = {}
    for name in MarketConfig.__dataclass_fields__:
        if name == "oracle":
            continue
        kind = StrictBool if name in _BOOLS else Seconds if name in _SECONDS else Human
        annotations[name] = kind | None
    namespace = {"__annotations__": annotations, **{name: None for name in annotations}}
    return type("MarketParams", (_Strict,), namespace)


MarketParams = _params_model()


class OracleSection(_Strict):
    decimals: Annotated[int, Field(ge=0, le=18)] = 8
    quorum: Annotated[int, Field(gt=0)] = 2
    max_deviation_bps: Annotated[int, Field(gt=0)] = 1000
    max_report_age: Annotated[int, Field(gt=0)] = 3600


class DevnetSection(_Strict):
    traders: list[Annotated[int, Field(ge=0)]]
    trader_mint: Human
    lp: Annotated[int, Field(ge=0)]
    lp_mint: Human
    lp_deposit: Human


class MarketSection(_Strict):
    description: str | None = None
    initial_price: Positive | None = None
    oracle: Address | None = None
    atomic_trading: StrictBool = False
    params: MarketParams = Field(default_factory=MarketParams)  # type: ignore[valid-type]


class NetworkSection(_Strict):
    collateral: str = "devnet"
    oracle: OracleSection = Field(default_factory=OracleSection)
    reporters: list[Address] = Field(default_factory=list)
    devnet: DevnetSection | None = None
    markets: dict[str, MarketSection] = Field(default_factory=dict)


class MarketsFile(_Strict):
    networks: dict[str, NetworkSection]


def read_yaml(path: Path, error_type: type[VyperpError]) -> Any:
    """The parsed YAML of ``path``; an unreadable file or a syntax error raises ``error_type``
    in one line naming the file (and the line). Also for scenario files (vyperp.scenarios)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise error_type(f"{path}: cannot read it ({error.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise error_type(_yaml_error(path, error)) from None


def load_config(path: Path) -> dict[str, Any]:
    """The parsed file after checking all of it against the schema; raises ConfigError."""
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of networks, got {type(raw).__name__}")
    try:
        MarketsFile(networks=raw)
    except ValidationError as error:
        raise ConfigError(_validation_error(path, error)) from None
    return raw


def _yaml_error(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    return f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")


def _validation_error(path: Path, error: ValidationError) -> str:
    """Every problem on one line: file, network, market and key, and what is wrong."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc[:1] == ["networks"]:
            loc = loc[1:]
        where = []
        if loc:
            where.append(f"network {loc[0]!r}")
            loc = loc[1:]
        if len(loc) >= 2 and loc[0] == "markets":
            where.append(f"market {loc[1]!r}")
            loc = loc[2:]
        key = ".".join(loc)
        if item["type"] == "extra_forbidden":
            what = "unknown key"
        else:
            what = f"{item['msg'][0].lower()}{item['msg'][1:]}, got {item.get('input')!r}"
        problems.append(", ".join(where) + (f", key {key!r}" if key else "") + f": {what}")
    return f"{path}: " + "; ".join(problems)
