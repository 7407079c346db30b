"""PROTOCOL.md S7 (vault share price) against hostile LP flows, in-process on titanoboa.

Sections 1-3 replay, step by step, attacks the vault once allowed (each test failed on it):
- a flash LP: deposit, open a large trade whose skew premium the vault booked as a gain, redeem,
  close, all in one block (and the same with shares whose redemption was already claimable);
- just-in-time liquidity around a large fee-paying trade;
- an LP leaving before a liquidation with its share of a loss the trader could not pay.
Section 4 is the property behind them (any trade round trip around a claim, from any state),
section 5 the request mechanics that need the clock to the second or a forged storage word.

The fixes (docs/protocol.md §8): redemptions price at the exit valuation (traders' PnL at the
price their net position would close at, a market where traders net lose counts 0), deposits at
the entry valuation (the higher one), and a redemption is requested, then claimable only after
`withdrawal_delay`. Money is in token units (6 decimals) unless a name says wad.
"""

import boa
import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from boa_protocol import examples

from vyperp.units import WAD

pytestmark = pytest.mark.fuzz

MAX_UINT256 = 2**256 - 1
UNIT = 10**6


def usd(amount) -> int:
    return int(amount * UNIT)


def fmt(units) -> str:
    return f"{units / UNIT:,.6f}"


def escrowed(p, owner) -> int:
    return p.vault.redeem_request(owner)[0]


def lp_shares(p, owner) -> int:
    """All the owner's shares: in its wallet and escrowed in a redemption request."""
    return p.vault.balanceOf(owner) + escrowed(p, owner)


def wealth(p, owner) -> int:
    """Tokens in the wallet, collateral in the engine and vault shares at their redemption value."""
    collateral = p.engine.collateral(owner, 0) // p.scale
    shares = lp_shares(p, owner)
    return p.token.balanceOf(owner) + collateral + (p.vault.previewRedeem(shares) if shares else 0)


def republish(p):
    """The oracle's last answer again, now (time moved on; the price did not)."""
    p.push_price(p.oracle.latestAnswer())


def make_claimable(p, owner, shares):
    """Requests a redemption of `shares` and lets the withdrawal delay pass."""
    p.vault.request_redeem(shares, sender=owner)
    boa.env.time_travel(seconds=p.vault.withdrawal_delay())
    republish(p)


def flat_market(p, **changes):
    """Market 0 without funding, so waiting out the delay moves no money."""
    p.set_market(interest_rate=0, max_funding_rate=0, **changes)


# ---------------------------------------------------------------------------
# 1. Flash LP around a large trade that pays a refundable skew premium
# ---------------------------------------------------------------------------

HONEST_LP = usd(50_000_000)
FLASH_DEPOSIT = usd(50_000_000)
FLASH_SIZE = 250 * WAD  # 37,500,000 of notional: a 1.25 % average premium at skew_scale 10,000
FLASH_COLLATERAL = usd(10_000_000)


def flash_setup(p):
    flat_market(p, skew_scale=10_000 * WAD)
    p.vault.deposit(HONEST_LP, p.lp, sender=p.lp)
    attacker = p.traders[0]
    p.deposit(attacker, FLASH_COLLATERAL)
    return attacker


def premium_wad(p, size):
    """What a buy of `size` from zero skew pays above the index (the premium the old vault booked)."""
    index = p.engine.index_price(0)
    return (p.engine.fill_price(0, size) - index) * size // WAD


def test_flash_deposit_trade_redeem_close_in_one_block_takes_no_lp_equity_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        attacker = flash_setup(p)
        honest_before = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        wealth_before = wealth(p, attacker)
        premium = premium_wad(p, FLASH_SIZE) // p.scale

        # one block: deposit, open, redeem, close
        shares = p.vault.deposit(FLASH_DEPOSIT, attacker, sender=attacker)
        p.engine.modify_position(0, FLASH_SIZE, MAX_UINT256, sender=attacker)
        refused = p.revert_reason(lambda: p.vault.redeem(shares, attacker, attacker, sender=attacker))
        p.engine.close_position(0, 0, sender=attacker)

        assert p.engine.skew(0) == 0
        gain = wealth(p, attacker) - wealth_before
        honest_after = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        print(
            f"flash LP: premium {fmt(premium)}, redeem refused: {refused!r}, attacker gain {fmt(gain)}, "
            f"honest LP {fmt(honest_after - honest_before)}"
        )
        assert gain < 0, f"the flash LP gained {fmt(gain)} (premium {fmt(premium)})"
        assert honest_after >= honest_before, f"the honest LP lost {fmt(honest_before - honest_after)}"
        # the shares it still holds cannot leave before the delay
        assert refused == "vault: redemption not claimable"


def test_premium_is_not_redeemable_even_with_an_already_claimable_request_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        attacker = flash_setup(p)
        shares = p.vault.deposit(FLASH_DEPOSIT, attacker, sender=attacker)
        make_claimable(p, attacker, shares)
        honest_before = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        wealth_before = wealth(p, attacker)
        balance_before = p.engine.vault_balance()

        # one block: open, redeem every claimable share, close
        p.engine.modify_position(0, FLASH_SIZE, MAX_UINT256, sender=attacker)
        [opened] = p.events(p.engine, "PositionModified")
        fee_to_vault = opened.fee * p.engine_admin.vault_fee_share() // WAD
        equity_after_open = p.vault.equity()
        paid = p.vault.redeem(shares, attacker, attacker, sender=attacker)
        p.engine.close_position(0, 0, sender=attacker)

        gain = wealth(p, attacker) - wealth_before
        honest_after = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        print(f"claimable flash LP: paid {fmt(paid)}, attacker gain {fmt(gain)}, honest LP {fmt(honest_after - honest_before)}")
        assert gain < 0, f"the flash LP gained {fmt(gain)}"
        assert honest_after >= honest_before, f"the honest LP lost {fmt(honest_before - honest_after)}"
        # S7: a trade moves the redemption price by its fees and nothing else
        assert equity_after_open == balance_before + fee_to_vault
        # so it was paid its deposit plus at most the opening fee's share, none of the premium
        assert paid <= FLASH_DEPOSIT + fee_to_vault // p.scale


# ---------------------------------------------------------------------------
# 2. Just-in-time liquidity around a large fee-paying trade
# ---------------------------------------------------------------------------

JIT_DEPOSIT = usd(500_000_000)  # ten times the honest LP: 10/11 of any fee while it is in
JIT_TRADE = 200 * WAD  # 30,000,000 of notional


def test_just_in_time_liquidity_cannot_leave_in_the_block_of_the_trade_boa(boa_protocol):
    p = boa_protocol
    jit, trader = p.other_lp, p.traders[1]
    with boa.env.anchor():
        # no premium: the vault's only gain from the trade is its fee share
        flat_market(p, max_premium=0)
        p.vault.deposit(HONEST_LP, p.lp, sender=p.lp)
        p.deposit(trader, usd(10_000_000))
        wallet = p.token.balanceOf(jit)

        shares = p.vault.deposit(JIT_DEPOSIT, jit, sender=jit)
        p.engine.modify_position(0, JIT_TRADE, MAX_UINT256, sender=trader)
        [opened] = p.events(p.engine, "PositionModified")
        fee_to_vault = opened.fee * p.engine_admin.vault_fee_share() // WAD // p.scale
        max_redeem = p.vault.maxRedeem(jit)
        refused = p.revert_reason(lambda: p.vault.redeem(shares, jit, jit, sender=jit))
        took = p.token.balanceOf(jit) - wallet if refused is None else 0
        print(
            f"JIT LP: redeem refused: {refused!r}, maxRedeem {max_redeem}, took {fmt(took)} of the vault's "
            f"{fmt(fee_to_vault)} fee ({100 * took / fee_to_vault:.1f} %)"
        )
        assert refused == "vault: redemption not claimable", (
            f"the JIT LP left in the block of the trade with {fmt(took)} of the vault's {fmt(fee_to_vault)} fee "
            f"({100 * took / fee_to_vault:.1f} %)"
        )
        assert max_redeem == 0 and p.vault.maxWithdraw(jit) == 0

        # A request in the same block does not help: it is claimable a whole delay later.
        now = p.now()
        p.vault.request_redeem(shares, sender=jit)
        assert p.vault.redeem_request(jit) == (shares, now + p.vault.withdrawal_delay())
        assert p.vault.balanceOf(jit) == 0 and p.vault.balanceOf(p.vault.address) == shares
        assert p.revert_reason(lambda: p.vault.redeem(shares, jit, jit, sender=jit)) == "vault: redemption not claimable"
        assert p.revert_reason(lambda: p.vault.withdraw(1, jit, jit, sender=jit)) == "vault: redemption not claimable"
        assert p.vault.maxRedeem(jit) == 0 and p.vault.maxWithdraw(jit) == 0
        # one second before the delay ends it is still refused
        boa.env.time_travel(seconds=p.vault.withdrawal_delay() - 1)
        republish(p)
        assert p.revert_reason(lambda: p.vault.redeem(shares, jit, jit, sender=jit)) == "vault: redemption not claimable"


# ---------------------------------------------------------------------------
# 3. Leaving before a liquidation with a share of a loss the trader cannot pay
# ---------------------------------------------------------------------------

EACH_LP = usd(5_000_000)
UNDERWATER_COLLATERAL = usd(150_000)
UNDERWATER_SIZE = 9 * WAD  # 1,350,000 of notional on 150,000: 9x
CRASH_ANSWER = 120_000 * 10**8  # -20 %: a 270,000 loss on 150,000 of collateral


def liquidate(p, owner):
    engine = getattr(p, "engine_risk", None) or p.engine
    engine.liquidate(owner, 0, sender=p.traders[3])


def bad_debt_setup(p):
    """Two LPs (the leaver's shares already claimable), a 9x long, then a 20 % crash that leaves
    the long's loss above its collateral, before anyone liquidates it."""
    flat_market(p)
    # all fees to the vault: no insurance fund stands in front of the vault
    p.engine_admin.set_fee_split(WAD, sender=p.admin)
    leaver, stayer, trader = p.other_lp, p.lp, p.traders[2]
    p.vault.deposit(EACH_LP, stayer, sender=stayer)
    leaver_shares = p.vault.deposit(EACH_LP, leaver, sender=leaver)
    make_claimable(p, leaver, leaver_shares)
    p.deposit(trader, UNDERWATER_COLLATERAL)
    p.engine.modify_position(0, UNDERWATER_SIZE, MAX_UINT256, sender=trader)
    p.push_price(CRASH_ANSWER)
    health = p.engine.account_health(trader, 0)
    assert health.equity < 0, "the long must be underwater"
    assert p.engine.insurance_balance() == 0
    return leaver, stayer, trader, leaver_shares


def test_lp_leaving_before_a_liquidation_leaves_no_bad_debt_to_the_lps_who_stay_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        leaver, stayer, trader, leaver_shares = bad_debt_setup(p)
        stayer_shares = p.vault.balanceOf(stayer)

        # Had nobody left: the liquidation books the bad debt, both LPs share it.
        with boa.env.anchor():
            liquidate(p, trader)
            assert p.engine.vault_bad_debt() > 0
            per_share_if_all_stay = p.vault.previewRedeem(stayer_shares)

        # The leaver claims first, at the price before the liquidation.
        paid = p.vault.redeem(leaver_shares, leaver, leaver, sender=leaver)
        liquidate(p, trader)
        bad_debt = p.engine.vault_bad_debt()
        stayer_after = p.vault.previewRedeem(stayer_shares)
        print(
            f"bad debt {fmt(bad_debt // p.scale)}: leaver paid {fmt(paid)} for {fmt(EACH_LP)} deposited; "
            f"the stayer has {fmt(stayer_after)}, {fmt(per_share_if_all_stay)} had nobody left"
        )
        assert bad_debt > 0
        assert stayer_after >= per_share_if_all_stay, (
            f"the leaver's early exit cost the stayer {fmt(per_share_if_all_stay - stayer_after)} "
            f"(bad debt {fmt(bad_debt // p.scale)}, leaver paid {fmt(paid)})"
        )


# ---------------------------------------------------------------------------
# 4. Any trade round trip around a claim, from any state: fees only
# ---------------------------------------------------------------------------

ROUND_TRIP_SETTINGS = settings(
    max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@ROUND_TRIP_SETTINGS
@given(
    skew_scale=st.sampled_from([10_000 * WAD, 100_000 * WAD, 1_000_000 * WAD]),
    background=st.integers(-200, 200),
    move_bps=st.integers(-1_400, 1_400),
    attack=st.integers(1, 300),
    short=st.booleans(),
)
def test_an_lp_trading_around_its_claim_never_gains_and_costs_other_lps_nothing_boa(
    boa_protocol, skew_scale, background, move_bps, attack, short
):
    p = boa_protocol
    attacker, other = p.traders[0], p.traders[1]
    size = -attack * WAD if short else attack * WAD
    with boa.env.anchor():
        flat_market(p, skew_scale=skew_scale)
        p.vault.deposit(HONEST_LP, p.lp, sender=p.lp)
        shares = p.vault.deposit(usd(20_000_000), attacker, sender=attacker)
        make_claimable(p, attacker, shares)
        p.deposit(attacker, FLASH_COLLATERAL)
        if background:
            p.deposit(other, usd(10_000_000))
            p.engine.modify_position(0, background * WAD, MAX_UINT256 if background > 0 else 0, sender=other)
        p.push_price(p.oracle.latestAnswer() * (10_000 + move_bps) // 10_000)
        assert p.vault.entry_equity() >= p.vault.equity()
        honest_before = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        wealth_before = wealth(p, attacker)

        # one block: open, claim what the utilization limit lets out, close
        p.engine.modify_position(0, size, MAX_UINT256 if size > 0 else 0, sender=attacker)
        assert p.vault.entry_equity() >= p.vault.equity()
        claim = p.vault.maxRedeem(attacker)
        event("claimed all" if claim == shares else "claimed part" if claim else "utilization left nothing")
        if claim and p.vault.previewRedeem(claim):
            p.vault.redeem(claim, attacker, attacker, sender=attacker)
        p.engine.close_position(0, 0 if size > 0 else MAX_UINT256, sender=attacker)

        gain = wealth(p, attacker) - wealth_before
        honest_after = p.vault.previewRedeem(p.vault.balanceOf(p.lp))
        assert gain < 0, f"the LP gained {fmt(gain)}"
        assert honest_after >= honest_before, f"the other LP lost {fmt(honest_before - honest_after)}"


# ---------------------------------------------------------------------------
# 5. Request mechanics the Ape suite cannot time to the second
# ---------------------------------------------------------------------------


def test_a_request_is_claimable_from_exactly_its_claimable_time_boa(boa_protocol):
    p = boa_protocol
    with boa.env.anchor():
        shares = p.vault.deposit(usd(1_000), p.other_lp, sender=p.other_lp)
        claimable_at = p.vault.request_redeem(shares, sender=p.other_lp)
        assert claimable_at == p.now() + 3600
        [event] = p.events(p.vault, "RedeemRequested")
        assert (event.owner, event.shares, event.claimable_at) == (p.other_lp, shares, claimable_at)
        boa.env.time_travel(seconds=3599)
        assert p.vault.maxRedeem(p.other_lp) == 0
        reason = p.revert_reason(lambda: p.vault.redeem(shares, p.other_lp, p.other_lp, sender=p.other_lp))
        assert reason == "vault: redemption not claimable"
        boa.env.time_travel(seconds=1)
        assert p.now() == claimable_at
        assert p.vault.maxRedeem(p.other_lp) == shares
        assert p.vault.redeem(shares, p.other_lp, p.other_lp, sender=p.other_lp) == usd(1_000)


def test_a_request_lapses_after_its_claim_window_boa(boa_protocol):
    """A request claimable forever was a standing option: an LP requested once, kept earning
    (escrowed shares bear gains and losses), and claimed the moment it saw a loss coming, days
    later. Now the request is claimable for CLAIM_WINDOW after its delay; then the LP must
    cancel or request again and wait the delay once more."""
    p = boa_protocol
    owner = p.other_lp
    with boa.env.anchor():
        shares = p.vault.deposit(usd(1_000), owner, sender=owner)
        claimable_at = p.vault.request_redeem(shares, sender=owner)
        window = p.vault.CLAIM_WINDOW()
        assert window == 86_400
        boa.env.time_travel(seconds=claimable_at + window - 1 - p.now())
        assert p.vault.maxRedeem(owner) == shares  # the last second of the window
        boa.env.time_travel(seconds=1)
        assert p.vault.maxRedeem(owner) == p.vault.maxWithdraw(owner) == 0
        reason = p.revert_reason(lambda: p.vault.redeem(shares, owner, owner, sender=owner))
        assert reason == "vault: redemption not claimable"
        assert p.vault.cancel_redeem(sender=owner) == shares
        again = p.vault.request_redeem(shares, sender=owner)
        assert again == p.now() + p.vault.withdrawal_delay()
        assert p.vault.maxRedeem(owner) == 0


def requests_slot(p, owner) -> int:
    """The storage slot of `_requests[owner]` (Vyper: keccak256(slot . key))."""
    base = p.vault.compiler_data.storage_layout["storage_layout"]["_requests"]["slot"]
    return int.from_bytes(keccak(base.to_bytes(32, "big") + bytes(12) + bytes.fromhex(owner[2:])), "big")


def test_a_request_cannot_outgrow_its_216_bit_share_field_boa(boa_protocol):
    p = boa_protocol
    owner = p.other_lp
    with boa.env.anchor():
        shares = p.vault.deposit(usd(1), owner, sender=owner)
        claimable_at = p.vault.request_redeem(1, sender=owner)
        slot = requests_slot(p, owner)
        assert boa.env.get_storage(p.vault.address, slot) == 1 | claimable_at << 216
        # a request word already at the field's maximum (no supply can reach it honestly)
        boa.env.set_storage(p.vault.address, slot, (2**216 - 1) | claimable_at << 216)
        assert p.vault.redeem_request(owner) == (2**216 - 1, claimable_at)
        reason = p.revert_reason(lambda: p.vault.request_redeem(1, sender=owner))
        assert reason == "vault: request above bound"
        assert p.vault.balanceOf(owner) == shares - 1
