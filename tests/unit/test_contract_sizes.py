"""Room to build: every deployable contract stays 1,024 bytes under EIP-170, and the engine's
facets never shadow each other (over the compiler's output, no node needed).

The Engine dispatches by selector: its own functions first, then its fallback sends the
selectors listed in RISK_SELECTORS to EngineRisk and every other one to EngineAdmin. A
selector in two of the three would silently reach only one of them.

Callers of the engine (EngineLens, LiquidityVault, OrderBook) use the one declaration of its
interface, contracts/interfaces/IEngine.vyi; every function it declares must be one the engine
answers, as a function of Engine, EngineRisk or EngineAdmin.
"""

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from boa_protocol import contract
from eth_utils import function_signature_to_4byte_selector
from vyper.compiler.output import build_abi_output

EIP170_LIMIT = 24_576
REQUIRED_HEADROOM = 1_024
DEPLOYABLES = ["Engine", "EngineAdmin", "EngineRisk", "EngineLens", "LiquidityVault", "OrderBook", "PriceOracle", "DevnetUSD"]
ENGINE_PARTS = ["Engine", "EngineAdmin", "EngineRisk"]
ENGINE_INTERFACE = "contracts/interfaces/IEngine.vyi"


def compile_path(path: str) -> tuple[list, bytes]:
    """(ABI, runtime bytecode) of a source. A contract comes from the suite's own compilation
    (boa_protocol.contract, once per process: the size measured is the code the tests run); an
    interface has no bytecode and is compiled for its ABI alone."""
    if path.endswith(".vyi"):
        return _interface_abi(path), b""
    compiled = contract(Path(path).relative_to("contracts").with_suffix("").as_posix()).compiler_data
    return build_abi_output(compiled), compiled.bytecode_runtime


@cache
def _interface_abi(path: str) -> list:
    out = subprocess.run(["vyper", "-f", "abi", path], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def contract_path(name: str) -> str:
    return f"contracts/{name}.vy"


def abi_functions(path: str) -> set[tuple[str, tuple[str, ...], str]]:
    """(signature, output types, stateMutability) of every function in the file's ABI; a
    function with default arguments appears once per overload, as in the ABI."""
    abi = compile_path(path)[0]
    return {
        (
            f"{item['name']}({','.join(_abi_type(arg) for arg in item['inputs'])})",
            tuple(_abi_type(arg) for arg in item["outputs"]),
            item["stateMutability"],
        )
        for item in abi
        if item["type"] == "function"
    }


def function_selectors(name: str) -> dict[str, str]:
    """Selector (0x-hex) -> signature of every external function in the contract's ABI."""
    abi = compile_path(contract_path(name))[0]
    selectors = {}
    for item in abi:
        if item["type"] != "function":
            continue
        signature = f"{item['name']}({','.join(_abi_type(arg) for arg in item['inputs'])})"
        selectors["0x" + function_signature_to_4byte_selector(signature).hex()] = signature
    return selectors


def _abi_type(arg) -> str:
    if arg["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + arg["type"][len("tuple"):]
    return arg["type"]


@pytest.mark.parametrize("name", DEPLOYABLES)
def test_deployable_keeps_a_kilobyte_under_eip170(name):
    size = len(compile_path(contract_path(name))[1])
    assert size <= EIP170_LIMIT - REQUIRED_HEADROOM, (
        f"{name} runtime is {size} bytes: {EIP170_LIMIT - size} under EIP-170, needs {REQUIRED_HEADROOM}"
    )


def test_engine_and_facets_share_no_selector():
    owners: dict[str, list[str]] = {}
    for name in ENGINE_PARTS:
        for selector, signature in function_selectors(name).items():
            owners.setdefault(selector, []).append(f"{name}.{signature}")
    shared = {selector: names for selector, names in owners.items() if len(names) > 1}
    assert shared == {}


def test_engine_routes_exactly_the_risk_facets_selectors_to_it():
    source = Path("contracts/Engine.vy").read_text()
    block = source[source.index("RISK_SELECTORS:"):]
    block = block[: block.index("]\n") + 1]
    routed = set(re.findall(r'method_id\("([^"]+)"', block))
    assert routed == set(function_selectors("EngineRisk").values())


def test_engine_interface_matches_the_engine_and_its_facets():
    declared = abi_functions(ENGINE_INTERFACE)
    assert declared, f"{ENGINE_INTERFACE} declares no function"
    engine = set().union(*(abi_functions(contract_path(name)) for name in ENGINE_PARTS))
    by_signature = {signature: (outputs, mutability) for signature, outputs, mutability in engine}
    mismatched = {
        signature: {"IEngine.vyi": (outputs, mutability), "engine": by_signature.get(signature, "missing")}
        for signature, outputs, mutability in declared
        if by_signature.get(signature) != (outputs, mutability)
    }
    assert mismatched == {}


def test_interfaces_are_declared_once_and_implemented_by_name():
    """No contract or module declares an inline `interface`: each lives in contracts/interfaces/.
    Every interface there but IEngine (the engine and its facets answer it together; checked
    above) is named by some deployable's `implements:`, so the compiler checks the two agree."""
    sources = {path: path.read_text() for path in Path("contracts").rglob("*.vy") if path.parts[1] != "test"}
    inline = sorted(str(path) for path, text in sources.items() if re.search(r"^interface \w+:", text, re.M))
    assert inline == []
    implemented = {name for text in sources.values() for name in re.findall(r"^implements: (\w+)$", text, re.M)}
    declared = {path.stem for path in Path("contracts/interfaces").glob("*.vyi")}
    assert declared - implemented == {"IEngine"}
