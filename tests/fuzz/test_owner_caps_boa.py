"""Per-owner caps (S3) on titanoboa: max_position_size holds across an owner's subaccounts.

The attack: the cap was checked per (owner, subaccount), so an owner split a position too large
for one account over as many subaccounts as it liked. Now the engine caps the sum of the owner's
absolute sizes in the market (`owner_exposure`). Test names end in `_boa`.
"""

import boa
import pytest

from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
TOKEN = 10**6
SIZE_LIMIT = "engine: position above size limit"


def capped_market(p):
    p.set_market(max_position_size=10 * WAD, max_premium=0, maker_fee=0, taker_fee=0)
    p.seed_vault(100_000_000 * TOKEN)


def test_a_position_split_over_subaccounts_stays_under_the_owner_cap_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        capped_market(p)
        owner = p.traders[0]
        for subaccount in range(3):
            p.engine.deposit(500_000 * TOKEN, subaccount, sender=owner)
        p.engine.modify_position(0, 6 * WAD, MAX_UINT256, 0, sender=owner)
        p.engine.modify_position(0, 4 * WAD, MAX_UINT256, 1, sender=owner)
        assert p.engine_admin.owner_exposure(owner, 0) == 10 * WAD
        # the third subaccount would take the owner to 10.1 BTC of a 10 BTC cap
        reason = p.revert_reason(lambda: p.engine.modify_position(0, WAD // 10, MAX_UINT256, 2, sender=owner))
        assert reason == SIZE_LIMIT
        # a short in another subaccount counts too: the cap is on the sum of absolute sizes
        reason = p.revert_reason(lambda: p.engine.modify_position(0, -WAD // 10, 0, 2, sender=owner))
        assert reason == SIZE_LIMIT
        # reducing frees room in every subaccount; another owner has its own room
        p.engine.modify_position(0, -2 * WAD, 0, 0, sender=owner)
        assert p.engine_admin.owner_exposure(owner, 0) == 8 * WAD
        p.engine.modify_position(0, -2 * WAD, 0, 2, sender=owner)
        assert p.engine_admin.owner_exposure(owner, 0) == 10 * WAD
        other = p.traders[1]
        p.deposit(other, 500_000 * TOKEN)
        p.engine.modify_position(0, 10 * WAD, MAX_UINT256, sender=other)
        assert p.engine_admin.owner_exposure(other, 0) == 10 * WAD


def test_closing_and_liquidation_keep_the_exposure_exact_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        capped_market(p)
        owner = p.traders[0]
        p.engine.deposit(1_000_000 * TOKEN, 0, sender=owner)
        p.engine.deposit(160_000 * TOKEN, 1, sender=owner)
        p.engine.modify_position(0, 5 * WAD, MAX_UINT256, 0, sender=owner)
        p.engine.modify_position(0, 5 * WAD, MAX_UINT256, 1, sender=owner)
        p.engine.close_position(0, 0, 0, sender=owner)
        assert p.engine_admin.owner_exposure(owner, 0) == 5 * WAD
        # a -18 % move puts subaccount 1 (5 BTC on 160,000) under maintenance: liquidation reduces it
        p.push_price(oracle_answer_pct(-18))
        p.engine_risk.liquidate(owner, 1, sender=p.traders[3])
        remaining = p.engine.open_positions(owner, 1, 0).size
        assert 0 <= remaining < 5 * WAD
        assert p.engine_admin.owner_exposure(owner, 0) == remaining


def oracle_answer_pct(percent):
    from boa_protocol import START_PRICE, oracle_answer

    return oracle_answer(START_PRICE * (100 + percent) // 100)
