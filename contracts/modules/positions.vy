# pragma version ~=0.4.3
"""
@title positions
@notice Positions per (owner, subaccount, market) and the market aggregates
        derived from them: open interest per side, skew, the sum of cost
        bases and the sum of funding-snapshot terms. The aggregates let the
        LP vault value its side of every position without a loop: exactly
        for PnL, and for funding never above what positions owe (at most 2
        wei per position below).
@custom:security A position's cost basis rounds against its holder, so the
                 aggregate view of traders' PnL is never below the sum of the
                 accounts' own views.
"""

from . import fixed_point
from . import accounts

uses: accounts

# @dev Bound on the markets one account holds at once, so every loop is bounded.
MAX_OPEN_MARKETS: constant(uint256) = 8
# @dev Bit positions available in the open-market mask.
MASK_BITS: constant(uint256) = 64


struct Position:
    size: int256
    cost: int256
    funding_snapshot: int256


struct StoredPosition:
    size_and_cost: uint256
    funding_snapshot: int256


# @dev Position of (owner, subaccount) in a market, packed so a trade touches two
#      slots: size (int128, bits 0-127) and cost (int128, 128-255) in one, the funding
#      snapshot in the other. size is signed (18 decimals), cost the basis size * entry
#      (quote, 18 decimals), snapshot the funding index at the last settlement.
_positions: HashMap[address, HashMap[uint256, HashMap[uint256, StoredPosition]]]
# @dev Open interest by market in one word: sum of long sizes (bits 0-127) and of
#      short sizes, positive (128-255).
_open_interest: HashMap[uint256, uint256]
# @dev The vault's aggregates by market in one word, since every trade moves both: the
#      sum of cost bases (int128, bits 0-127) and the sum of each position's
#      ceil(size * funding_snapshot), quote 18 decimals (int128, 128-255).
_sums: HashMap[uint256, uint256]
# @dev Sum over an owner's subaccounts of abs(size) in each market, 18 decimals: S3's
#      max_position_size caps it, so splitting a position over subaccounts gains no room.
owner_exposure: public(HashMap[address, HashMap[uint256, uint256]])

MASK_128: constant(uint256) = 2**128 - 1


@external
@view
def open_positions(owner: address, subaccount: uint256, market_id: uint256) -> Position:
    """
    @notice The position of (owner, subaccount) in a market.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param market_id Market.
    @return Size (signed, 18 decimals), cost basis and funding snapshot.
    """
    return self._load(owner, subaccount, market_id)


@external
@view
def long_open_interest(market_id: uint256) -> uint256:
    """
    @notice Sum of long sizes in a market (18 decimals).
    @param market_id Market.
    @return Long open interest.
    """
    return self._open_interest[market_id] & MASK_128


@external
@view
def short_open_interest(market_id: uint256) -> uint256:
    """
    @notice Sum of short sizes in a market, positive (18 decimals).
    @param market_id Market.
    @return Short open interest.
    """
    return self._open_interest[market_id] >> 128


@external
@view
def cost_sum(market_id: uint256) -> int256:
    """
    @notice Sum of the cost bases of all positions in a market (quote, 18 decimals).
    @param market_id Market.
    @return The sum.
    """
    return self._cost_sum(market_id)


@external
@view
def snapshot_sum(market_id: uint256) -> int256:
    """
    @notice Sum over a market's positions of ceil(size * funding_snapshot)
            (quote, 18 decimals): floor(index * skew) minus it never exceeds
            the funding the positions owe.
    @param market_id Market.
    @return The sum.
    """
    return fixed_point._signed_field(self._sums[market_id], 128, 128)


@internal
@view
def _cost_sum(market_id: uint256) -> int256:
    return fixed_point._signed_field(self._sums[market_id], 0, 128)


@internal
@view
def _load(owner: address, subaccount: uint256, market_id: uint256) -> Position:
    stored: StoredPosition = self._positions[owner][subaccount][market_id]
    return Position(
        size=fixed_point._signed_field(stored.size_and_cost, 0, 128),
        cost=fixed_point._signed_field(stored.size_and_cost, 128, 128),
        funding_snapshot=stored.funding_snapshot,
    )


@internal
@view
def _interest(market_id: uint256) -> (uint256, uint256):
    """
    @dev Long and short open interest.
    """
    word: uint256 = self._open_interest[market_id]
    return word & MASK_128, word >> 128


@internal
@view
def _skew(market_id: uint256) -> int256:
    """
    @dev Long minus short open interest.
    """
    longs: uint256 = 0
    shorts: uint256 = 0
    longs, shorts = self._interest(market_id)
    return convert(longs, int256) - convert(shorts, int256)


@internal
@pure
def _apply_fill(position: Position, size_delta: int256, fill_price: uint256) -> (Position, int256):
    """
    @dev The position after a fill of size_delta at fill_price, and the PnL
         realised on the part that closed. Cost and PnL round against the holder.
    """
    size: int256 = position.size
    new_size: int256 = size + size_delta
    price: int256 = convert(fill_price, int256)
    realized: int256 = 0
    new_cost: int256 = 0
    if size == 0 or fixed_point._sign(size) == fixed_point._sign(size_delta):
        new_cost = position.cost + fixed_point._mul_ceil(size_delta, price)
    elif fixed_point._sign(new_size) == fixed_point._sign(size) or new_size == 0:
        # same sign, so cost * new / size == cost * |new| / |size|, with a positive divisor
        new_cost = fixed_point._ceil_div(position.cost * abs(new_size), abs(size))
        closed: int256 = -size_delta
        realized = fixed_point._mul_floor(closed, price) - (position.cost - new_cost)
    else:
        realized = fixed_point._mul_floor(size, price) - position.cost
        new_cost = fixed_point._mul_ceil(new_size, price)
    return Position(size=new_size, cost=new_cost, funding_snapshot=position.funding_snapshot), realized


@internal
def _store(owner: address, subaccount: uint256, market_id: uint256, old: Position, new: Position) -> uint256:
    """
    @dev Writes a position and moves the market aggregates, the owner's
         exposure and the account's open-market mask with it; returns the
         owner's exposure in the market after the change.
    """
    longs: uint256 = 0
    shorts: uint256 = 0
    longs, shorts = self._interest(market_id)
    if old.size > 0:
        longs -= convert(old.size, uint256)
    elif old.size < 0:
        shorts -= convert(-old.size, uint256)
    if new.size > 0:
        longs += convert(new.size, uint256)
    elif new.size < 0:
        shorts += convert(-new.size, uint256)
    self._open_interest[market_id] = convert(convert(longs, uint128), uint256) | convert(convert(shorts, uint128), uint256) << 128
    # each position's snapshot term is a function of the position alone, so the sum stays exact
    sums: uint256 = self._sums[market_id]
    cost_sum: int256 = fixed_point._signed_field(sums, 0, 128) + new.cost - old.cost
    snapshot_sum: int256 = fixed_point._signed_field(sums, 128, 128) + fixed_point._mul_ceil(new.size, new.funding_snapshot) - fixed_point._mul_ceil(old.size, old.funding_snapshot)
    self._sums[market_id] = fixed_point._int128_bits(cost_sum) | fixed_point._int128_bits(snapshot_sum) << 128
    exposure: uint256 = self.owner_exposure[owner][market_id]
    if new.size != old.size:
        exposure = exposure + convert(abs(new.size), uint256) - convert(abs(old.size), uint256)
        self.owner_exposure[owner][market_id] = exposure

    bit: uint256 = 1 << market_id
    mask: uint256 = accounts._open_markets(owner, subaccount)
    if new.size == 0:
        self._positions[owner][subaccount][market_id] = empty(StoredPosition)
        if mask & bit != 0:
            accounts._set_open_markets(owner, subaccount, mask ^ bit)
    else:
        self._positions[owner][subaccount][market_id] = StoredPosition(
            size_and_cost=fixed_point._int128_bits(new.size) | fixed_point._int128_bits(new.cost) << 128,
            funding_snapshot=new.funding_snapshot,
        )
        if mask & bit == 0:
            assert self._count_bits(mask) < MAX_OPEN_MARKETS, "positions: too many open markets"
            accounts._set_open_markets(owner, subaccount, mask | bit)
    return exposure


@internal
@pure
def _count_bits(mask: uint256) -> uint256:
    count: uint256 = 0
    remaining: uint256 = mask
    for i: uint256 in range(MASK_BITS):
        if remaining == 0:
            break
        count += remaining & 1
        remaining >>= 1
    return count

