# pragma version ~=0.4.3
"""
@title HostileToken
@notice Test double of a misbehaving collateral token: it can take a fee on
        transfer, return false instead of reverting, or call back into the
        engine from transferFrom to prove the engine's reentrancy lock holds.
        Never deployed outside tests.
"""

interface IEngine:
    def withdraw(amount: uint256, subaccount: uint256, owner: address): nonpayable


# @dev Balances.
balanceOf: public(HashMap[address, uint256])
# @dev Allowances.
allowance: public(HashMap[address, HashMap[address, uint256]])
# @dev Token decimals.
decimals: public(uint8)
# @dev Basis points burnt from every transfer.
fee_bps: public(uint256)
# @dev When set, transfer and transferFrom return false and move nothing.
return_false: public(bool)
# @dev When set, transferFrom calls this engine's withdraw before moving tokens.
reenter_target: public(address)


@deploy
def __init__(decimals_: uint8):
    self.decimals = decimals_


@external
def configure(fee_bps_: uint256, return_false_: bool, reenter_target_: address):
    self.fee_bps = fee_bps_
    self.return_false = return_false_
    self.reenter_target = reenter_target_


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    if self.return_false:
        return False
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    if self.return_false:
        return False
    if self.reenter_target != empty(address):
        extcall IEngine(self.reenter_target).withdraw(1, 0, owner)
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    fee: uint256 = amount * self.fee_bps // 10000
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
