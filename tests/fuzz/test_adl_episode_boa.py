"""S2's deleveraging hysteresis ends with its episode. Deleveraging opens when traders' net profit
crosses max_pnl_factor of the vault and, once running, goes on down to adl_target. Before, the
"running" flag was cleared only by a deleverage that ended at or under adl_target: when the ratio
fell there by itself (the price turned), the flag stayed set, and days later a rise to between
adl_target and max_pnl_factor let anyone deleverage winners although the cap was never crossed
again. Now an episode ends ADL_EPISODE (1 h) after its last deleverage."""

import boa

from boa_protocol import MAX_UINT256, START_PRICE, oracle_answer
from vyperp.units import WAD

UNITS = 10**6
SIZE = 8 * WAD


def test_deleveraging_does_not_reopen_below_the_cap_after_its_episode_boa(boa_protocol):
    p = boa_protocol
    winner, keeper = p.traders[0], p.traders[1]
    with boa.env.anchor():
        p.set_market(max_oi_vault_ratio=5 * WAD)
        p.seed_vault(1_000_000 * UNITS)
        p.deposit(winner, 300_000 * UNITS)
        p.engine.modify_position(0, SIZE, MAX_UINT256, sender=winner)
        boa.env.time_travel(seconds=1)
        p.push_price(oracle_answer(215_000))  # profit 520,000: above half the vault
        assert p.engine_risk.adl_eligible()
        p.engine_risk.deleverage(0, winner, 0, WAD // 10, sender=keeper)  # the episode opens
        assert p.engine_risk.adl_eligible(), "a small deleverage leaves the ratio above adl_target"

        boa.env.time_travel(seconds=60)
        p.push_price(oracle_answer(200_000))  # the price turns: the ratio falls under adl_target
        assert not p.engine_risk.adl_eligible()

        with boa.env.anchor():  # within the episode the hysteresis holds: adl_target applies
            boa.env.time_travel(seconds=60)
            p.push_price(oracle_answer(209_000))
            assert p.engine_risk.adl_eligible()

        boa.env.time_travel(seconds=2 * 3600)
        p.push_price(oracle_answer(209_000))  # between adl_target and max_pnl_factor, a day later
        assert not p.engine_risk.adl_eligible()
        reason = p.revert_reason(lambda: p.engine_risk.deleverage(0, winner, 0, WAD, sender=keeper))
        assert reason == "liquidation: deleveraging not allowed"

        p.push_price(oracle_answer(START_PRICE * 3 // 2))  # +50 %: above the cap again, reopens
        assert p.engine_risk.adl_eligible()
