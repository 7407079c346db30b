# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title EngineRisk
@notice The Engine's risk entry points: liquidation (single and batched)
        and auto-deleveraging. The Engine runs this code by delegatecall
        from its fallback, in its own storage, so that the trade path and
        the risk rules each have room under EIP-170. Call these functions at
        the engine's address (this contract's ABI over the engine); called
        directly, they refuse.
@custom:security Its storage layout must equal the Engine's: both compose the
                 same modules in the same order and declare no storage of
                 their own (a test compares the compiler's layouts). Every
                 function checks its role in the engine's storage. Calls go
                 through the engine's fallback, which returns their data.
"""

from snekmate.auth import access_control
from snekmate.utils import pausable

from .modules import fixed_point
from .modules import markets
from .modules import pricing
from .modules import funding
from .modules import positions
from .modules import accounts
from .modules import treasury
from .modules import margin
from .modules import accrual
from .modules import liquidation
from .modules import timelock

initializes: access_control
initializes: pausable
initializes: markets
initializes: pricing[markets := markets]
initializes: funding[markets := markets]
initializes: accounts
initializes: positions[accounts := accounts]
initializes: treasury
initializes: margin[
    markets := markets,
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
]
initializes: accrual[
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
    treasury := treasury,
]
initializes: liquidation[
    markets := markets,
    pricing := pricing,
    funding := funding,
    positions := positions,
    accounts := accounts,
    treasury := treasury,
    margin := margin,
    accrual := accrual,
]
initializes: timelock

# @dev Bound on the accounts one batch liquidation takes.
MAX_LIQUIDATION_BATCH: constant(uint256) = 64
# @dev This contract's own address: code running at any other address runs for an engine.
SELF: immutable(address)


struct AccountRef:
    owner: address
    subaccount: uint256


@deploy
def __init__():
    """
    @notice Deploys the facet; an Engine is then deployed over its address.
    """
    SELF = self
    access_control.__init__()
    pausable.__init__()
    treasury.__init__()
    liquidation.__init__()


# ---------------------------------------------------------------------------
# Liquidation
# ---------------------------------------------------------------------------


@external
@nonreentrant
def liquidate(owner: address, subaccount: uint256 = 0) -> uint256:
    """
    @notice Liquidates an account below maintenance margin (permissionless):
            its positions close at the mark price, partially for a large
            account when that restores it. Works while paused.
    @dev The reward is credited to the caller's subaccount 0 as collateral.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @return The liquidator's reward, 18 decimals.
    """
    assert self != SELF, "engine_risk: call through the engine"
    liquidated: bool = False
    reward: uint256 = 0
    liquidated, reward = liquidation._liquidate(owner, subaccount)
    assert liquidated, "engine: account not liquidatable"
    if reward > 0:
        accounts._add_collateral(msg.sender, 0, convert(reward, int256))
    return reward


@external
@nonreentrant
def liquidate_many(refs: DynArray[AccountRef, MAX_LIQUIDATION_BATCH]) -> DynArray[bool, MAX_LIQUIDATION_BATCH]:
    """
    @notice Liquidates every listed account that is below maintenance margin
            and skips the others (healthy, flat or already liquidated).
    @dev Rewards are credited once, to the caller's subaccount 0.
    @param refs The accounts.
    @return Whether each account was liquidated, in order.
    """
    assert self != SELF, "engine_risk: call through the engine"
    done: DynArray[bool, MAX_LIQUIDATION_BATCH] = []
    total_reward: uint256 = 0
    for ref: AccountRef in refs:
        liquidated: bool = False
        reward: uint256 = 0
        liquidated, reward = liquidation._liquidate(ref.owner, ref.subaccount)
        done.append(liquidated)
        total_reward += reward
    if total_reward > 0:
        accounts._add_collateral(msg.sender, 0, convert(total_reward, int256))
    return done


# ---------------------------------------------------------------------------
# Auto-deleveraging
# ---------------------------------------------------------------------------


@external
@nonreentrant
def deleverage(market_id: uint256, owner: address, subaccount: uint256, size: uint256):
    """
    @notice Closes size of a profitable position at the mark price, without
            fee, while traders' net unrealized profit exceeds max_pnl_factor
            of the vault's assets, and then until it is back under adl_target
            (S2). Only accounts at or above maintenance margin after the
            funding they owe, which is settled first (S11). Permissionless;
            the caller picks the most profitable positions.
    @param market_id Market.
    @param owner Account owner.
    @param subaccount Subaccount id.
    @param size Unsigned size to close, at most the position's.
    """
    assert self != SELF, "engine_risk: call through the engine"
    liquidation._deleverage(owner, subaccount, market_id, size)


@external
@view
def adl_eligible() -> bool:
    """
    @notice True while deleveraging is allowed: traders' net unrealized
            profit exceeds max_pnl_factor of the vault's assets (adl_target
            once deleveraging has started, until a close brings it under).
    @return Whether deleverage() may run.
    """
    return liquidation._adl_eligible()
