"""What a scenario reads from the chain: the whole protocol in one multicall (a `Snapshot`), and
the engine's risk events of a block range in one ``eth_getLogs``.

Amounts stay as the engine's 18-decimal integers (token balances scaled up to them), so the
rules compare exactly what the contracts compare. Views that revert while a price is unusable
(stale, halted: mark, funding, account health, the vault's valuations) read as None.
"""

from __future__ import annotations

from dataclasses import dataclass

from ape_ethereum.multicall import Call

from vyperp.keepers.rpc import AbiEvents, RpcClient
from vyperp.params import MarketConfig

# The amount whose deposit and immediate redemption the S7 check prices (18 decimals).
PROBE_ASSETS_TOKENS = 100_000
RISK_EVENTS = ("Liquidation", "ShortfallCovered", "Deleveraged", "ProfitCapped",
               "VaultBadDebtRepaid")
# ShortfallCovered.source
FROM_INSURANCE, FROM_VAULT = 1, 2


@dataclass(frozen=True)
class MarketSnapshot:
    name: str
    index: int | None
    mark: int | None
    funding_rate: int | None
    funding_index: int | None
    long_oi: int
    short_oi: int
    skew: int
    cost_sum: int
    halted: bool
    config: MarketConfig


@dataclass(frozen=True)
class AccountSnapshot:
    equity: int
    maintenance_margin: int
    liquidatable: bool


@dataclass(frozen=True)
class Snapshot:
    """The protocol at one block."""

    block: int
    timestamp: int
    engine_tokens: int  # the engine's token balance, 18 decimals
    vault_balance: int
    insurance: int
    vault_bad_debt: int
    max_pnl_factor: int
    adl_target: int
    adl_eligible: bool | None
    vault_equity: int | None  # exit valuation
    vault_entry_equity: int | None
    vault_supply: int
    probe_shares_deposit: int | None  # shares a deposit of the probe gets
    probe_shares_exit: int | None  # the probe's worth of shares at the exit valuation
    markets: tuple[MarketSnapshot, ...]
    collateral: dict[str, int]  # owner (subaccount 0) -> collateral
    exposures: dict[tuple[str, int], int]  # (owner, market id) -> size across subaccounts
    statuses: dict[str, AccountSnapshot] | None  # traders; None while a price is unusable
    share_decimals: int  # the vault's: the token's plus its decimals offset

    @property
    def share_price(self) -> float | None:
        """dUSD per share at the exit valuation."""
        if self.vault_equity is None or self.vault_supply == 0:
            return None
        return self.vault_equity / 1e18 / (self.vault_supply / 10**self.share_decimals)


class Observer:
    """Reads snapshots and events of one deployment."""

    def __init__(self, contracts, market_ids: dict[str, int], *, traders: list[str],
                 holders: list[str], rpc: RpcClient):
        self.contracts = contracts
        self.market_ids = market_ids
        self.traders = traders
        # every address whose collateral S1 counts: traders, LPs, the keepers that earn rewards
        self.holders = list(dict.fromkeys([*traders, *holders]))
        self.rpc = rpc
        self.scale = int(contracts.engine.collateral_scale())
        self.share_decimals = int(contracts.vault.decimals())
        self.probe_assets = PROBE_ASSETS_TOKENS * 10 ** int(contracts.token.decimals())
        self.events = AbiEvents(contracts.engine.contract_type, RISK_EVENTS)

    def snapshot(self) -> Snapshot:
        engine, vault, token, lens = (self.contracts.engine, self.contracts.vault,
                                      self.contracts.token, self.contracts.lens)
        from ape import chain

        block = chain.blocks.head
        call = Call()
        call.add(token.balanceOf, engine.address)
        for method in (engine.vault_balance, engine.insurance_balance, engine.vault_bad_debt,
                       engine.max_pnl_factor, engine.adl_target):
            call.add(method)
        call.add(engine.adl_eligible, allowFailure=True)
        call.add(vault.equity, allowFailure=True)
        call.add(vault.entry_equity, allowFailure=True)
        call.add(vault.totalSupply)
        call.add(vault.previewDeposit, self.probe_assets, allowFailure=True)
        call.add(vault.convertToShares, self.probe_assets, allowFailure=True)
        for market_id in self.market_ids.values():
            call.add(engine.index_price, market_id, allowFailure=True)
            call.add(engine.mark_price, market_id, allowFailure=True)
            call.add(engine.current_funding, market_id, allowFailure=True)
            for method in (engine.long_open_interest, engine.short_open_interest, engine.skew,
                           engine.cost_sum, engine.is_halted, engine.params):
                call.add(method, market_id)
        for holder in self.holders:
            call.add(engine.collateral, holder, 0)
        for trader in self.traders:
            for market_id in self.market_ids.values():
                call.add(engine.owner_exposure, trader, market_id)
        if self.traders:
            call.add(lens.account_statuses, [(t, 0) for t in self.traders], allowFailure=True)
        answers = iter(list(call(block_id=block.number)))

        def take():
            return next(answers)

        engine_tokens = int(take()) * self.scale
        vault_balance, insurance, bad_debt, max_pnl_factor, adl_target = (
            int(take()) for _ in range(5))
        adl_eligible = take()
        equity, entry_equity = take(), take()
        supply = int(take())
        deposit_shares, exit_shares = take(), take()
        markets = []
        for name in self.market_ids:
            index, mark, funding = take(), take(), take()
            long_oi, short_oi, skew, cost_sum, halted, params = (take() for _ in range(6))
            markets.append(MarketSnapshot(
                name=name, index=_int(index), mark=_int(mark),
                # current_funding returns (index, rate per 8 h)
                funding_rate=None if funding is None else int(funding[1]),
                funding_index=None if funding is None else int(funding[0]),
                long_oi=int(long_oi), short_oi=int(short_oi), skew=int(skew),
                cost_sum=int(cost_sum), halted=bool(halted),
                config=MarketConfig.from_tuple(params)))
        collateral = {holder: int(take()) for holder in self.holders}
        exposures = {(trader, market_id): int(take())
                     for trader in self.traders for market_id in self.market_ids.values()}
        statuses = None
        if self.traders:
            raw = take()
            if raw is not None:
                statuses = {trader: AccountSnapshot(int(s.equity), int(s.maintenance_margin),
                                                    bool(s.liquidatable))
                            for trader, s in zip(self.traders, raw, strict=True)}
        return Snapshot(
            block=block.number, timestamp=block.timestamp, engine_tokens=engine_tokens,
            vault_balance=vault_balance, insurance=insurance, vault_bad_debt=bad_debt,
            max_pnl_factor=max_pnl_factor, adl_target=adl_target,
            adl_eligible=None if adl_eligible is None else bool(adl_eligible),
            vault_equity=_int(equity), vault_entry_equity=_int(entry_equity), vault_supply=supply,
            probe_shares_deposit=_int(deposit_shares), probe_shares_exit=_int(exit_shares),
            markets=tuple(markets), collateral=collateral, exposures=exposures,
            statuses=statuses, share_decimals=self.share_decimals)

    def risk_events(self, from_block: int, to_block: int) -> list:
        """The engine's liquidation, shortfall, deleveraging and profit-cap events in a range."""
        if to_block < from_block:
            return []
        logs = self.rpc.call("eth_getLogs", [{
            "address": str(self.contracts.engine.address), "fromBlock": hex(from_block),
            "toBlock": hex(to_block), "topics": [self.events.topics]}])
        return [event for event in map(self.events.decode, logs) if event is not None]


def _int(value) -> int | None:
    return None if value is None else int(value)
