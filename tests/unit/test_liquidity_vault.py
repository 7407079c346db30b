"""Unit tests of contracts/LiquidityVault.vy (ERC-4626 over the engine's collateral), in-process on
titanoboa.

The vault's assets are its own valuation of the engine's accounting, never a token balance, so
expected figures here are rebuilt from the engine's public aggregates. It keeps two valuations
(docs/protocol.md §8, PROTOCOL.md S7): exits (`equity`, `totalAssets`, redeem, withdraw) price at
the lower, entries (`entry_equity`, deposit, mint) at the higher. Redemptions are requested, then
claimed after `withdrawal_delay`. The attacks these rules close are replayed in
tests/fuzz/test_vault_flows_boa.py.
"""

from decimal import Decimal

import boa
import pytest
from boa.contracts.event_decoder import RawLogEntry
from boa_protocol import advance_to, contract, deploy_engine_stack, events, now, reverts

from vyperp.units import WAD, to_wad

OFFSET = 6
VIRTUAL_SHARES = 10**OFFSET
ZERO = "0x0000000000000000000000000000000000000000"
BTC = 150_000
BUY_LIMIT = to_wad(10**9)
SELL_LIMIT = 0


def vault_of(engine):
    """The LiquidityVault an engine is connected to."""
    return contract("LiquidityVault").at(engine.vault())


# ---------------------------------------------------------------------------
# Reference arithmetic
# ---------------------------------------------------------------------------


def ceil_div(x, y):
    return -((-x) // y)


def mul_div(x, y, d, up):
    return ceil_div(x * y, d) if up else x * y // d


def to_shares(assets, supply, total_assets, up=False):
    return mul_div(assets, supply + VIRTUAL_SHARES, total_assets + 1, up)


def to_assets(shares, supply, total_assets, up=False):
    return mul_div(shares, total_assets + 1, supply + VIRTUAL_SHARES, up)


def vault_state(vault):
    return vault.totalSupply(), vault.totalAssets()


def traders_pnl_at_mark(engine, market_id, up=True):
    """Traders' aggregate unrealized PnL at the mark: skew * mark - cost_sum, the product rounded
    up (the exit valuation's rounding: against the vault) or down (the entry valuation's)."""
    product = engine.skew(market_id) * engine.mark_price(market_id)
    return (ceil_div(product, WAD) if up else product // WAD) - engine.cost_sum(market_id)


def exit_price(engine, market_id):
    """The price the traders' net position would close at now."""
    return engine.fill_price(market_id, -engine.skew(market_id))


def traders_pnl_at_exit(engine, market_id, up=True):
    """Traders' aggregate unrealized PnL at the price their net position would close at."""
    skew = engine.skew(market_id)
    if skew == 0:
        return -engine.cost_sum(market_id)
    product = skew * exit_price(engine, market_id)
    return (ceil_div(product, WAD) if up else product // WAD) - engine.cost_sum(market_id)


def traders_funding_owed_to_vault(engine, market_id, up=False):
    """Traders' unsettled funding as the vault books it: rounded down on exit, up on entry."""
    product = engine.current_funding(market_id)[0] * engine.skew(market_id)
    return (ceil_div(product, WAD) if up else product // WAD) - engine.snapshot_sum(market_id)


def expected_vault_equity(engine, market_ids, entry=False):
    """docs/protocol.md §8: per market, traders' PnL at the higher of mark and exit price and at
    least 0 on exit; at the lower of the two, losses in full, on entry."""
    equity = engine.vault_balance()
    for market_id in market_ids:
        if engine.long_open_interest(market_id) == 0 and engine.short_open_interest(market_id) == 0:
            continue
        owed = traders_funding_owed_to_vault(engine, market_id, up=entry)
        at_mark = traders_pnl_at_mark(engine, market_id, up=not entry)
        at_exit = traders_pnl_at_exit(engine, market_id, up=not entry)
        pnl = min(at_mark, at_exit) if entry else max(at_mark, at_exit, 0)
        equity += owed - pnl
    return equity


def entry_total(vault, scale):
    """The entry valuation in token units, rounded up (what deposits and mints price at)."""
    return max(0, ceil_div(vault.entry_equity(), scale))


def expected_reserve(engine, market_ids):
    exposure = sum(ceil_div(abs(engine.skew(m)) * engine.mark_price(m), WAD) for m in market_ids)
    return exposure * WAD // engine.max_vault_utilization()


def all_markets(engine):
    return range(engine.market_count())


def emitted(contract, name):
    """The `name` events that `contract` itself logged in its last call (a vault call's logs also
    hold the token's Transfer events). A view is a call too: read the events right after the
    transaction."""
    return [log for log in events(contract, name) if log.address == contract.address]


def engine_hook_events(vault, engine_admin, name):
    """The `name` events that the engine's vault hooks logged in the vault's last call. The hooks
    run in EngineAdmin's code (the engine's fallback delegates to it), so boa, which decodes the
    engine's logs with the Engine's ABI, leaves them raw: they are decoded with EngineAdmin's."""
    decoded = []
    for log in vault.get_logs(strict=False):
        if isinstance(log, RawLogEntry) and log.address == engine_admin.address.canonical_address:
            log = engine_admin.decode_log(log)
            if type(log).__name__ == name:
                decoded.append(log)
    return decoded


def event_args(log):
    """An event's arguments by name, without the emitter's address."""
    return {key: value for key, value in log._asdict().items() if key != "address"}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def deploy(admin, guardian):
    """Factory: a fresh protocol over a new DevnetUSD with the given decimals, no market yet."""

    def factory(token_decimals=6):
        return deploy_engine_stack(admin, guardian, token_decimals=token_decimals)

    return factory


@pytest.fixture
def second_lp():
    return boa.env.generate_address("second_lp")


@pytest.fixture
def units(token):
    def human_to_units(amount):
        return int(Decimal(str(amount)) * 10 ** token.decimals())

    return human_to_units


@pytest.fixture
def scale(engine):
    return engine.collateral_scale()


@pytest.fixture
def fresh(deploy):
    """A protocol of its own, with an empty vault (the module's holds the LP's seed deposit)."""
    return deploy(token_decimals=6)


@pytest.fixture
def flat_market(fresh, market_config):
    # Zero funding keeps vault equity constant between blocks, so limits can be probed to the unit.
    return fresh.add_market(market_config.with_(interest_rate=0, max_funding_rate=0), atomic_trading=True)


@pytest.fixture
def claimable(oracle, set_price):
    """Requests a redemption of `shares` (all the owner's by default), lets the withdrawal delay
    pass and republishes the index (at `price`), so the request can be claimed."""

    def request_and_wait(vault, owner, shares=None, price=BTC):
        shares = vault.balanceOf(owner) if shares is None else shares
        vault.request_redeem(shares, sender=owner)
        boa.env.time_travel(seconds=vault.withdrawal_delay())
        set_price(oracle, price)
        return shares

    return request_and_wait


@pytest.fixture
def give(admin):
    """Mints token units to an account and approves a spender for them."""

    def mint_and_approve(token, account, amount, spender):
        token.mint(account, amount, sender=admin)
        token.approve(spender, amount, sender=account)
        return amount

    return mint_and_approve


@pytest.fixture
def priced_vault(seeded_vault, engine, market, deposit, trader):
    """The seeded vault after a trader opened and closed a long: fees and the fill premium
    leave a share price that is not a round number, and no position stays open."""
    deposit(trader, 300_000)
    engine.modify_position(market, to_wad("7.123456789"), BUY_LIMIT, sender=trader)
    engine.close_position(market, SELL_LIMIT, sender=trader)
    assert engine.long_open_interest(market) == 0 and engine.short_open_interest(market) == 0
    supply, total = vault_state(seeded_vault)
    assert total * VIRTUAL_SHARES != supply
    return seeded_vault


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------


def test_vault_asset_is_engine_collateral_and_share_decimals_add_offset(fresh, admin):
    vault, engine, token = fresh.vault, fresh.engine, fresh.token
    assert vault.asset() == token.address
    assert engine.collateral_token() == token.address
    assert vault.engine() == engine.address
    assert engine.vault() == vault.address
    assert vault.DECIMALS_OFFSET() == OFFSET
    assert vault.decimals() == token.decimals() + OFFSET
    assert vault.totalSupply() == 0
    assert vault.totalAssets() == 0
    assert vault.maxDeposit(ZERO) == 2**256 - 1
    assert vault.maxMint(ZERO) == 2**256 - 1
    assert vault.owner() == admin
    assert vault.withdrawal_delay() == vault.DEFAULT_WITHDRAWAL_DELAY() == 3600
    assert (vault.MIN_WITHDRAWAL_DELAY(), vault.MAX_WITHDRAWAL_DELAY()) == (60, 7 * 86400)


def test_total_assets_is_vault_equity_in_token_units(priced_vault, engine, scale):
    assert priced_vault.totalAssets() == vault_of(engine).equity() // scale
    # no open interest: both valuations are the settled balance, only their rounding differs
    assert vault_of(engine).equity() == vault_of(engine).entry_equity() == engine.vault_balance()
    assert engine.vault_balance() % scale != 0
    assert entry_total(priced_vault, scale) == priced_vault.totalAssets() + 1


# ---------------------------------------------------------------------------
# Happy paths: exact amounts
# ---------------------------------------------------------------------------


def test_deposit_mints_previewed_shares_to_receiver_and_books_assets_in_engine(
    priced_vault, engine, engine_admin, token, fund, second_lp, stranger, scale
):
    vault = priced_vault
    assets = fund(second_lp, "12345.678901", vault)
    supply, total = vault_state(vault)
    # deposits price at the entry valuation, rounded up: against the depositor
    expected_shares = to_shares(assets, supply, entry_total(vault, scale))
    assert vault.previewDeposit(assets) == expected_shares
    assert vault.convertToShares(assets) == to_shares(assets, supply, total) > expected_shares
    engine_tokens, balance = token.balanceOf(engine), engine.vault_balance()

    vault.deposit(assets, stranger, sender=second_lp)
    [log] = emitted(vault, "Deposit")
    [funded] = engine_hook_events(vault, engine_admin, "VaultFunded")

    assert vault.balanceOf(stranger) == expected_shares
    assert vault.balanceOf(second_lp) == 0
    assert vault.totalSupply() == supply + expected_shares
    assert token.balanceOf(second_lp) == 0
    assert token.balanceOf(vault) == 0
    assert token.balanceOf(engine) == engine_tokens + assets
    assert engine.vault_balance() == balance + assets * scale
    assert vault.totalAssets() == total + assets
    assert event_args(log) == {
        "sender": second_lp,
        "owner": stranger,
        "assets": assets,
        "shares": expected_shares,
    }
    assert funded.amount == assets


def test_mint_pulls_previewed_assets_rounded_up(priced_vault, engine, token, fund, second_lp, scale):
    vault = priced_vault
    shares = 987_654_321_123_457
    supply, total = vault_state(vault)
    expected_assets = to_assets(shares, supply, entry_total(vault, scale), up=True)
    assert expected_assets > to_assets(shares, supply, entry_total(vault, scale), up=False)
    assert expected_assets >= to_assets(shares, supply, total, up=True)
    assert vault.previewMint(shares) == expected_assets
    fund(second_lp, 1_000_000, vault)
    tokens_before, balance = token.balanceOf(second_lp), engine.vault_balance()

    vault.mint(shares, second_lp, sender=second_lp)
    [log] = emitted(vault, "Deposit")

    assert vault.balanceOf(second_lp) == shares
    assert token.balanceOf(second_lp) == tokens_before - expected_assets
    assert engine.vault_balance() == balance + expected_assets * scale
    assert event_args(log) == {
        "sender": second_lp,
        "owner": second_lp,
        "assets": expected_assets,
        "shares": shares,
    }


def test_withdraw_burns_previewed_shares_rounded_up_and_pays_receiver(
    priced_vault, engine, engine_admin, token, lp, stranger, scale, claimable
):
    vault = priced_vault
    requested = claimable(vault, lp)
    assets = 4_321_987_654
    supply, total = vault_state(vault)
    expected_shares = to_shares(assets, supply, total, up=True)
    assert expected_shares > to_shares(assets, supply, total, up=False)
    assert vault.previewWithdraw(assets) == expected_shares
    balance = engine.vault_balance()

    vault.withdraw(assets, stranger, lp, sender=lp)
    [log] = emitted(vault, "Withdraw")
    [paid] = engine_hook_events(vault, engine_admin, "VaultWithdrawn")

    # the shares come out of the request's escrow; the rest stays requested and claimable
    assert vault.balanceOf(lp) == 0
    assert vault.redeem_request(lp)[0] == requested - expected_shares
    assert vault.balanceOf(vault) == requested - expected_shares
    assert vault.totalSupply() == supply - expected_shares
    assert token.balanceOf(stranger) == assets
    assert engine.vault_balance() == balance - assets * scale
    assert event_args(log) == {
        "sender": lp,
        "receiver": stranger,
        "owner": lp,
        "assets": assets,
        "shares": expected_shares,
    }
    assert paid.receiver == stranger and paid.amount == assets


def test_redeem_pays_previewed_assets_rounded_down(priced_vault, engine, token, lp, scale, claimable):
    vault = priced_vault
    shares = 3_141_592_653_589_793
    claimable(vault, lp, shares)
    supply, total = vault_state(vault)
    expected_assets = to_assets(shares, supply, total)
    assert vault.previewRedeem(shares) == expected_assets
    assert vault.convertToAssets(shares) == expected_assets
    shares_before, balance = vault.balanceOf(lp), engine.vault_balance()

    vault.redeem(shares, lp, lp, sender=lp)
    [log] = emitted(vault, "Withdraw")

    assert vault.balanceOf(lp) == shares_before
    assert vault.redeem_request(lp) == (0, 0)
    assert vault.balanceOf(vault) == 0
    assert token.balanceOf(lp) == expected_assets
    assert engine.vault_balance() == balance - expected_assets * scale
    assert event_args(log) == {
        "sender": lp,
        "receiver": lp,
        "owner": lp,
        "assets": expected_assets,
        "shares": shares,
    }


# ---------------------------------------------------------------------------
# Allowances
# ---------------------------------------------------------------------------


def test_approved_third_party_redeems_owner_shares_and_spends_allowance(
    priced_vault, token, lp, stranger, claimable
):
    vault = priced_vault
    shares = 5 * 10**15 + 3
    requested = claimable(vault, lp, shares + 5)
    vault.approve(stranger, shares + 11, sender=lp)
    expected_assets = vault.previewRedeem(shares)
    shares_before = vault.balanceOf(lp)

    vault.redeem(shares, stranger, lp, sender=stranger)
    [log] = emitted(vault, "Withdraw")

    assert vault.allowance(lp, stranger) == 11
    assert vault.balanceOf(lp) == shares_before
    assert vault.redeem_request(lp)[0] == requested - shares == 5
    assert vault.balanceOf(stranger) == 0
    assert token.balanceOf(stranger) == expected_assets
    assert token.balanceOf(lp) == 0
    assert event_args(log) == {
        "sender": stranger,
        "receiver": stranger,
        "owner": lp,
        "assets": expected_assets,
        "shares": shares,
    }


def test_approved_third_party_withdraw_spends_previewed_shares_of_allowance(
    priced_vault, token, lp, stranger, claimable
):
    vault = priced_vault
    claimable(vault, lp)
    assets = 777_777_777
    shares = vault.previewWithdraw(assets)
    vault.approve(stranger, shares, sender=lp)

    vault.withdraw(assets, stranger, lp, sender=stranger)

    assert vault.allowance(lp, stranger) == 0
    assert token.balanceOf(stranger) == assets


def test_third_party_without_approval_cannot_redeem_or_withdraw(priced_vault, lp, stranger, claimable):
    vault = priced_vault
    claimable(vault, lp)
    with reverts("erc20: insufficient allowance"):
        vault.redeem(10**12, stranger, lp, sender=stranger)
    with reverts("erc20: insufficient allowance"):
        vault.withdraw(1_000_000, stranger, lp, sender=stranger)


def test_third_party_with_allowance_one_share_short_cannot_withdraw(priced_vault, lp, stranger, claimable):
    vault = priced_vault
    claimable(vault, lp)
    assets = 1_000_000
    vault.approve(stranger, vault.previewWithdraw(assets) - 1, sender=lp)
    with reverts("erc20: insufficient allowance"):
        vault.withdraw(assets, stranger, lp, sender=stranger)


# ---------------------------------------------------------------------------
# Vault revert reasons
# ---------------------------------------------------------------------------


def test_zero_deposit_and_zero_mint_revert(seeded_vault, fund, second_lp):
    fund(second_lp, 10, seeded_vault)
    with reverts("vault: zero deposit"):
        seeded_vault.deposit(0, second_lp, sender=second_lp)
    with reverts("vault: zero deposit"):
        seeded_vault.mint(0, second_lp, sender=second_lp)


def test_zero_withdraw_and_zero_redeem_revert(seeded_vault, lp):
    with reverts("vault: zero withdrawal"):
        seeded_vault.withdraw(0, lp, lp, sender=lp)
    with reverts("vault: zero withdrawal"):
        seeded_vault.redeem(0, lp, lp, sender=lp)


def test_redeeming_dust_shares_worth_zero_assets_reverts(priced_vault, lp):
    dust = priced_vault.previewWithdraw(1) - 1
    assert dust > 0
    assert priced_vault.previewRedeem(dust) == 0
    with reverts("vault: zero withdrawal"):
        priced_vault.redeem(dust, lp, lp, sender=lp)


def test_zero_receiver_reverts_on_every_entry_point(seeded_vault, fund, second_lp, lp):
    fund(second_lp, 10, seeded_vault)
    with reverts("vault: receiver is zero"):
        seeded_vault.deposit(1_000_000, ZERO, sender=second_lp)
    with reverts("vault: receiver is zero"):
        seeded_vault.mint(10**12, ZERO, sender=second_lp)
    with reverts("vault: receiver is zero"):
        seeded_vault.withdraw(1_000_000, ZERO, lp, sender=lp)
    with reverts("vault: receiver is zero"):
        seeded_vault.redeem(10**12, ZERO, lp, sender=lp)


# ---------------------------------------------------------------------------
# Requested redemptions
# ---------------------------------------------------------------------------


def request_event(vault):
    [log] = emitted(vault, "RedeemRequested")
    return event_args(log)


def test_request_redeem_escrows_shares_until_the_delay_has_passed(priced_vault, lp, oracle, set_price, token):
    vault = priced_vault
    shares, supply = vault.balanceOf(lp), vault.totalSupply()
    part = shares // 3

    claimable_at = now() + 3600

    assert vault.request_redeem(part, sender=lp) == claimable_at

    assert request_event(vault) == {"owner": lp, "shares": part, "claimable_at": claimable_at}
    [moved] = emitted(vault, "Transfer")
    assert (moved.sender, moved.receiver, moved.value) == (lp, vault.address, part)
    assert vault.redeem_request(lp) == (part, claimable_at)
    assert vault.balanceOf(lp) == shares - part
    assert vault.balanceOf(vault) == part
    # escrowed shares are still shares: they keep their claim on the vault's assets
    assert vault.totalSupply() == supply
    assert vault.maxRedeem(lp) == vault.maxWithdraw(lp) == 0
    with reverts("vault: redemption not claimable"):
        vault.redeem(part, lp, lp, sender=lp)
    with reverts("vault: redemption not claimable"):
        vault.withdraw(10**6, lp, lp, sender=lp)

    advance_to(claimable_at)
    set_price(oracle, BTC)

    assert vault.maxRedeem(lp) == part
    assert vault.maxWithdraw(lp) == vault.previewRedeem(part) > 0
    paid = vault.previewRedeem(part)
    vault.redeem(part, lp, lp, sender=lp)
    assert token.balanceOf(lp) == paid
    assert vault.redeem_request(lp) == (0, 0)
    assert vault.balanceOf(lp) == shares - part


def test_a_second_request_adds_its_shares_and_restarts_the_clock(priced_vault, lp, oracle, set_price):
    vault = priced_vault
    vault.request_redeem(10**15, sender=lp)
    boa.env.time_travel(seconds=3000)

    vault.request_redeem(2 * 10**15, sender=lp)

    claimable_at = now() + 3600
    assert request_event(vault) == {"owner": lp, "shares": 2 * 10**15, "claimable_at": claimable_at}
    assert vault.redeem_request(lp) == (3 * 10**15, claimable_at)
    # the first request's hour is over, but the whole request now waits for the new one
    boa.env.time_travel(seconds=1000)
    set_price(oracle, BTC)
    assert vault.maxRedeem(lp) == 0
    with reverts("vault: redemption not claimable"):
        vault.redeem(10**15, lp, lp, sender=lp)


def test_claims_spend_the_request_in_parts_and_the_last_one_clears_it(priced_vault, lp, claimable, token):
    vault = priced_vault
    requested = claimable(vault, lp, 10**16)
    claimable_at = vault.redeem_request(lp)[1]

    first = vault.redeem(4 * 10**15, lp, lp, sender=lp)
    assert vault.redeem_request(lp) == (requested - 4 * 10**15, claimable_at)
    assert vault.maxRedeem(lp) == requested - 4 * 10**15
    with reverts("vault: shares above request"):
        vault.redeem(requested - 4 * 10**15 + 1, lp, lp, sender=lp)
    second = vault.redeem(requested - 4 * 10**15, lp, lp, sender=lp)

    assert vault.redeem_request(lp) == (0, 0)
    assert vault.balanceOf(vault) == 0
    assert token.balanceOf(lp) == first + second
    with reverts("vault: redemption not claimable"):
        vault.redeem(10**15, lp, lp, sender=lp)


def test_withdraw_cannot_burn_more_shares_than_requested(priced_vault, lp, claimable):
    vault = priced_vault
    requested = claimable(vault, lp, 10**15)
    worth = vault.previewRedeem(requested)
    assert vault.previewWithdraw(worth + 1) > requested
    with reverts("vault: shares above request"):
        vault.withdraw(worth + 1, lp, lp, sender=lp)
    vault.withdraw(worth, lp, lp, sender=lp)


def test_cancel_redeem_returns_every_escrowed_share(priced_vault, lp):
    vault = priced_vault
    shares = vault.balanceOf(lp)
    vault.request_redeem(shares // 2, sender=lp)
    vault.request_redeem(7, sender=lp)

    returned = vault.cancel_redeem(sender=lp)

    [log] = emitted(vault, "RedeemCancelled")
    assert event_args(log) == {"owner": lp, "shares": shares // 2 + 7}
    assert returned == shares // 2 + 7
    assert vault.balanceOf(lp) == shares
    assert vault.balanceOf(vault) == 0
    assert vault.redeem_request(lp) == (0, 0)
    with reverts("vault: no pending request"):
        vault.cancel_redeem(sender=lp)
    boa.env.time_travel(seconds=2 * 3600)
    with reverts("vault: redemption not claimable"):
        vault.redeem(10**15, lp, lp, sender=lp)


def test_request_revert_reasons(priced_vault, lp, stranger):
    vault = priced_vault
    with reverts("vault: zero request"):
        vault.request_redeem(0, sender=lp)
    with reverts("erc20: transfer amount exceeds balance"):
        vault.request_redeem(vault.balanceOf(lp) + 1, sender=lp)
    with reverts("vault: no pending request"):
        vault.cancel_redeem(sender=stranger)
    # a claim needs a request of the owner's, whoever calls
    with reverts("vault: redemption not claimable"):
        vault.redeem(10**12, lp, lp, sender=lp)
    vault.approve(stranger, 10**12, sender=lp)
    with reverts("vault: redemption not claimable"):
        vault.redeem(10**12, stranger, lp, sender=stranger)


def test_escrowed_shares_keep_bearing_the_vaults_gains_and_losses(
    priced_vault, engine, market, deposit, trader, lp, oracle, set_price, token
):
    vault = priced_vault
    escrowed = vault.balanceOf(lp)
    vault.request_redeem(escrowed, sender=lp)
    deposit(trader, 300_000)
    engine.modify_position(market, to_wad(5), BUY_LIMIT, sender=trader)
    value_requested = vault.previewRedeem(escrowed)

    # the long wins 10 %: the vault, and so the escrowed shares, lose it
    boa.env.time_travel(seconds=vault.withdrawal_delay())
    set_price(oracle, BTC * 11 // 10)

    paid = vault.previewRedeem(escrowed)
    assert value_requested - paid > 70_000 * 10**6
    assert vault.maxWithdraw(lp) <= paid
    vault.redeem(vault.maxRedeem(lp), lp, lp, sender=lp)
    assert token.balanceOf(lp) <= paid


def test_owner_sets_the_withdrawal_delay_within_bounds(priced_vault, admin, stranger, lp, oracle, set_price):
    vault = priced_vault
    before = vault.request_redeem(10**15, sender=lp)
    with reverts("ownable: caller is not the owner"):
        vault.set_withdrawal_delay(600, sender=stranger)
    with reverts("vault: delay out of bounds"):
        vault.set_withdrawal_delay(59, sender=admin)
    with reverts("vault: delay out of bounds"):
        vault.set_withdrawal_delay(7 * 86400 + 1, sender=admin)
    vault.set_withdrawal_delay(7 * 86400, sender=admin)
    assert vault.withdrawal_delay() == 7 * 86400

    vault.set_withdrawal_delay(60, sender=admin)
    [log] = emitted(vault, "WithdrawalDelaySet")

    assert log.withdrawal_delay == 60
    assert vault.withdrawal_delay() == 60
    # a pending request keeps the time it was given
    assert vault.redeem_request(lp)[1] == before
    # a new one (which restarts the whole request) takes the new delay
    vault.request_redeem(10**15, sender=lp)
    assert vault.redeem_request(lp) == (2 * 10**15, now() + 60)
    boa.env.time_travel(seconds=60)
    set_price(oracle, BTC)
    vault.redeem(2 * 10**15, lp, lp, sender=lp)


def test_vault_ownership_can_be_transferred(priced_vault, admin, stranger):
    vault = priced_vault
    vault.transfer_ownership(stranger, sender=admin)
    [log] = emitted(vault, "OwnershipTransferred")
    assert vault.owner() == stranger
    assert (log.previous_owner, log.new_owner) == (admin, stranger)
    with reverts("ownable: caller is not the owner"):
        vault.set_withdrawal_delay(600, sender=admin)
    vault.set_withdrawal_delay(600, sender=stranger)
    assert vault.withdrawal_delay() == 600


# ---------------------------------------------------------------------------
# Engine-side vault hooks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("caller_role", ["stranger", "admin", "lp"])
def test_only_the_vault_may_credit_or_withdraw_vault_assets(
    seeded_vault, engine_admin, stranger, admin, lp, caller_role
):
    caller = {"stranger": stranger, "admin": admin, "lp": lp}[caller_role]
    with reverts("treasury: caller is not the vault"):
        engine_admin.credit_vault(1_000_000, sender=caller)
    with reverts("treasury: caller is not the vault"):
        engine_admin.withdraw_for_vault(caller, 1_000_000, sender=caller)


def test_vault_can_be_set_only_once(engine, vault, admin, stranger, engine_admin):
    with reverts("treasury: vault already set"):
        engine_admin.set_vault(stranger, sender=admin)
    with reverts("treasury: vault already set"):
        engine_admin.set_vault(vault, sender=admin)
    assert engine.vault() == vault.address


# ---------------------------------------------------------------------------
# Utilization limit and what can leave
# ---------------------------------------------------------------------------


@pytest.fixture
def utilized_vault(fresh, flat_market, give, lp, trader, claimable):
    """2,000,000 of LP assets backing a 10 BTC long (1,500,000 notional, reserve 1,875,000); the LP
    requested all its shares and the request is claimable."""
    vault, engine, token = fresh.vault, fresh.engine, fresh.token
    vault.deposit(give(token, lp, 2_000_000 * 10**6, vault), lp, sender=lp)
    claimable(vault, lp)
    engine.deposit(give(token, trader, 300_000 * 10**6, engine), 0, sender=trader)
    engine.modify_position(flat_market, to_wad(10), BUY_LIMIT, sender=trader)
    return vault


def test_max_withdraw_is_all_requested_assets_without_open_interest(seeded_vault, lp, claimable):
    vault = seeded_vault
    shares = vault.balanceOf(lp)
    assert vault.maxWithdraw(lp) == vault.maxRedeem(lp) == 0
    claimable(vault, lp)
    assert vault.maxWithdraw(lp) == vault.convertToAssets(shares)
    assert vault.maxRedeem(lp) == shares


def test_max_withdraw_is_equity_above_reserve(utilized_vault, fresh, flat_market, lp, scale):
    vault, engine, token = utilized_vault, fresh.engine, fresh.token
    reserve = vault_of(engine).reserve()
    assert reserve == expected_reserve(engine, all_markets(engine))
    equity = vault_of(engine).equity()
    assert equity == expected_vault_equity(engine, all_markets(engine))
    # the long paid a refundable premium and is otherwise flat: the exit valuation is the balance
    assert equity == engine.vault_balance()
    assert vault_of(engine).entry_equity() > equity
    assert equity - reserve < engine.vault_balance()
    available = (equity - reserve) // scale
    assert vault.maxWithdraw(lp) == available
    assert available < vault.convertToAssets(vault.redeem_request(lp)[0])
    supply, total = vault_state(vault)
    assert vault.maxRedeem(lp) == to_shares(available, supply, total)


def test_withdrawing_one_unit_above_max_withdraw_breaks_utilization_limit(utilized_vault, lp):
    vault = utilized_vault
    over = vault.maxWithdraw(lp) + 1
    with reverts("vault: utilization limit"):
        vault.withdraw(over, lp, lp, sender=lp)
    with reverts("vault: utilization limit"):
        vault.redeem(vault.previewWithdraw(over), lp, lp, sender=lp)


def test_withdrawing_exactly_max_withdraw_leaves_no_headroom(utilized_vault, fresh, lp, scale):
    vault, engine, token = utilized_vault, fresh.engine, fresh.token
    available = vault.maxWithdraw(lp)

    vault.withdraw(available, lp, lp, sender=lp)

    assert token.balanceOf(lp) == available
    headroom = vault_of(engine).equity() - vault_of(engine).reserve()
    assert 0 <= headroom < scale
    assert vault.maxWithdraw(lp) == 0
    assert vault.maxRedeem(lp) == 0
    with reverts("vault: utilization limit"):
        vault.withdraw(1, lp, lp, sender=lp)


def exact_max_redeem(vault, available):
    """The largest share count whose floor-rounded payout still fits in `available`."""
    supply, total = vault_state(vault)
    return ceil_div((available + 1) * (supply + VIRTUAL_SHARES), total + 1) - 1


def test_redeem_limit_is_the_share_count_worth_max_withdraw(utilized_vault, fresh, lp):
    vault, engine, token = utilized_vault, fresh.engine, fresh.token
    available = vault.maxWithdraw(lp)
    limit = exact_max_redeem(vault, available)
    assert vault.previewRedeem(limit) == available
    assert vault.previewRedeem(limit + 1) == available + 1
    with reverts("vault: utilization limit"):
        vault.redeem(limit + 1, lp, lp, sender=lp)

    vault.redeem(limit, lp, lp, sender=lp)

    assert token.balanceOf(lp) == available
    assert vault.maxWithdraw(lp) == 0


def test_max_redeem_passes_and_undershoots_the_limit_by_less_than_one_unit(utilized_vault, fresh, lp):
    vault, engine, token = utilized_vault, fresh.engine, fresh.token
    available = vault.maxWithdraw(lp)
    shares = vault.maxRedeem(lp)
    limit = exact_max_redeem(vault, available)
    assert shares <= limit
    assert limit - shares < vault.previewWithdraw(1)
    paid = vault.previewRedeem(shares)
    assert available - 1 <= paid <= available

    vault.redeem(shares, lp, lp, sender=lp)

    assert token.balanceOf(lp) == paid


def test_vault_balance_too_low_when_equity_counts_funding_traders_still_owe(
    fresh, admin, market_config, give, lp, trader, other_trader, oracle, set_price, scale
):
    vault, engine, token = fresh.vault, fresh.engine, fresh.token
    market_id = fresh.add_market(market_config, atomic_trading=True)
    vault.deposit(give(token, lp, 1_000_000 * 10**6, vault), lp, sender=lp)
    vault.request_redeem(vault.balanceOf(lp), sender=lp)
    for account in (trader, other_trader):
        engine.deposit(give(token, account, 300_000 * 10**6, engine), 0, sender=account)
    engine.modify_position(market_id, to_wad(10), BUY_LIMIT, sender=trader)
    # A day of funding on the long, then a short that nets the skew to zero: no reserve is kept,
    # the long still owes the day's funding, and it is counted in equity before it settles, so
    # equity is no longer the limit: the vault's settled balance in the engine is.
    boa.env.time_travel(seconds=86_400)
    set_price(oracle, BTC)
    engine.modify_position(market_id, -to_wad(10), SELL_LIMIT, sender=other_trader)
    assert engine.skew(market_id) == 0 and vault_of(engine).reserve() == 0
    balance = engine.vault_balance()
    equity = vault_of(engine).equity()
    assert equity == expected_vault_equity(engine, all_markets(engine))
    assert equity - balance > 400 * 10**18  # ~0.033 % of 1,500,000
    available = balance // scale
    assert vault.maxWithdraw(lp) == available
    assert vault.convertToAssets(vault.redeem_request(lp)[0]) > available

    with reverts("engine: vault balance too low"):
        vault.withdraw(available + 1, lp, lp, sender=lp)

    vault.withdraw(available, lp, lp, sender=lp)
    assert token.balanceOf(lp) == available
    assert 0 <= engine.vault_balance() < scale
    assert vault.maxWithdraw(lp) == 0


# ---------------------------------------------------------------------------
# Share price follows counterparty PnL and fees
# ---------------------------------------------------------------------------


ODD_SIZE = to_wad("3.333333333333333333")


def test_price_rise_lowers_total_assets_by_long_pnl_at_the_exit_price_rounded_against_vault(
    seeded_vault, engine, market, deposit, trader, lp, oracle, set_price, scale
):
    vault = seeded_vault
    deposit(trader, 200_000)
    engine.modify_position(market, ODD_SIZE, BUY_LIMIT, sender=trader)
    total_before = vault.totalAssets()
    lp_value_before = vault.previewRedeem(vault.balanceOf(lp))

    set_price(oracle, "165000.12345678")

    trader_view = engine.position_value(trader, 0, market)
    at_mark = traders_pnl_at_mark(engine, market)
    assert ceil_div(ODD_SIZE * engine.mark_price(market), WAD) != ODD_SIZE * engine.mark_price(market) // WAD
    assert at_mark == trader_view.unrealized_pnl + 1
    # closing the long would sell into its own skew, above the index: that is the higher PnL
    assert exit_price(engine, market) > engine.mark_price(market)
    at_exit = traders_pnl_at_exit(engine, market)
    assert at_exit > at_mark > 0
    owed = traders_funding_owed_to_vault(engine, market)
    assert trader_view.funding_owed - 1 <= owed <= trader_view.funding_owed
    equity = vault_of(engine).equity()
    assert equity == engine.vault_balance() + owed - at_exit
    assert vault.totalAssets() == equity // scale
    drop = total_before - vault.totalAssets()
    assert to_wad(49_000) // scale < drop < to_wad(51_000) // scale
    assert vault.previewRedeem(vault.balanceOf(lp)) < lp_value_before
    # deposits price at the lower of the two PnLs, rounded the other way
    entry = vault_of(engine).entry_equity()
    assert entry == expected_vault_equity(engine, all_markets(engine), entry=True)
    assert entry == (
        engine.vault_balance()
        + traders_funding_owed_to_vault(engine, market, up=True)
        - traders_pnl_at_mark(engine, market, up=False)
    )
    assert entry > equity


def test_price_fall_raises_entry_valuation_by_long_loss_but_not_what_lps_can_redeem(
    seeded_vault, engine, market, deposit, trader, lp, oracle, set_price, scale
):
    vault = seeded_vault
    deposit(trader, 200_000)
    engine.modify_position(market, ODD_SIZE, BUY_LIMIT, sender=trader)
    total_before = vault.totalAssets()
    entry_before = vault_of(engine).entry_equity()
    lp_value_before = vault.previewRedeem(vault.balanceOf(lp))
    shares_for_a_deposit_before = vault.previewDeposit(10**12)

    set_price(oracle, "134999.87654321")

    trader_view = engine.position_value(trader, 0, market)
    assert traders_pnl_at_mark(engine, market) == trader_view.unrealized_pnl + 1
    assert traders_pnl_at_mark(engine, market) < 0 and traders_pnl_at_exit(engine, market) < 0
    # the traders' loss is not an asset on exit: they may not be able to pay it
    equity = vault_of(engine).equity()
    assert equity == expected_vault_equity(engine, all_markets(engine))
    assert equity == engine.vault_balance() + traders_funding_owed_to_vault(engine, market)
    assert vault.totalAssets() == equity // scale
    # only the funding accrued since (well under one token) moved it
    assert abs(vault.totalAssets() - total_before) < 10**6
    assert abs(vault.previewRedeem(vault.balanceOf(lp)) - lp_value_before) < 10**6
    # but a depositor pays for it in full
    entry = vault_of(engine).entry_equity()
    assert entry == expected_vault_equity(engine, all_markets(engine), entry=True)
    gain = entry - entry_before
    assert to_wad(49_000) < gain < to_wad(51_000)
    assert vault.previewDeposit(10**12) < shares_for_a_deposit_before


def test_short_side_pnl_moves_the_valuations_the_other_way(
    seeded_vault, engine, market, deposit, trader, oracle, set_price, scale
):
    vault = seeded_vault
    deposit(trader, 200_000)
    engine.modify_position(market, -ODD_SIZE, SELL_LIMIT, sender=trader)
    total_before, entry_before = vault.totalAssets(), vault_of(engine).entry_equity()

    set_price(oracle, "165000.12345678")

    trader_view = engine.position_value(trader, 0, market)
    assert traders_pnl_at_mark(engine, market) == trader_view.unrealized_pnl + 1
    # closing the short buys into its own skew, below the index
    assert exit_price(engine, market) < engine.mark_price(market)
    assert vault_of(engine).equity() == expected_vault_equity(engine, all_markets(engine))
    assert vault.totalAssets() == vault_of(engine).equity() // scale
    assert abs(vault.totalAssets() - total_before) < 10**6
    assert vault_of(engine).entry_equity() == expected_vault_equity(engine, all_markets(engine), entry=True)
    assert vault_of(engine).entry_equity() - entry_before > to_wad(49_000)

    set_price(oracle, "134999.87654321")

    assert traders_pnl_at_exit(engine, market) > traders_pnl_at_mark(engine, market) > 0
    assert vault_of(engine).equity() == expected_vault_equity(engine, all_markets(engine))
    assert total_before - vault.totalAssets() > to_wad(49_000) // scale


@pytest.mark.parametrize("vault_fee_share", [None, 0, WAD // 2, WAD], ids=["default", "none", "half", "all"])
def test_trading_fees_credit_vault_its_share_and_raise_total_assets(
    seeded_vault, engine, engine_admin, market, deposit, trader, admin, scale, vault_fee_share
):
    vault = seeded_vault
    if vault_fee_share is None:
        vault_fee_share = engine_admin.vault_fee_share()
        assert vault_fee_share == 8 * WAD // 10
    else:
        engine_admin.set_fee_split(vault_fee_share, sender=admin)
    deposit(trader, 300_000)
    balance, insurance, total = engine.vault_balance(), engine.insurance_balance(), vault.totalAssets()

    engine.modify_position(market, to_wad("9.87654321"), BUY_LIMIT, sender=trader)

    [trade] = emitted(engine, "PositionModified")
    assert trade.fee > 0 and trade.realized_pnl == 0
    to_vault = trade.fee * vault_fee_share // WAD
    assert engine.vault_balance() == balance + to_vault
    assert engine.insurance_balance() == insurance + trade.fee - to_vault
    assert vault_of(engine).equity() == expected_vault_equity(engine, all_markets(engine))
    assert vault.totalAssets() == vault_of(engine).equity() // scale
    # S7: at the exit valuation a trade moves the share price by its fees and nothing else
    # (the funding term only rounds: -1 wei when the index times the skew is not whole) ...
    owed = traders_funding_owed_to_vault(engine, market)
    assert -1 <= owed <= 0
    assert vault_of(engine).equity() == balance + to_vault + owed
    # ... while the entry valuation counts the refundable premium the trade paid, so a depositor
    # right after it pays for that premium too
    entry = vault_of(engine).entry_equity()
    assert entry == expected_vault_equity(engine, all_markets(engine), entry=True)
    premium = trade.size_delta * trade.fill_price // WAD - trade.size_delta * engine.mark_price(market) // WAD
    assert premium > 0
    assert premium - 2 <= entry - (balance + to_vault) <= premium + 2


def test_closed_round_trip_leaves_fees_and_realized_pnl_in_total_assets(
    seeded_vault, engine, engine_admin, market, deposit, trader, scale
):
    vault = seeded_vault
    deposit(trader, 300_000)
    balance, total = engine.vault_balance(), vault.totalAssets()

    engine.modify_position(market, to_wad("4.5"), BUY_LIMIT, sender=trader)
    [opened] = emitted(engine, "PositionModified")
    engine.close_position(market, SELL_LIMIT, sender=trader)
    [closed] = emitted(engine, "PositionModified")

    share = engine_admin.vault_fee_share()
    expected_balance = (
        balance
        + opened.fee * share // WAD
        + closed.fee * share // WAD
        - closed.realized_pnl
        + closed.funding_paid
    )
    assert engine.vault_balance() == expected_balance
    assert vault_of(engine).equity() == expected_balance
    assert vault.totalAssets() == expected_balance // scale
    assert vault.totalAssets() > total


# ---------------------------------------------------------------------------
# Round trips never gain
# ---------------------------------------------------------------------------


ROUND_TRIP_ASSETS = [1, 7, 999_999, 1_000_001, 31_415_926_535]
ROUND_TRIP_SHARES = [1, 999_999, 1_000_001, 10**12 + 7, 31_415_926_535_897_932]


def check_deposit_then_redeem(vault, token, admin, depositor, other_lp, amount, claimable):
    other_value_before = vault.previewRedeem(vault.balanceOf(other_lp))
    token.mint(depositor, amount, sender=admin)
    token.approve(vault, amount, sender=depositor)

    vault.deposit(amount, depositor, sender=depositor)
    shares = vault.balanceOf(depositor)
    payout = vault.previewRedeem(shares)
    claimable(vault, depositor)
    # no open interest: nothing moved the price while the request waited
    assert vault.previewRedeem(shares) == payout
    if payout == 0:
        with reverts("vault: zero withdrawal"):
            vault.redeem(shares, depositor, depositor, sender=depositor)
    else:
        vault.redeem(shares, depositor, depositor, sender=depositor)

    assert token.balanceOf(depositor) == payout
    assert payout <= amount
    assert amount - payout <= 1
    assert vault.previewRedeem(vault.balanceOf(other_lp)) >= other_value_before


def check_mint_then_withdraw(vault, token, admin, depositor, other_lp, shares, claimable):
    other_value_before = vault.previewRedeem(vault.balanceOf(other_lp))
    cost = vault.previewMint(shares)
    token.mint(depositor, cost, sender=admin)
    token.approve(vault, cost, sender=depositor)

    vault.mint(shares, depositor, sender=depositor)
    assert token.balanceOf(depositor) == 0
    assert vault.previewWithdraw(cost) >= shares
    claimable(vault, depositor)
    withdrawable = vault.maxWithdraw(depositor)
    if withdrawable > 0:
        burned = vault.previewWithdraw(withdrawable)
        vault.withdraw(withdrawable, depositor, depositor, sender=depositor)
        assert burned <= shares
        assert vault.redeem_request(depositor)[0] == shares - burned

    assert token.balanceOf(depositor) == withdrawable
    assert withdrawable <= cost
    assert vault.previewRedeem(vault.balanceOf(other_lp)) >= other_value_before


@pytest.mark.parametrize("amount", ROUND_TRIP_ASSETS)
def test_deposit_then_redeem_alone_never_returns_more_than_deposited(
    fresh, admin, second_lp, lp, amount, claimable
):
    check_deposit_then_redeem(fresh.vault, fresh.token, admin, second_lp, lp, amount, claimable)


@pytest.mark.parametrize("amount", ROUND_TRIP_ASSETS)
def test_deposit_then_redeem_beside_other_lp_never_returns_more_than_deposited(
    priced_vault, token, admin, second_lp, lp, amount, claimable
):
    check_deposit_then_redeem(priced_vault, token, admin, second_lp, lp, amount, claimable)


@pytest.mark.parametrize("shares", ROUND_TRIP_SHARES)
def test_mint_then_withdraw_alone_never_returns_more_than_paid(
    fresh, admin, second_lp, lp, shares, claimable
):
    check_mint_then_withdraw(fresh.vault, fresh.token, admin, second_lp, lp, shares, claimable)


@pytest.mark.parametrize("shares", ROUND_TRIP_SHARES)
def test_mint_then_withdraw_beside_other_lp_never_returns_more_than_paid(
    priced_vault, token, admin, second_lp, lp, shares, claimable
):
    check_mint_then_withdraw(priced_vault, token, admin, second_lp, lp, shares, claimable)


# ---------------------------------------------------------------------------
# First-depositor inflation attack
# ---------------------------------------------------------------------------


def test_donations_do_not_inflate_share_price_against_next_depositor(
    fresh, admin, stranger, second_lp, units, claimable
):
    vault, engine, token = fresh.vault, fresh.engine, fresh.token
    attacker, victim = stranger, second_lp
    donation = units(10_000_000)
    token.mint(attacker, 1 + 2 * donation, sender=admin)
    token.approve(vault, 1, sender=attacker)
    vault.deposit(1, attacker, sender=attacker)
    token.transfer(vault, donation, sender=attacker)
    token.transfer(engine, donation, sender=attacker)
    assert vault.totalAssets() == 1

    stake = units(1_000)
    token.mint(victim, stake, sender=admin)
    token.approve(vault, stake, sender=victim)
    vault.deposit(stake, victim, sender=victim)

    victim_shares = vault.balanceOf(victim)
    assert vault.totalAssets() == 1 + stake
    assert vault.previewRedeem(victim_shares) >= stake - 1
    attacker_shares = vault.balanceOf(attacker)
    attacker_payout = vault.previewRedeem(attacker_shares)
    assert attacker_payout <= 1

    claimable(vault, victim)
    vault.redeem(victim_shares, victim, victim, sender=victim)
    assert token.balanceOf(victim) >= stake - 1
    if attacker_payout > 0:
        claimable(vault, attacker)
        vault.redeem(attacker_shares, attacker, attacker, sender=attacker)
    attacker_spent = 1 + 2 * donation
    assert token.balanceOf(attacker) == attacker_payout
    assert attacker_payout < attacker_spent


# ---------------------------------------------------------------------------
# Collateral decimals
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("token_decimals", [6, 18])
def test_vault_works_over_collateral_with_decimals(
    deploy, admin, market_config, lp, trader, token_decimals, claimable
):
    protocol = deploy(token_decimals=token_decimals)
    market_id = protocol.add_market(market_config, atomic_trading=True)
    token, engine, vault = protocol.token, protocol.engine, protocol.vault
    one = 10**token_decimals
    scale = 10 ** (18 - token_decimals)
    assert engine.collateral_scale() == scale
    assert vault.decimals() == token_decimals + OFFSET

    lp_assets = 1_000_000 * one + 123
    token.mint(lp, lp_assets, sender=admin)
    token.approve(vault, lp_assets, sender=lp)
    shares = vault.previewDeposit(lp_assets)
    assert shares == lp_assets * VIRTUAL_SHARES
    vault.deposit(lp_assets, lp, sender=lp)
    assert vault.balanceOf(lp) == shares
    assert engine.vault_balance() == lp_assets * scale
    assert vault.totalAssets() == lp_assets

    collateral = 300_000 * one
    token.mint(trader, collateral, sender=admin)
    token.approve(engine, collateral, sender=trader)
    engine.deposit(collateral, 0, sender=trader)
    assert engine.collateral(trader, 0) == collateral * scale
    engine.modify_position(market_id, to_wad("2.5"), BUY_LIMIT, sender=trader)
    [opened] = emitted(engine, "PositionModified")
    engine.close_position(market_id, SELL_LIMIT, sender=trader)
    [closed] = emitted(engine, "PositionModified")
    share = protocol.engine_admin.vault_fee_share()
    expected_equity = (
        lp_assets * scale
        + opened.fee * share // WAD
        + closed.fee * share // WAD
        - closed.realized_pnl
        + closed.funding_paid
    )
    assert vault_of(engine).equity() == expected_equity
    assert vault.totalAssets() == expected_equity // scale
    assert vault.totalAssets() > lp_assets

    claimable(vault, lp)
    payout = vault.previewRedeem(shares)
    assert payout == to_assets(shares, shares, expected_equity // scale)
    vault.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) == payout
    assert payout > lp_assets
    assert vault.totalSupply() == 0
