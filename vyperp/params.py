"""Market parameters: the defaults of PROTOCOL.md, in the engine's struct order."""

from dataclasses import astuple, dataclass, fields, replace

from vyperp.units import WAD


# The engine stores these fractions in steps of 1e-10 (fixed_point.FRACTION_STEP, in 18-decimal units);
# any other value reverts with "markets: <field> not a multiple of 1e-10".
FRACTION_STEP = 10**8
STEPPED_FIELDS = (
    "max_premium",
    "interest_rate",
    "max_funding_rate",
    "max_funding_velocity",
    "imr",
    "mmr",
    "maker_fee",
    "taker_fee",
    "breaker_move",
)


@dataclass(frozen=True)
class MarketConfig:
    """One market's parameters; rates and fractions are 18-decimal integers."""

    oracle: str
    max_price_age: int = 60
    mark_window: int = 180
    skew_scale: int = 1_000_000 * WAD
    max_premium: int = WAD // 20  # 5 %
    interest_rate: int = WAD // 10_000  # 0.01 % per 8 h
    max_funding_rate: int = 5 * WAD // 1000  # 0.5 % per 8 h
    dynamic_funding: bool = False
    max_funding_velocity: int = 3 * WAD // 100  # 3 % per day per unit of proportional skew
    imr: int = WAD // 10  # 10x
    mmr: int = WAD // 20  # 5 %
    maker_fee: int = 2 * WAD // 10_000  # 0.02 %
    taker_fee: int = 6 * WAD // 10_000  # 0.06 %
    max_position_size: int = 1_000_000 * WAD
    max_open_interest: int = 10_000_000 * WAD
    max_oi_vault_ratio: int = 0  # 0: no cap relative to vault assets
    breaker_move: int = 15 * WAD // 100  # 15 %
    breaker_window: int = 3600  # 1 h

    def as_tuple(self) -> tuple:
        """The struct as the engine's ABI takes it."""
        return astuple(self)

    def with_(self, **changes) -> "MarketConfig":
        return replace(self, **changes)

    @classmethod
    def from_tuple(cls, values) -> "MarketConfig":
        return cls(*[values[i] for i in range(len(fields(cls)))])
