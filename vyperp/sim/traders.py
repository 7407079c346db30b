"""A population of simulated traders and an LP, stepped against a deployment through the SDK.

Each trader has a target leverage and a holding time. At a step a flat trader opens a position
in a random market on a random side, sized so that notional / equity is its leverage (capped
below the market's maximum), and a trader whose position is ``hold_steps`` steps old closes it.
The LP deposits a fixed amount every ``every_steps`` steps. A step reads every market and every
participant's account in two batched calls, then sends one transaction per action.

Draws come from a seeded ``random.Random``, so a run is reproducible for the same chain state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from ape_ethereum.multicall import Call

from vyperp import roles
from vyperp.chain import ensure_multicall
from vyperp.sdk import MarketState, Side, Vyperp
from vyperp.units import WAD

# Opening at the market's full leverage would fail its own fee; stay this far below it.
LEVERAGE_HEADROOM = Decimal("0.8")
SIZE_QUANTUM = Decimal("0.0001")
# Gas for generated accounts that anvil did not prefund.
GAS_BALANCE_WEI = 10**21


@dataclass(frozen=True)
class TraderProfile:
    """How one simulated trader behaves."""

    name: str
    leverage: Decimal
    collateral: Decimal  # deposited into the engine once
    hold_steps: int  # steps a position stays open before the trader closes it
    markets: tuple[str, ...] = ()  # where it trades; empty: every market


@dataclass(frozen=True)
class LpProfile:
    """A liquidity provider that adds to the vault on a schedule."""

    name: str
    deposit: Decimal
    every_steps: int


DEFAULT_TRADERS = (
    TraderProfile("cautious", Decimal(2), Decimal(60_000), hold_steps=6),
    TraderProfile("swing", Decimal(5), Decimal(40_000), hold_steps=4),
    TraderProfile("degen", Decimal(15), Decimal(20_000), hold_steps=2),
    TraderProfile("scalper", Decimal(3), Decimal(30_000), hold_steps=1),
)
DEFAULT_LP = LpProfile("lp", Decimal(25_000), every_steps=5)


@dataclass(frozen=True)
class SimAction:
    """One thing a participant did (or failed to do) at a step."""

    actor: str
    kind: str  # "open", "close", "lp_deposit" or "failed"
    market: str | None = None
    size: Decimal = Decimal(0)  # signed base units; LP deposit: collateral
    price: Decimal | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "lp_deposit":
            return f"{self.actor} deposited {self.size:f}"
        if self.kind == "failed":
            return f"{self.actor} failed: {self.detail}"
        return f"{self.actor} {self.kind} {self.size:.4f} {self.market} @ {self.price:.2f}"


@dataclass
class Trader:
    profile: TraderProfile
    account: object
    opened_at_step: int | None = None  # when the position it holds was opened


@dataclass
class TraderSimulation:
    """Steps the traders and the LP; ``fund`` first."""

    sdk: Vyperp
    traders: list[Trader]
    lp: tuple[LpProfile, object] | None = None
    seed: int = 1
    steps: int = 0
    minter: object = field(default=None, init=False)  # set by fund()
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        ensure_multicall()

    @classmethod
    def with_test_accounts(
        cls,
        sdk: Vyperp,
        test_accounts,
        profiles: Sequence[TraderProfile] = DEFAULT_TRADERS,
        lp_profile: LpProfile | None = DEFAULT_LP,
        *,
        first_index: int = roles.FIRST_SIMULATED,
        seed: int = 1,
    ) -> TraderSimulation:
        """Participants on test accounts derived after the role accounts (HD index 10 on), so
        the CLI's accounts stay the operator's own."""
        from ape.utils.testing import generate_dev_accounts

        container = test_accounts.containers["test"]
        count = len(profiles) + (lp_profile is not None)
        derived = [
            test_accounts.init_test_account(first_index + offset, key.address, key.private_key)
            for offset, key in enumerate(
                generate_dev_accounts(
                    container.mnemonic, count, hd_path=container.hd_path, start_index=first_index
                )
            )
        ]
        traders = [Trader(profile, account) for profile, account in zip(profiles, derived)]
        lp = (lp_profile, derived[-1]) if lp_profile is not None else None
        return cls(sdk, traders, lp, seed=seed)

    @property
    def participants(self) -> list[object]:
        return [trader.account for trader in self.traders] + ([self.lp[1]] if self.lp else [])

    def fund(self, minter) -> list[str]:
        """Gas for every participant and each trader's collateral in the engine, where still
        missing. ``minter`` (a DevnetUSD minter) also tops up the LP's wallet as it deposits."""
        from ape import chain

        self.minter = minter
        contracts = self.sdk.contracts
        call = Call()
        for trader in self.traders:
            call.add(contracts.engine.collateral, trader.account.address, 0)
            call.add(contracts.token.balanceOf, trader.account.address)
        answers = list(call())
        # anvil prefunds only the role accounts: top up gas for all participants in one batch
        chain.provider.web3.provider.make_batch_request(
            [
                ("anvil_setBalance", [account.address, hex(GAS_BALANCE_WEI)])
                for account in self.participants
            ]
        )
        funded = []
        for trader, collateral, wallet in zip(
            self.traders, answers[0::2], answers[1::2], strict=True
        ):
            if collateral > 0:
                continue
            missing = self.sdk.to_token_units(trader.profile.collateral) - wallet
            if missing > 0:
                contracts.token.mint(trader.account, missing, sender=minter)
            self.sdk.deposit(trader.profile.collateral, trader.account)
            funded.append(f"{trader.profile.name}: {trader.profile.collateral} deposited")
        return funded

    def step(self) -> list[SimAction]:
        """One round: every trader opens, holds or closes; the LP deposits when due."""
        self.steps += 1
        markets = {state.name: state for state in self.sdk.markets()}
        accounts, lp_wallet = self._read_accounts()
        actions = []
        for trader, (equity, open_mask) in zip(self.traders, accounts, strict=True):
            try:
                action = self._step_trader(trader, equity, open_mask, markets)
            except Exception as error:  # noqa: BLE001 - a revert ends this action, not the run
                action = SimAction(trader.profile.name, "failed", detail=_reason(error))
            if action is not None:
                actions.append(action)
        if self.lp is not None and self.steps % self.lp[0].every_steps == 0:
            actions.append(self._step_lp(lp_wallet))
        return actions

    def _read_accounts(self) -> tuple[list[tuple[Decimal, int]], int]:
        """(equity, bitmask of open markets) per trader, and the LP's wallet in token units,
        in one multicall."""
        engine, token = self.sdk.contracts.engine, self.sdk.contracts.token
        call = Call()
        for trader in self.traders:
            call.add(engine.account_health, trader.account.address, 0)
            call.add(engine.open_markets, trader.account.address, 0)
        if self.lp is not None:
            call.add(token.balanceOf, self.lp[1].address)
        answers = list(call())
        lp_wallet = int(answers.pop()) if self.lp is not None else 0
        traders = [
            (
                Decimal(0) if health is None else Decimal(health.equity) / WAD,
                int(mask or 0),
            )
            for health, mask in zip(answers[0::2], answers[1::2], strict=True)
        ]
        return traders, lp_wallet

    def _step_lp(self, wallet: int) -> SimAction:
        profile, account = self.lp
        try:
            deposit = self.sdk.to_token_units(profile.deposit)
            if wallet < deposit:
                # a hundred deposits' worth at a time: the devnet's LP never runs dry
                self.sdk.contracts.token.mint(account, 100 * deposit, sender=self.minter)
            self.sdk.lp_deposit(profile.deposit, account)
        except Exception as error:  # noqa: BLE001 - a revert ends this action, not the run
            return SimAction(profile.name, "failed", detail=_reason(error))
        return SimAction(profile.name, "lp_deposit", size=profile.deposit)

    def _step_trader(
        self, trader: Trader, equity: Decimal, open_mask: int, markets: dict[str, MarketState]
    ) -> SimAction | None:
        name = trader.profile.name
        if open_mask:
            if trader.opened_at_step is None:  # held since before this process started
                trader.opened_at_step = self.steps
            if self.steps - trader.opened_at_step < trader.profile.hold_steps:
                return None
            market = self.sdk.deployment.market_name((open_mask & -open_mask).bit_length() - 1)
            result = self.sdk.close_position(market, trader.account)
            trader.opened_at_step = None
            return SimAction(name, "close", market, result.size_delta, result.fill_price)

        tradable = [
            state
            for state in markets.values()
            if state.index_price
            and not state.reduce_only
            and (not trader.profile.markets or state.name in trader.profile.markets)
        ]
        if not tradable or equity <= 0:
            return SimAction(name, "failed", detail="no tradable market or no equity")
        market = self.rng.choice(sorted(tradable, key=lambda state: state.id))
        side = self.rng.choice((Side.LONG, Side.SHORT))
        leverage = min(trader.profile.leverage, market.max_leverage * LEVERAGE_HEADROOM)
        size = (equity * leverage / market.index_price).quantize(SIZE_QUANTUM, ROUND_DOWN)
        size = min(size, Decimal(market.config.max_position_size) / WAD)
        if size <= 0:
            return SimAction(name, "failed", detail=f"{market.name}: size rounds to zero")
        result = self.sdk.open_position(market.name, size, side, trader.account)
        trader.opened_at_step = self.steps
        return SimAction(name, "open", market.name, result.size_delta, result.fill_price)


def _reason(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]
