"""JSON-RPC for keepers that watch thousands of accounts: batched posts, raw ABI codecs, and a
split of failures into the ones worth retrying and the final ones.

Ape's contract calls cost a dozen requests and milliseconds of conversions each; a keeper that
values 10,000 accounts within a second needs one HTTP post carrying many requests and plain
`eth_abi` decoding. Contract ABIs still come from the compiled project (Ape's contract types), so
nothing here repeats a signature by hand.

Errors. `RetryableRpcError`: the node did not answer (connection refused, timeout, HTTP 5xx) or
refused a transaction for a reason a later attempt fixes (nonce too low, underpriced, already
known). `FinalRpcError`: the node answered and the answer is definite, e.g. a call or gas
estimate that reverts with a reason. Callers retry the first kind at their next step and drop
(and count) the second.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from vyperp.errors import VyperpError

# Messages of JSON-RPC errors that a later attempt can get past (geth, anvil, erigon wording).
RETRYABLE_MESSAGES = (
    "nonce too low",
    "nonce too high",
    "underpriced",
    "already known",
    "replacement transaction",
    "header not found",
    "timeout",
    "rate limit",
    "try again",
)


class RpcError(VyperpError):
    """A request the node did not answer as asked."""


class RetryableRpcError(RpcError):
    """Transient: the same request may succeed later."""


class FinalRpcError(RpcError):
    """Definite: the node answered and repeating the request gives the same answer."""

    def __init__(self, message: str, data: Any = None):
        super().__init__(message)
        self.data = data


def classify(error: dict) -> RpcError:
    """The exception for one JSON-RPC error object."""
    message = str(error.get("message", error))
    if any(marker in message.lower() for marker in RETRYABLE_MESSAGES):
        return RetryableRpcError(message)
    return FinalRpcError(message, error.get("data"))


@dataclass
class RpcResult:
    """One answer of a batch: a value or the error the node gave for that request."""

    value: Any = None
    error: RpcError | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class RpcClient:
    """Posts JSON-RPC requests, many per HTTP post, to one node URL.

    `url` may be changed at any time (a keeper failing over to another node); `requests_sent`
    counts JSON-RPC requests (not posts), which is what node providers bill and rate-limit.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, max_batch: int = 1000):
        self.url = url
        self.timeout = timeout
        self.max_batch = max_batch
        self.requests_sent = 0
        self.posts = 0
        self._ids = itertools.count(1)
        self._session = requests.Session()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self.batch([(method, params)])[0].unwrap()

    def batch(self, requests_: Sequence[tuple[str, Sequence[Any]]]) -> list[RpcResult]:
        """Answers in request order; a per-request error stays in its result, a transport failure
        raises `RetryableRpcError` for the whole batch."""
        results: list[RpcResult] = []
        for start in range(0, len(requests_), self.max_batch):
            results.extend(self._post(requests_[start : start + self.max_batch]))
        return results

    def _post(self, chunk: Sequence[tuple[str, Sequence[Any]]]) -> list[RpcResult]:
        if not chunk:
            return []
        ids = [next(self._ids) for _ in chunk]
        payload = [
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
            for request_id, (method, params) in zip(ids, chunk, strict=True)
        ]
        self.requests_sent += len(payload)
        self.posts += 1
        try:
            response = self._session.post(self.url, json=payload, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise RetryableRpcError(f"{type(error).__name__}: {self.url}") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableRpcError(f"HTTP {response.status_code} from {self.url}")
        if response.status_code != 200:
            raise FinalRpcError(
                f"HTTP {response.status_code} from {self.url}: {response.text[:200]}")
        answers = response.json()
        if isinstance(answers, dict):  # a node that refuses the whole batch answers with one error
            raise classify(answers.get("error", answers))
        by_id = {answer.get("id"): answer for answer in answers}
        results = []
        for request_id in ids:
            answer = by_id.get(request_id)
            if answer is None:
                results.append(RpcResult(error=RetryableRpcError("no answer in the batch")))
            elif "error" in answer:
                results.append(RpcResult(error=classify(answer["error"])))
            else:
                results.append(RpcResult(value=answer.get("result")))
        return results


class AbiMethod:
    """Calldata and return decoding of one contract method, from Ape's ABI for it."""

    def __init__(self, abi):
        self.name = abi.name
        self.selector = keccak(text=abi.selector)[:4]
        self.input_types = [item.canonical_type for item in abi.inputs]
        self.output_types = [item.canonical_type for item in abi.outputs]

    @classmethod
    def of(cls, contract_type, name: str, arity: int | None = None) -> AbiMethod:
        """The method by name; `arity` picks one overload (Vyper's default arguments make them)."""
        return cls(next(item for item in contract_type.abi
                        if item.type == "function" and item.name == name
                        and (arity is None or len(item.inputs) == arity)))

    def calldata(self, *args) -> str:
        return "0x" + (self.selector + encode(self.input_types, list(args))).hex()

    def decode(self, returndata: str) -> tuple:
        return decode(self.output_types, bytes.fromhex(returndata.removeprefix("0x")))

    def call_request(self, to: str, *args, block: str = "latest") -> tuple[str, list]:
        return "eth_call", [{"to": to, "data": self.calldata(*args)}, block]


class AbiMethods:
    """The methods of one contract a keeper calls, as attributes named as in the ABI
    (`AbiMethods(engine_type, ["skew"]).skew`). A name the ABI lacks is refused here, when the
    keeper starts, rather than at its first step."""

    def __init__(self, contract_type, names: Sequence[str]):
        functions = {item.name for item in contract_type.abi if item.type == "function"}
        missing = set(names) - functions
        if missing:
            raise ValueError(f"methods not in the ABI: {sorted(missing)}")
        for name in names:
            setattr(self, name, AbiMethod.of(contract_type, name))


@dataclass(frozen=True)
class DecodedLog:
    """An event with its arguments by name and its place in the chain."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    transaction_hash: str


class AbiEvents:
    """Decodes the raw logs of the given events of one contract (topic0 -> event)."""

    def __init__(self, contract_type, names: Sequence[str]):
        self._events = {}
        for item in contract_type.abi:
            if item.type == "event" and item.name in names:
                topic = "0x" + keccak(text=item.selector).hex()
                indexed = [(i.name, i.canonical_type) for i in item.inputs if i.indexed]
                data = [(i.name, i.canonical_type) for i in item.inputs if not i.indexed]
                self._events[topic] = (item.name, indexed, data)
        missing = set(names) - {name for name, _, _ in self._events.values()}
        if missing:
            raise ValueError(f"events not in the ABI: {sorted(missing)}")

    @property
    def topics(self) -> list[str]:
        return list(self._events)

    def decode(self, raw: dict) -> DecodedLog | None:
        event = self._events.get(raw["topics"][0]) if raw["topics"] else None
        if event is None:
            return None
        name, indexed, data = event
        args = {}
        for (arg, kind), topic in zip(indexed, raw["topics"][1:], strict=True):
            args[arg] = decode([kind], bytes.fromhex(topic.removeprefix("0x")))[0]
        values = decode([kind for _, kind in data], bytes.fromhex(raw["data"].removeprefix("0x")))
        args.update({arg: value for (arg, _), value in zip(data, values, strict=True)})
        for arg, kind in indexed + data:
            if kind == "address":  # eth_abi gives lower case; Ape and the book use checksums
                args[arg] = to_checksum_address(args[arg])
        return DecodedLog(
            name=name,
            args=args,
            block_number=int(raw["blockNumber"], 16),
            log_index=int(raw["logIndex"], 16),
            transaction_hash=raw["transactionHash"],
        )

