"""The unit conversions are exact: no float, and no rounding at Decimal's default 28 digits,
whatever the size of a uint256 or int256."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from vyperp.units import EXACT, WAD, from_units, from_wad, to_token_units, to_wad

INT256 = st.integers(min_value=-(2**255), max_value=2**255 - 1)


def test_from_wad_of_one_unit_is_exact():
    assert from_wad(1) == Decimal("1e-18")
    assert from_wad(WAD) == 1
    assert isinstance(from_wad(1), Decimal)


def test_from_wad_keeps_every_digit_of_large_values():
    # 2**256 - 1 has 78 digits: Decimal's default context would keep 28 of them (compared as
    # text, since the Vyper compiler widens the default context of this process)
    assert str(from_wad(2**256 - 1)) == (
        "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
    )
    assert str(from_wad(-(2**255))) == (
        "-57896044618658097711785492504343953926634992332820282019728.792003956564819968"
    )


@given(INT256)
def test_to_wad_inverts_from_wad(value):
    assert to_wad(from_wad(value)) == value


@given(INT256, st.integers(min_value=0, max_value=30))
def test_from_units_is_exact(value, decimals):
    assert from_units(value, decimals).scaleb(decimals, EXACT) == value


def test_to_token_units_rounds_down():
    assert to_token_units("1.0000009", 6) == 1_000_000
    assert to_token_units(f"{2**200}.5", 0) == 2**200
