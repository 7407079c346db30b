# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title DevnetUSD
@notice Collateral stablecoin for local devnets and tests: a snekmate ERC-20
        (with EIP-2612 permit) whose minting is restricted to minters the
        owner appoints. On real networks the engine takes any ERC-20
        stablecoin instead.
@custom:security Minting is the only privileged action; the deployer is the
                 owner and the first minter.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: erc20.__interface__


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @notice Deploys the token; the deployer becomes owner and minter.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Token decimals (6 on the devnet; tests also use 18).
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
