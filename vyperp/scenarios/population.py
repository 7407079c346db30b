"""A scenario's traders and LPs: decided from one multicall per round, sent as one block.

Participants are plain addresses (``FIRST_PARTICIPANT`` on), impersonated on anvil
(``anvil_autoImpersonateAccount``): hundreds of traders need no keys, and a round's transactions
go out as one JSON-RPC post of ``eth_sendTransaction`` with automine off, then one ``evm_mine``
(more while transactions still wait in the pool). A transaction that reverts is counted as
refused with the engine's reason left on chain: a refusal (margin, caps, a halted market) is part
of the scenario, not a failure of the run.

Traders (one ``TraderGroup`` each): a flat trader opens with probability ``open_probability`` on
one of its markets, long with probability ``long_share``, at a leverage drawn from its range
(capped at 80 % of the market's maximum) on its current equity; it closes after its holding time
or when its equity has lost ``stop_loss`` of its collateral. A trader left with under a tenth of
its collateral (liquidated, or stopped out deep) stops trading.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from ape_ethereum.multicall import Call
from eth_utils import to_checksum_address

from vyperp.keepers.rpc import AbiMethod, RpcClient
from vyperp.scenarios.schema import (
    LiquidityProvider,
    Range,
    Scenario,
    ScenarioRunError,
    TraderGroup,
)
from vyperp.units import WAD

FIRST_PARTICIPANT = 0x5CE_0000  # participant i is the address FIRST_PARTICIPANT + i
TX_GAS = 1_000_000  # a first trade uses a little over 300,000
GAS_BALANCE_WEI = 10**21
MAX_UINT256 = 2**256 - 1
LEVERAGE_HEADROOM = Decimal("0.8")
SIZE_QUANTUM = Decimal("0.0001")
RETIRE_BELOW = Decimal("0.1")  # of the trader's collateral


@dataclass
class TraderState:
    group: TraderGroup
    address: str
    collateral: Decimal
    leverage: Decimal
    hold_rounds: int
    opened_round: int | None = None


@dataclass
class LpState:
    spec: LiquidityProvider
    address: str
    entered: bool = False
    requested: bool = False
    left: bool = False


@dataclass
class RoundPlan:
    """A round's transactions, in the blocks they go in: mints for LPs, then closes and LP
    actions, then openings alone (so S3 sees the state the engine checked each opening in)."""

    funding: list[dict] = field(default_factory=list)
    closes: list[dict] = field(default_factory=list)
    lp: list[dict] = field(default_factory=list)
    opens: list[dict] = field(default_factory=list)
    stopped: int = 0  # closes by stop-loss
    lp_deposited: Decimal = Decimal(0)
    lp_redeemed_shares: int = 0


@dataclass(frozen=True)
class MarketView:
    """A market as a trader decides on it this round."""

    index: Decimal | None
    tradable: bool
    imr: Decimal
    max_position_size: Decimal


@dataclass
class Population:
    """Every trader and LP of a scenario over one deployment's contracts."""

    scenario: Scenario
    contracts: object  # vyperp.manifest.ProtocolContracts
    market_ids: dict[str, int]
    rpc: RpcClient
    funder: str  # DevnetUSD's minter
    traders: list[TraderState] = field(default_factory=list)
    lps: list[LpState] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self):
        self.rng = random.Random(self.scenario.seed)
        engine, vault, token = (self.contracts.engine.contract_type,
                                self.contracts.vault.contract_type,
                                self.contracts.token.contract_type)
        self._deposit_for = AbiMethod.of(engine, "deposit", arity=3)
        self._trade = AbiMethod.of(engine, "modify_position", arity=3)
        self._close = AbiMethod.of(engine, "close_position", arity=2)
        self._mint = AbiMethod.of(token, "mint")
        self._approve = AbiMethod.of(token, "approve")
        self._vault_deposit = AbiMethod.of(vault, "deposit")
        self._request_redeem = AbiMethod.of(vault, "request_redeem")
        self._redeem = AbiMethod.of(vault, "redeem")
        self.scale = 10 ** int(self.contracts.token.decimals())
        addresses = (to_checksum_address(f"0x{FIRST_PARTICIPANT + i:040x}") for i in range(10**6))
        for group in self.scenario.traders:
            for _ in range(group.count):
                self.traders.append(TraderState(
                    group, next(addresses), _draw(self.rng, group.collateral).quantize(Decimal(1)),
                    _draw(self.rng, group.leverage),
                    self.rng.randint(group.hold_rounds.low, group.hold_rounds.high)))
        self.lps = [LpState(spec, next(addresses)) for spec in self.scenario.lps]
        self.limits = {}
        for name, market_id in self.market_ids.items():
            params = self.contracts.engine.params(market_id)
            self.limits[name] = {"imr": Decimal(params.imr) / WAD,
                                 "max_position_size": Decimal(params.max_position_size) / WAD}

    @property
    def addresses(self) -> list[str]:
        return [t.address for t in self.traders] + [lp.address for lp in self.lps]

    # ---- set-up ----

    def fund(self) -> None:
        """Gas for everyone, and each trader's collateral in the engine: minted to the funder and
        deposited for the trader (``deposit(amount, 0, owner)``), one block."""
        self.rpc.call("anvil_autoImpersonateAccount", [True])
        self.rpc.batch([("anvil_setBalance", [a, hex(GAS_BALANCE_WEI)]) for a in self.addresses])
        total = sum(self._units(t.collateral) for t in self.traders)
        engine = str(self.contracts.engine.address)
        txs = [self._tx(self.funder, self.contracts.token, self._mint.calldata(self.funder, total)),
               self._tx(self.funder, self.contracts.token, self._approve.calldata(engine, total))]
        txs += [self._tx(self.funder, self.contracts.engine,
                         self._deposit_for.calldata(self._units(t.collateral), 0, t.address))
                for t in self.traders]
        refused = self.send_block(txs)
        if refused:
            raise ScenarioRunError(f"funding the traders: {refused} transactions reverted")

    # ---- a round ----

    def plan(self, round_number: int) -> RoundPlan:
        """Reads every participant and market (one multicall) and decides the round."""
        plan = RoundPlan()
        accounts, lp_reads, markets = self._read()
        for trader, (equity, positions) in zip(self.traders, accounts, strict=True):
            self._decide(trader, equity, positions, markets, round_number, plan)
        for lp, (shares, claimable) in zip(self.lps, lp_reads, strict=True):
            self._lp_step(lp, round_number, shares, claimable, plan)
        return plan

    def _read(self):
        engine, vault = self.contracts.engine, self.contracts.vault
        call = Call()
        for market_id in self.market_ids.values():
            call.add(engine.index_price, market_id, allowFailure=True)
            call.add(engine.is_reduce_only, market_id, allowFailure=True)
            call.add(engine.is_halted, market_id, allowFailure=True)
        for trader in self.traders:
            call.add(engine.account_health, trader.address, 0, allowFailure=True)
            for name in self._markets_of(trader.group):
                call.add(engine.open_positions, trader.address, 0, self.market_ids[name])
        for lp in self.lps:
            call.add(vault.balanceOf, lp.address)
            call.add(vault.maxRedeem, lp.address)
        answers = iter(list(call()))
        markets = {}
        for name in self.market_ids:
            index, reduce_only, halted = next(answers), next(answers), next(answers)
            markets[name] = MarketView(
                index=None if index is None else Decimal(index) / WAD,
                tradable=index is not None and reduce_only is False and halted is False,
                **self.limits[name])
        accounts = []
        for trader in self.traders:
            health = next(answers)
            equity = None if health is None else Decimal(health.equity) / WAD
            positions = {name: int(next(answers).size) for name in self._markets_of(trader.group)}
            accounts.append((equity, positions))
        lp_reads = [(int(next(answers)), int(next(answers))) for _ in self.lps]
        return accounts, lp_reads, markets

    def _decide(self, trader: TraderState, equity: Decimal | None, positions: dict[str, int],
                markets: dict[str, MarketView], round_number: int, plan: RoundPlan) -> None:
        if equity is None:  # a price the engine cannot read: nobody can trade it this round
            return
        held = {name: size for name, size in positions.items() if size != 0}
        if held:
            if trader.opened_round is None:
                trader.opened_round = round_number
            stopped = (trader.group.stop_loss > 0
                       and equity < trader.collateral * (1 - trader.group.stop_loss))
            if round_number - trader.opened_round < trader.hold_rounds and not stopped:
                return
            # a close needs a usable price: the position waits for the next round otherwise
            closable = {name: size for name, size in held.items() if markets[name].index}
            if not closable:
                return
            trader.opened_round = None
            plan.stopped += len(closable) if stopped else 0
            plan.closes += [
                self._tx(trader.address, self.contracts.engine,
                         self._close.calldata(self.market_ids[name],
                                              0 if size > 0 else MAX_UINT256))
                for name, size in closable.items()]
            return
        trader.opened_round = None
        if equity < trader.collateral * RETIRE_BELOW:
            return
        if self.rng.random() >= trader.group.open_probability:
            return
        choices = [name for name in self._markets_of(trader.group) if markets[name].tradable]
        if not choices:
            return
        name = self.rng.choice(choices)
        market = markets[name]
        long = self.rng.random() < trader.group.long_share
        leverage = min(trader.leverage, LEVERAGE_HEADROOM / market.imr)
        size = (equity * leverage / market.index).quantize(SIZE_QUANTUM, ROUND_DOWN)
        size = min(size, market.max_position_size)
        if size <= 0:
            return
        trader.opened_round = round_number
        delta = int(size * WAD) * (1 if long else -1)
        plan.opens.append(self._tx(trader.address, self.contracts.engine,
                                   self._trade.calldata(self.market_ids[name], delta,
                                                        MAX_UINT256 if long else 0)))

    def _lp_step(self, lp: LpState, round_number: int, shares: int, claimable: int,
                 plan: RoundPlan) -> None:
        vault, token = self.contracts.vault, self.contracts.token
        if not lp.entered and round_number >= lp.spec.enter_round:
            lp.entered = True
            units = self._units(lp.spec.deposit)
            plan.lp_deposited += lp.spec.deposit
            plan.funding.append(self._tx(self.funder, token, self._mint.calldata(lp.address, units)))
            plan.lp += [
                self._tx(lp.address, token, self._approve.calldata(str(vault.address), units)),
                self._tx(lp.address, vault, self._vault_deposit.calldata(units, lp.address))]
            return
        leave = lp.spec.leave_round
        if lp.entered and not lp.requested and leave is not None and round_number >= leave:
            lp.requested = True
            plan.lp.append(self._tx(lp.address, vault, self._request_redeem.calldata(shares)))
        elif lp.requested and not lp.left and claimable > 0:
            # the utilization limit may let only part out: the rest is claimed later
            lp.left = claimable >= shares
            plan.lp_redeemed_shares += claimable
            plan.lp.append(self._tx(lp.address, vault,
                                    self._redeem.calldata(claimable, lp.address, lp.address)))

    # ---- sending ----

    def send_block(self, txs: list[dict]) -> int:
        """Sends ``txs`` in one post with automine off and mines them; returns how many reverted."""
        if not txs:
            return 0
        self.rpc.call("evm_setAutomine", [False])
        try:
            hashes = [r.unwrap() for r in self.rpc.batch([("eth_sendTransaction", [tx]) for tx in txs])]
            receipts: dict[str, dict] = {}
            while len(receipts) < len(hashes):  # a full block leaves the rest in the pool
                self.rpc.call("evm_mine", [])
                answers = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes
                                          if h not in receipts])
                waiting = [h for h in hashes if h not in receipts]
                receipts.update({h: r.unwrap() for h, r in zip(waiting, answers) if r.unwrap()})
        finally:
            self.rpc.call("evm_setAutomine", [True])
        return sum(int(receipt["status"], 16) == 0 for receipt in receipts.values())

    def _tx(self, sender: str, contract, data: str) -> dict:
        return {"from": sender, "to": str(contract.address), "gas": hex(TX_GAS), "data": data}

    def _units(self, amount: Decimal) -> int:
        return int(amount * self.scale)

    def _markets_of(self, group: TraderGroup) -> list[str]:
        return group.markets or list(self.market_ids)


def _draw(rng: random.Random, span: Range) -> Decimal:
    if span.low == span.high:
        return span.low
    return Decimal(repr(rng.uniform(float(span.low), float(span.high)))).quantize(Decimal("0.01"))
