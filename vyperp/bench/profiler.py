"""Where the gas goes: each traced transaction's opcode trace (`debug_traceTransaction`) joined
with the compiler's storage layout, so storage slots carry the contracts' variable names."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

import click
from eth_utils import keccak

from vyperp.bench.gas_scenarios import MARKETS, SteadyMarkets
from vyperp.bench.report import ROOT, Section, fmt_gas
from vyperp.params import MarketConfig

STRUCT_FIELDS = {
    "MarketParams": [f.name for f in fields(MarketConfig)],
    "Position": ["size", "cost", "funding_snapshot"],
}
CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}
ACCESS_KINDS = ("cold read", "warm read", "write 0→x", "write x→y", "write, no change")
# Intrinsic gas of every transaction (its calldata comes on top).
BASE_TX_GAS = 21_000


def storage_layout(source: str) -> dict[str, dict]:
    """Variable name (module-qualified) -> {type, slot}, from `vyper -f layout`."""
    vyper = shutil.which("vyper") or str(Path(sys.executable).with_name("vyper"))
    out = subprocess.run(
        [vyper, "-f", "layout", source], cwd=ROOT, check=True, capture_output=True, text=True
    )
    flat = {}

    def walk(prefix, node):
        for name, entry in node.items():
            if "slot" in entry and "type" in entry:
                flat[prefix + name] = entry
            else:
                walk(f"{prefix}{name}.", entry)

    walk("", json.loads(out.stdout)["storage_layout"])
    return flat


def _hashmap_slot(slot: int, key: int) -> int:
    # Vyper places HashMap[k] at keccak256(slot ++ key), unlike Solidity's key ++ slot.
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + key.to_bytes(32, "big")), "big")


def _key_types(type_str: str) -> tuple[list[str], str]:
    keys = []
    while type_str.startswith("HashMap["):
        key, _, type_str = type_str[len("HashMap[") : -1].partition(", ")
        keys.append(key)
    return keys, type_str


def slot_labels(layout: dict, addresses: dict[str, str], ints: range) -> dict[int, str]:
    """Storage slot -> readable name, for HashMap keys drawn from the given addresses and ints."""
    candidates = {
        "address": [(name, int(addr, 16)) for name, addr in addresses.items()],
        "uint256": [(str(i), i) for i in ints],
    }
    labels = {}
    for name, entry in layout.items():
        keys, value_type = _key_types(entry["type"])
        slots = [(name, entry["slot"])]
        for key_type in keys:
            slots = [
                (f"{label}[{kname}]", _hashmap_slot(slot, kval))
                for label, slot in slots
                for kname, kval in candidates.get(key_type, [])
            ]
        for label, slot in slots:
            if value_type in STRUCT_FIELDS:
                labels.update(
                    {slot + i: f"{label}.{f}" for i, f in enumerate(STRUCT_FIELDS[value_type])}
                )
            elif value_type.startswith("DynArray"):
                labels[slot] = f"{label}.length"
                labels.update({slot + 1 + i: f"{label}[{i}]" for i in range(16)})
            else:
                labels[slot] = label
    return labels


@dataclass
class Access:
    contract: str
    label: str
    op: str
    gas: int
    depth: int

    @property
    def kind(self) -> str:
        if self.op == "SLOAD":
            return "cold read" if self.gas >= 2_100 else "warm read"
        if self.gas >= 20_000:
            return "write 0→x"
        if self.gas >= 2_900:
            return "write x→y"
        return "write, no change"


@dataclass
class TxProfile:
    accesses: list[Access]
    calls: dict[str, list[int]]  # callee name -> [count, inclusive gas]
    log_gas: int
    # (contract, opcode) -> gas of that opcode in that contract, calls excluded
    op_gas: dict[tuple[str, str], int] = field(default_factory=dict)

    def own_accesses(self) -> list[Access]:
        """All accesses but the oracles' reads on the engine's behalf (counted in the calls' gas)."""
        return [a for a in self.accesses if not (a.contract.startswith("oracle") and a.depth > 1)]

    def count(self, kind: str) -> int:
        return sum(1 for a in self.own_accesses() if a.kind == kind)

    def storage_gas(self) -> int:
        return sum(a.gas for a in self.own_accesses())

    def oracle_calls(self) -> tuple[int, int]:
        pairs = [v for name, v in self.calls.items() if name.startswith("oracle")]
        return sum(c for c, _ in pairs), sum(g for _, g in pairs)


class Profiler:
    """Traces transactions and names their storage slots after the contracts' variables."""

    def __init__(self, net: SteadyMarkets):
        self.provider = net.chain.provider
        addresses = {
            "trader": net.trader.address,
            "cross": net.cross_trader.address,
            "background": net.background.address,
            "admin": net.admin.address,
            "lp": net.lp.address,
            "lp2": net.second_lp.address,
            "vault": net.vault.address,
        }
        addresses.update({f"reporter{i}": r.address for i, r in enumerate(net.reporters)})
        rounds = range(net.oracles[0].latestRound() + 2)
        engine_labels = slot_labels(
            storage_layout("contracts/Engine.vy"), addresses, range(len(MARKETS) + 1)
        )
        oracle_labels = slot_labels(storage_layout("contracts/PriceOracle.vy"), addresses, rounds)
        self.names = {
            net.engine.address.lower(): "engine",
            net.token.address.lower(): "token",
            net.vault.address.lower(): "vault",
        }
        self.labels = {net.engine.address.lower(): engine_labels}
        for i, oracle in enumerate(net.oracles):
            self.names[oracle.address.lower()] = f"oracle{i}"
            self.labels[oracle.address.lower()] = oracle_labels

    def profile(self, receipt) -> TxProfile:
        trace = self.provider.make_request(
            "debug_traceTransaction",
            [
                receipt.txn_hash,
                {"disableStorage": True, "enableMemory": False, "disableStack": False},
            ],
        )
        steps = trace["structLogs"]
        frames = [receipt.receiver.lower()]
        accesses, log_gas = [], 0
        calls = defaultdict(lambda: [0, 0])
        op_gas = defaultdict(int)
        for i, step in enumerate(steps):
            op, depth, cost = step["op"], step["depth"], step["gasCost"]
            del frames[depth:]
            contract = frames[depth - 1]
            if op not in CALLS:
                op_gas[(self.names.get(contract, contract[:10]), op)] += cost
            if op in ("SLOAD", "SSTORE"):
                slot = int(step["stack"][-1], 16)
                label = self.labels.get(contract, {}).get(slot, f"slot {hex(slot)[:10]}…")
                accesses.append(
                    Access(self.names.get(contract, contract[:10]), label, op, cost, depth)
                )
            elif op.startswith("LOG"):
                log_gas += cost
            elif op in CALLS:
                target = ("0x" + step["stack"][-2][2:].rjust(40, "0")[-40:]).lower()
                frames.append(target)
                # Inclusive cost: gas left before the call minus gas left once its frame returned.
                after = next((s for s in steps[i + 1 :] if s["depth"] == depth), None)
                if after is not None:
                    entry = calls[self.names.get(target, target[:10])]
                    entry[0] += 1
                    entry[1] += step["gas"] - after["gas"]
        return TxProfile(accesses, dict(calls), log_gas, dict(op_gas))


def _group_label(access: Access) -> str:
    label = access.label
    if "_observations[" in label:
        # Which oracle rounds the TWAP visits does not matter, how many it does.
        label = "_observations[round]"
    elif ".params[" in label:
        # Every parameter is its own slot; together they are one cost centre.
        label = label.rsplit(".", 1)[0] + ".* (one slot per field)"
    return f"{access.contract}.{label}"


def slot_table(profile: TxProfile, limit: int = 15) -> list[str]:
    grouped = defaultdict(lambda: defaultdict(int))
    for a in profile.accesses:
        entry = grouped[_group_label(a)]
        entry[a.kind] += 1
        entry["gas"] += a.gas
    ranked = sorted(grouped.items(), key=lambda kv: -kv[1]["gas"])
    lines = ["| storage slot | accesses | gas |", "|---|---|---:|"]
    for label, entry in ranked[:limit]:
        kinds = ", ".join(f"{entry[k]} {k}" for k in ACCESS_KINDS if entry[k])
        lines.append(f"| `{label}` | {kinds} | {fmt_gas(entry['gas'])} |")
    if ranked[limit:]:
        rest = sum(e["gas"] for _, e in ranked[limit:])
        lines.append(f"| other {len(ranked) - limit} slots | | {fmt_gas(rest)} |")
    return lines


def where_the_gas_goes(net: SteadyMarkets, sections: list[Section]) -> Section:
    """Per traced row: cold reads, fresh writes and oracle calls; and the open's slots in detail."""
    profiler = Profiler(net)
    rows = [r for s in sections for r in s.rows if r.traced]
    try:
        profiler.profile(rows[0].receipt)
    except Exception as err:  # noqa: BLE001 - any provider without debug tracing
        return Section("Where the gas goes", intro=[f"No opcode trace on this provider ({err})."])
    lines = [
        (
            "From the opcode trace (`debug_traceTransaction`) of each transaction. Storage gas is opcode "
            "cost before refunds (EIP-2929/2200: cold read 2,100, warm read 100; write 0→x 20,000, "
            "x→y 2,900, each +2,100 when the slot is cold) of the engine, token and vault; the oracles' "
            "own reads are inside `oracle gas` (inclusive cost of the calls). `floor` is 21,000 + "
            "storage gas + oracle gas + log gas: what the transaction would cost, before refunds, "
            "if its own computation and calldata were free."
        ),
        "",
        "| operation | gas | cold reads | warm reads | writes 0→x | writes x→y | storage gas | oracle calls | oracle gas | log gas | floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    profiles = {}
    for row in rows:
        prof = profiles[row.operation] = profiler.profile(row.receipt)
        count, gas = prof.oracle_calls()
        floor = BASE_TX_GAS + prof.storage_gas() + gas + prof.log_gas
        lines.append(
            f"| {row.operation} | {fmt_gas(row.gas)} | {prof.count('cold read')} | {prof.count('warm read')} | "
            f"{prof.count('write 0→x')} | {prof.count('write x→y')} | {fmt_gas(prof.storage_gas())} | "
            f"{count} | {fmt_gas(gas)} | {fmt_gas(prof.log_gas)} | {fmt_gas(floor)} |"
        )
    opened = next(r for r in rows if r.operation.startswith("open position (account"))
    lines += [
        "",
        f"Storage slots behind **{opened.operation}** ({fmt_gas(opened.gas)} gas), costliest first:",
        "",
    ]
    lines += slot_table(profiles[opened.operation])
    if EXPLAIN:
        for operation, prof in profiles.items():
            click.echo(f"\n## {operation}\n" + "\n".join(slot_table(prof, limit=60)))
            ranked = sorted(prof.op_gas.items(), key=lambda kv: -kv[1])
            click.echo("opcode gas (contract, opcode): " + ", ".join(f"{c}.{o} {g:,}" for (c, o), g in ranked[:25]))
    section = Section("Where the gas goes", extra_markdown="\n".join(lines))
    return section


# Set by `--explain`: print every traced transaction's slots and opcode gas.
EXPLAIN = False
