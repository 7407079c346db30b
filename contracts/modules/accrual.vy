# pragma version ~=0.4.3
"""
@title accrual
@notice Brings markets and accounts up to now. A market: read the index,
        feed the price-move breaker, accrue funding at the current skew. An
        account: move the funding its positions owe between its collateral
        and the LP vault (counterparty to every funding payment). Every entry
        point that changes a market's skew, a size or collateral, or its
        parameters, runs this first.
@custom:security Stateless: the state it moves belongs to the modules it uses.
"""

from . import pricing
from . import funding
from . import positions
from . import accounts
from . import treasury

uses: pricing
uses: funding
uses: positions
uses: accounts
uses: treasury


event FundingSettled:
    owner: indexed(address)
    subaccount: indexed(uint256)
    market_id: indexed(uint256)
    amount: int256


@internal
def _refresh(market_id: uint256) -> uint256:
    """
    @dev Accrues the market to now; returns the index price it read. An
         outlier index halts the market (S4): nothing runs at it.
    """
    index: uint256 = pricing._index_price(market_id)
    pricing._update_breaker(market_id, index)
    funding._accrue(market_id, index, positions._skew(market_id))
    return index


@internal
def _settle_funding(owner: address, subaccount: uint256, market_id: uint256):
    """
    @dev Moves a position's owed funding between its collateral and the vault
         (counterparty to every funding payment) and re-snapshots it.
    """
    old: positions.Position = positions._load(owner, subaccount, market_id)
    if old.size == 0:
        return
    index: int256 = funding._index(market_id)
    owed: int256 = funding._owed(old.size, old.funding_snapshot, index)
    if owed == 0 and old.funding_snapshot == index:
        return
    # the vault pays funding up to its balance (S1); what it cannot pay is not credited
    owed += treasury._book_trade(owed, 0)
    accounts._add_collateral(owner, subaccount, -owed)
    new: positions.Position = old
    new.funding_snapshot = index
    positions._store(owner, subaccount, market_id, old, new)
    log FundingSettled(owner=owner, subaccount=subaccount, market_id=market_id, amount=owed)


@internal
def _refresh_account(owner: address, subaccount: uint256) -> uint256[positions.MAX_OPEN_MARKETS]:
    """
    @dev Accrues every market the account holds; returns the index price read
         in each, in the order of the open-market mask.
    """
    indexes: uint256[positions.MAX_OPEN_MARKETS] = empty(uint256[positions.MAX_OPEN_MARKETS])
    mask: uint256 = accounts._open_markets(owner, subaccount)
    held: uint256 = 0
    for market_id: uint256 in range(positions.MASK_BITS):
        if mask == 0:
            break
        if mask & 1 == 1:
            indexes[held] = self._refresh(market_id)
            held += 1
        mask >>= 1
    return indexes


@internal
def _settle_account(owner: address, subaccount: uint256) -> uint256[positions.MAX_OPEN_MARKETS]:
    """
    @dev Accrues and settles funding in every market the account holds;
         returns the index prices as _refresh_account does.
    """
    indexes: uint256[positions.MAX_OPEN_MARKETS] = self._refresh_account(owner, subaccount)
    mask: uint256 = accounts._open_markets(owner, subaccount)
    for market_id: uint256 in range(positions.MASK_BITS):
        if mask == 0:
            break
        if mask & 1 == 1:
            self._settle_funding(owner, subaccount, market_id)
        mask >>= 1
    return indexes
