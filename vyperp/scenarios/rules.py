"""PROTOCOL.md's solvency rules judged on snapshots: S1, S2, S3 and S7, at every observation.

Each check is the rule's statement made measurable with the engine's own integers:

- S1 (ledger): the engine's tokens >= every account's collateral (all holders the scenario
  knows: traders, LPs, keepers) + insurance + max(vault balance, 0); the vault balance, the
  insurance fund and every collateral are >= 0. Worst value: the smallest surplus of tokens
  over claims.
- S2 (counterparty cap): traders' net unrealized PnL at mark over the vault's assets (the
  engine's `_traders_net_pnl` and `_vault_assets`) decides ADL: above `max_pnl_factor`
  `adl_eligible()` must be true, at or below `adl_target` false; and no close is paid more
  than it realized (`ProfitCapped.paid <= realized_pnl`). Worst value: the highest ratio.
- S3 (caps that bound loss): every market's `max_oi_vault_ratio x breaker_move <=
  max_pnl_factor`; a side whose open interest grew since the previous observation holds
  `OI x index <= vault balance x max_oi_vault_ratio` (the engine's check; observed right after a
  block of openings only, so the state is the one the engine checked); no owner's exposure
  exceeds `max_position_size`. Worst value: the largest `OI x index x breaker_move /
  (max_pnl_factor x vault)` over the sides judged (a price move or a vault loss can push a side
  over afterwards: that is what the cap bounds, shown as "passive" in the detail).
- S7 (vault share price): the entry valuation is never below the exit valuation, and a deposit
  of 100,000 dUSD gets no more shares than the same assets are worth at the exit valuation (a
  deposit redeemed at once returns no more than it paid). Worst value: that round trip's gain
  in basis points (<= 0 passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vyperp.scenarios.observe import Snapshot

WAD = 10**18
RULES = {
    "S1": "Ledger: engine tokens cover all collateral, insurance and the vault; none negative",
    "S2": "Counterparty cap: ADL eligibility follows profit / vault; no close paid above its "
          "profit",
    "S3": "Caps that bound loss: OI x index x breaker move <= vault x max_pnl_factor where OI "
          "grew; owner caps",
    "S7": "Vault share price: entry valuation >= exit valuation; an immediate deposit round trip "
          "gains nothing",
}


def _mul_floor(x: int, y: int) -> int:
    return (x * y) // WAD


def _mul_up(x: int, y: int) -> int:
    return -((-x * y) // WAD)


@dataclass
class RuleVerdict:
    """One rule over a run: checks made, failures (first few kept), and the worst value."""

    rule: str
    worse: str  # "min" or "max": which direction of the value is worse
    unit: str
    checks: int = 0
    failures: list[str] = field(default_factory=list)
    failed_checks: int = 0
    worst: float | None = None
    worst_at: str = ""
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.failed_checks == 0 and self.checks > 0

    def saw(self, value: float | None, where: str) -> None:
        if value is None:
            return
        if (self.worst is None or (value < self.worst if self.worse == "min"
                                   else value > self.worst)):
            self.worst, self.worst_at = value, where

    def fail(self, where: str, problems: list[str]) -> None:
        if problems:
            self.failed_checks += 1
            if len(self.failures) < 5:
                self.failures.append(f"{where}: " + "; ".join(problems))


class SolvencyJudge:
    """Checks every snapshot it is given against S1, S2, S3 and S7."""

    def __init__(self):
        self.verdicts = {
            "S1": RuleVerdict("S1", "min", "dUSD surplus"),
            "S2": RuleVerdict("S2", "max", "profit / vault"),
            "S3": RuleVerdict("S3", "max", "of the cap"),
            "S7": RuleVerdict("S7", "max", "bps round-trip gain"),
        }
        self.passive_s3 = 0.0

    def judge(self, snapshot: Snapshot, where: str, *, previous: Snapshot | None,
              openings_only: bool, events: list) -> dict[str, float | None]:
        """Judges one snapshot; returns the value of each rule at it for the time series (S3:
        the largest use of the bound over all sides, judged or not)."""
        values = {
            "S1": self._s1(snapshot, where),
            "S2": self._s2(snapshot, where, events),
            "S3": self._s3(snapshot, where, previous if openings_only else None),
            "S7": self._s7(snapshot, where),
        }
        return values

    def _s1(self, s: Snapshot, where: str) -> float:
        verdict = self.verdicts["S1"]
        verdict.checks += 1
        claims = (sum(max(c, 0) for c in s.collateral.values()) + max(s.insurance, 0)
                  + max(s.vault_balance, 0))
        problems = []
        if s.vault_balance < 0:
            problems.append(f"vault balance {s.vault_balance / WAD:,.2f} < 0")
        if s.insurance < 0:
            problems.append(f"insurance {s.insurance / WAD:,.2f} < 0")
        negative = [owner for owner, c in s.collateral.items() if c < 0]
        if negative:
            problems.append(f"{len(negative)} accounts with negative collateral")
        if s.engine_tokens < claims:
            problems.append(f"engine holds {s.engine_tokens / WAD:,.2f} < claims "
                            f"{claims / WAD:,.2f}")
        verdict.fail(where, problems)
        surplus = (s.engine_tokens - claims) / WAD
        verdict.saw(surplus, where)
        return surplus

    def _s2(self, s: Snapshot, where: str, events: list) -> float | None:
        verdict = self.verdicts["S2"]
        problems = [f"ProfitCapped paid {e.args['paid'] / WAD:,.2f} above realized "
                    f"{e.args['realized_pnl'] / WAD:,.2f}"
                    for e in events if e.name == "ProfitCapped"
                    and e.args["paid"] > e.args["realized_pnl"]]
        ratio = None
        marks_known = all(m.mark is not None for m in s.markets if m.skew or m.cost_sum)
        if marks_known:
            pnl = sum(_mul_floor(m.skew, m.mark) - m.cost_sum
                      for m in s.markets if m.skew or m.cost_sum)
            repayable = min(s.vault_bad_debt, max(s.insurance, 0))
            assets = max(s.vault_balance + repayable, 0)
            if assets > 0:
                ratio = pnl / assets
            if s.adl_eligible is not None:
                if pnl > _mul_floor(assets, s.max_pnl_factor) and not s.adl_eligible:
                    problems.append(f"profit/vault {ratio:.3f} above max_pnl_factor but ADL "
                                    "not eligible")
                if pnl <= _mul_floor(assets, s.adl_target) and s.adl_eligible:
                    problems.append(f"profit/vault {ratio:.3f} at or below adl_target but ADL "
                                    "eligible")
        if marks_known or events:
            verdict.checks += 1
        verdict.fail(where, problems)
        verdict.saw(ratio, where)
        return ratio

    def _s3(self, s: Snapshot, where: str, previous: Snapshot | None) -> float | None:
        verdict = self.verdicts["S3"]
        verdict.checks += 1
        problems, worst, largest = [], None, None
        for index, market in enumerate(s.markets):
            config = market.config
            ratio = config.max_oi_vault_ratio
            if ratio == 0 or _mul_floor(ratio, config.breaker_move) > s.max_pnl_factor:
                problems.append(f"{market.name}: max_oi_vault_ratio {ratio / WAD} x breaker move "
                                f"{config.breaker_move / WAD} above max_pnl_factor")
            if market.index is None:
                continue
            capacity = _mul_floor(max(s.vault_balance, 0), ratio)
            bound = _mul_floor(max(s.vault_balance, 0), s.max_pnl_factor)
            for side, interest in (("long", market.long_oi), ("short", market.short_oi)):
                notional = _mul_up(interest, market.index)
                use = (_mul_floor(notional, config.breaker_move) / bound) if bound else None
                if use is not None:
                    self.passive_s3 = max(self.passive_s3, use)
                    largest = use if largest is None else max(largest, use)
                before = None if previous is None else (
                    previous.markets[index].long_oi if side == "long"
                    else previous.markets[index].short_oi)
                if before is None or interest <= before:
                    continue
                if notional > capacity:
                    problems.append(f"{market.name} {side}s grew to {notional / WAD:,.0f} of "
                                    f"notional, over the vault capacity {capacity / WAD:,.0f}")
                if use is not None:
                    worst = use if worst is None else max(worst, use)
            for (owner, market_id), exposure in s.exposures.items():
                if market_id == index and exposure > config.max_position_size:
                    problems.append(f"{market.name}: an owner's exposure {exposure / WAD} above "
                                    f"max_position_size")
        verdict.fail(where, problems)
        verdict.saw(worst, where)
        verdict.note = f"passive (after price moves and vault losses): up to {self.passive_s3:.2f}"
        return largest

    def _s7(self, s: Snapshot, where: str) -> float | None:
        verdict = self.verdicts["S7"]
        if s.vault_equity is None or s.vault_entry_equity is None:
            return None
        verdict.checks += 1
        problems = []
        if s.vault_entry_equity < s.vault_equity:
            problems.append(f"entry valuation {s.vault_entry_equity / WAD:,.2f} below exit "
                            f"valuation {s.vault_equity / WAD:,.2f}")
        gain = None
        if s.probe_shares_deposit is not None and s.probe_shares_exit:
            gain = (s.probe_shares_deposit / s.probe_shares_exit - 1) * 10_000
            if s.probe_shares_deposit > s.probe_shares_exit:
                problems.append(f"a deposit gets {gain:.2f} bps more shares than it is worth")
        verdict.fail(where, problems)
        verdict.saw(gain, where)
        return gain
