"""Signed oracle observations for `PriceOracle.transmit` (rule S9: one transmission per round).

Reporters observe a price off chain and sign it with EIP-712; one of them sends the signed
observations of a round together in one `transmit(round_id, observations)` transaction, and the
oracle publishes their median. Nothing of a single observation is on chain before its round.

Typed data (must match contracts/PriceOracle.vy):

    domain  {name: "vyperp PriceOracle", version: "1", chainId, verifyingContract: the oracle}
    Observation(uint256 roundId,uint80 answer,uint40 observedAt)

`roundId` is the round the observation is for (`latestRound() + 1` when signed), so an
observation is good for that one round only. On chain each observation is three words:
`answer | observed_at << 80 | v << 120`, r, s; the signers must be in ascending address order.

Signers may be given as anything holding a private key: an eth_account `LocalAccount`
(`.key`), an Ape test account (`.private_key`), or the key itself (hex string or 32 bytes).
The digest is computed here with keccak (eth_utils) and is checked against eth_account's
`encode_typed_data` and the contract's `observation_digest` by the tests; signing uses
eth_account (`unsafe_sign_hash`, which is correct for a digest that is already EIP-712).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "vyperp PriceOracle"
DOMAIN_VERSION = "1"
OBSERVATION_TYPE = "Observation(uint256 roundId,uint80 answer,uint40 observedAt)"
OBSERVATION_TYPES = {
    "Observation": [
        {"name": "roundId", "type": "uint256"},
        {"name": "answer", "type": "uint80"},
        {"name": "observedAt", "type": "uint40"},
    ]
}
OBSERVED_AT_SHIFT = 80
V_SHIFT = 120
MAX_ANSWER = 2**80 - 1
MAX_OBSERVED_AT = 2**40 - 1

_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_OBSERVATION_TYPEHASH = keccak(text=OBSERVATION_TYPE)
_separators: dict[tuple[int, str], bytes] = {}


def domain(chain_id: int, oracle_address: str) -> dict:
    """The EIP-712 domain of an oracle, as eth_account's `encode_typed_data` takes it."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(str(oracle_address)),
    }


def domain_separator(chain_id: int, oracle_address: str) -> bytes:
    """hashStruct(EIP712Domain) of an oracle (cached)."""
    key = (int(chain_id), str(oracle_address).lower())
    if key not in _separators:
        _separators[key] = keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [_DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION),
                 int(chain_id), to_checksum_address(str(oracle_address))],
            )
        )
    return _separators[key]


def observation_digest(chain_id: int, oracle_address: str, round_id: int, answer: int,
                       observed_at: int) -> bytes:
    """The 32-byte EIP-712 digest a reporter signs for one observation."""
    struct_hash = keccak(
        abi_encode(["bytes32", "uint256", "uint256", "uint256"],
                   [_OBSERVATION_TYPEHASH, round_id, answer, observed_at])
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id, oracle_address) + struct_hash)


def private_key_of(signer) -> bytes:
    """The 32-byte private key behind a signer (LocalAccount, Ape test account or raw key)."""
    key = getattr(signer, "private_key", None)  # an Ape test account
    if key is None:
        key = getattr(signer, "key", None)  # an eth_account LocalAccount
    if key is None:
        key = signer
    if isinstance(key, str):
        return bytes.fromhex(key.removeprefix("0x"))
    return bytes(key)


def address_of(signer) -> str:
    """The checksummed address of a signer."""
    address = getattr(signer, "address", None)
    if address is None:
        address = Account.from_key(private_key_of(signer)).address
    return to_checksum_address(str(address))


@dataclass(frozen=True)
class SignedObservation:
    """One reporter's signed observation for one round."""

    signer: str
    round_id: int
    answer: int
    observed_at: int
    v: int
    r: bytes
    s: bytes

    @property
    def packed(self) -> int:
        return self.answer | self.observed_at << OBSERVED_AT_SHIFT | self.v << V_SHIFT

    def as_calldata(self) -> tuple[int, bytes, bytes]:
        """The `Observation` struct `transmit` takes: (packed, r, s)."""
        return (self.packed, self.r, self.s)


def sign_observation(signer, chain_id: int, oracle_address: str, round_id: int, answer: int,
                     observed_at: int) -> SignedObservation:
    """Signs `answer` observed at `observed_at` for round `round_id` of an oracle."""
    if not 0 < answer <= MAX_ANSWER:
        raise ValueError(f"answer {answer} is outside 1..2**80-1")
    if not 0 <= observed_at <= MAX_OBSERVED_AT:
        raise ValueError(f"observed_at {observed_at} does not fit 40 bits")
    digest = observation_digest(chain_id, oracle_address, round_id, answer, observed_at)
    signed = Account.unsafe_sign_hash(digest, private_key_of(signer))
    return SignedObservation(
        signer=address_of(signer),
        round_id=round_id,
        answer=answer,
        observed_at=observed_at,
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
    )


def transmission(observations: Iterable[SignedObservation]) -> list[tuple[int, bytes, bytes]]:
    """The `observations` argument of `transmit`: signers in ascending address order."""
    ordered = sorted(observations, key=lambda o: int(o.signer, 16))
    return [o.as_calldata() for o in ordered]


_chain_ids: dict[str, int] = {}


def chain_id_of(oracle) -> int:
    """The chain id an oracle signs for, read once from its EIP-5267 `eip712Domain()`."""
    address = str(oracle.address).lower()
    if address not in _chain_ids:
        _chain_ids[address] = int(oracle.eip712Domain()[3])
    return _chain_ids[address]


def pending_timestamp(oracle) -> int:
    """The timestamp the next transaction to `oracle` will see: titanoboa's clock for a boa
    contract, Ape's pending timestamp otherwise."""
    if type(oracle).__module__.startswith("boa"):
        import boa

        return int(boa.env.evm.patch.timestamp)
    from ape import chain

    return int(chain.pending_timestamp)


def sign_round(oracle, prices: int | Sequence[int], signers: Sequence, *,
               observed_at: int | None = None, round_id: int | None = None,
               chain_id: int | None = None) -> tuple[int, list[SignedObservation]]:
    """Signed observations of the oracle's next round (or `round_id`): one per signer, all at
    `prices` (one int for all, or one per signer) observed at `observed_at` (default: the
    pending timestamp). Returns (round_id, observations)."""
    if isinstance(prices, int):
        prices = [prices] * len(signers)
    if len(prices) != len(signers):
        raise ValueError(f"{len(prices)} prices for {len(signers)} signers")
    if round_id is None:
        round_id = int(oracle.latestRound()) + 1
    if observed_at is None:
        observed_at = pending_timestamp(oracle)
    if chain_id is None:
        chain_id = chain_id_of(oracle)
    return round_id, [
        sign_observation(signer, chain_id, oracle.address, round_id, int(price), observed_at)
        for signer, price in zip(signers, prices)
    ]


def transmit_round(oracle, prices: int | Sequence[int], signers: Sequence, sender, *,
                   observed_at: int | None = None, round_id: int | None = None,
                   chain_id: int | None = None, **tx_kwargs):
    """Signs the next round's observations with `signers` and sends them in one
    `transmit` from `sender` (a reporter). Returns what the contract call returns (an Ape
    receipt, or None on titanoboa)."""
    round_id, observations = sign_round(oracle, prices, signers, observed_at=observed_at,
                                        round_id=round_id, chain_id=chain_id)
    return oracle.transmit(round_id, transmission(observations), sender=sender, **tx_kwargs)
