"""Fixtures of the titanoboa property suite (tests/fuzz): one in-process protocol per module.

These tests run on titanoboa's embedded EVM (tests/boa_protocol.py), not on anvil, and use no
Ape fixture: they run the same under `ape test tests/fuzz` and `pytest tests/fuzz -p no:ape_test`.
Each deployment is made once per module; tests isolate every Hypothesis example with
`boa.env.anchor()`, which rolls back state and the block clock in microseconds.
"""

import boa
import pytest
from boa_protocol import deploy_boa_protocol

from vyperp.units import WAD


@pytest.fixture(scope="module")
def boa_protocol():
    """Token, oracle, engine, vault, lens and market 0, deployed once per module inside an anchor.
    A 100 % breaker move cannot trip while tests keep the price inside a band narrower than 2x."""
    with boa.env.anchor():
        yield deploy_boa_protocol(breaker_move=WAD)
