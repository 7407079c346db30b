"""OrderBook._revert_reason on titanoboa: what reason an order cancelled by an engine revert carries.

The engine's checks all revert with an Error(string), which the order book passes on
(tests/unit/test_order_book.py). A revert without one (the empty revert of an arithmetic
overflow, a panic, a reason too long for the event) is not reachable through a valid order, so
these cases call the internal decoder directly.
"""

import boa
from boa_protocol import contract
import pytest
from eth_abi import encode

ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")
GENERIC = "order_book: engine refused the trade"


@pytest.fixture(scope="module")
def book(boa_protocol):
    with boa.env.anchor():
        yield contract("OrderBook").deploy(boa_protocol.engine)


def error(reason: str) -> bytes:
    return ERROR_SELECTOR + encode(["string"], [reason])


def test_an_error_string_is_passed_on(book):
    assert book.internal._revert_reason(error("engine: insufficient margin")) == "engine: insufficient margin"


def test_the_longest_reason_that_fits_the_event_is_passed_on(book):
    reason = "x" * 128
    assert book.internal._revert_reason(error(reason)) == reason


@pytest.mark.parametrize(
    "response",
    [
        b"",
        PANIC_SELECTOR + encode(["uint256"], [0x11]),
        error("x" * 129)[:196],
        ERROR_SELECTOR + encode(["uint256", "uint256"], [32, 200]),
    ],
    ids=["empty revert", "panic", "reason above 128 bytes", "length beyond the data"],
)
def test_any_other_revert_gets_the_generic_reason(book, response):
    assert book.internal._revert_reason(response) == GENERIC
