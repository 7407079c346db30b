"""The engine reads and writes the book keepers share, over raw JSON-RPC: market quotes, batched
account statuses, and signed transactions sent without waiting for their receipts.

Every read names its block, so the book (synced through block N), the quotes and the statuses a
keeper compares all describe the same state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from eth_utils import keccak

from vyperp.keepers.account_book import AccountKey, MarketQuote
from vyperp.keepers.metrics import KeeperMetrics
from vyperp.keepers.rpc import (
    AbiMethod, AbiMethods, FinalRpcError, RetryableRpcError, RpcClient, RpcError, RpcResult,
)

# EngineLens.MAX_BATCH: accounts per account_statuses call.
STATUS_BATCH = 500
# Over an estimate: funding settlements the estimate, at the head's timestamp, did not see.
OUT_OF_GAS_HEADROOM = 1.4


@dataclass(frozen=True)
class ChainStatus:
    """`EngineLens.account_statuses` for one account (18 decimals)."""

    key: AccountKey
    equity: int
    maintenance_margin: int
    notional: int
    liquidatable: bool


@dataclass(frozen=True)
class Head:
    """The block a step works at, with what sending needs at it."""

    number: int
    market_count: int
    nonce: int  # the sender's next nonce, pending transactions included
    gas_price: int


class EngineReads:
    """Batched reads of one engine and its lens at a given block."""

    def __init__(self, rpc: RpcClient, engine, lens):
        self.rpc = rpc
        self.engine_address = str(engine.address)
        self.lens_address = str(lens.address)
        # the engine's views every keeper step reads; the lens's batched account statuses
        self.engine = AbiMethods(engine.contract_type, (
            "market_count", "mark_price", "current_funding", "params", "collateral_scale",
            "adl_eligible",
        ))
        self.account_statuses = AbiMethod.of(lens.contract_type, "account_statuses")
        params_abi = next(
            item for item in engine.contract_type.abi if getattr(item, "name", None) == "params"
        )
        self._mmr_field = [item.name for item in params_abi.outputs[0].components].index("mmr")

    def head(self, sender: str | None) -> Head:
        """Block number, market count, and the sender's nonce and gas price: one post."""
        requests = [("eth_blockNumber", []), ("eth_gasPrice", [])]
        if sender:
            # both tags: anvil's "pending" count can lag "latest" after an evm_revert
            requests.append(("eth_getTransactionCount", [sender, "pending"]))
            requests.append(("eth_getTransactionCount", [sender, "latest"]))
        answers = [result.unwrap() for result in self.rpc.batch(requests)]
        number = int(answers[0], 16)
        return Head(number=number, market_count=self._read(self.engine.market_count, hex(number)),
                    gas_price=int(answers[1], 16),
                    nonce=max(int(answers[2], 16), int(answers[3], 16)) if sender else 0)

    def read_collateral_scale(self) -> int:
        return self._read(self.engine.collateral_scale)

    def quote_requests(self, market_count: int, block: int) -> list[tuple[str, list]]:
        return [
            method.call_request(self.engine_address, market_id, block=hex(block))
            for market_id in range(market_count)
            for method in (self.engine.mark_price, self.engine.current_funding, self.engine.params)
        ]

    def decode_quotes(self, results: Sequence[RpcResult], market_count: int
                      ) -> dict[int, MarketQuote]:
        """A market whose mark reverts (stale or invalid price) gets `mark=None`."""
        quotes = {}
        for market_id in range(market_count):
            mark, funding, params = results[3 * market_id : 3 * market_id + 3]
            usable = mark.error is None and funding.error is None
            quotes[market_id] = MarketQuote(
                market_id=market_id,
                mark=self.engine.mark_price.decode(mark.value)[0] if usable else None,
                funding_index=self.engine.current_funding.decode(funding.value)[0] if usable else 0,
                mmr=self.engine.params.decode(params.unwrap())[0][self._mmr_field],
            )
        return quotes

    def quotes(self, market_count: int, block: int) -> dict[int, MarketQuote]:
        results = self.rpc.batch(self.quote_requests(market_count, block))
        return self.decode_quotes(results, market_count)

    def statuses(self, keys: Sequence[AccountKey], block: int
                 ) -> tuple[list[ChainStatus], list[FinalRpcError]]:
        """`account_statuses` for many accounts, 500 per call, all calls in one post. A chunk the
        lens refuses (a market without a usable price) is returned as its error."""
        chunks = [list(keys[start : start + STATUS_BATCH])
                  for start in range(0, len(keys), STATUS_BATCH)]
        results = self.rpc.batch([
            self.account_statuses.call_request(self.lens_address, chunk, block=hex(block))
            for chunk in chunks
        ])
        statuses, failures = [], []
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result.error, FinalRpcError):
                failures.append(result.error)
                continue
            (answers,) = self.account_statuses.decode(result.unwrap())
            statuses.extend(ChainStatus(key, *answer)
                            for key, answer in zip(chunk, answers, strict=True))
        return statuses, failures

    def is_adl_eligible(self, block: int | str = "latest") -> bool:
        return self._read(self.engine.adl_eligible, hex(block) if isinstance(block, int) else block)

    def _read(self, method: AbiMethod, block: str = "latest"):
        """The single value an engine view returns at `block` (one request)."""
        request = method.call_request(self.engine_address, block=block)
        return method.decode(self.rpc.call(*request))[0]


@contextmanager
def retry_at_next_step(metrics: KeeperMetrics, report) -> Iterator[None]:
    """Ends a step the node cut short (`RetryableRpcError`) without raising: the report says why
    (`report.retryable_error`), the error is counted and logged, and the next step starts over.
    Any other error propagates."""
    try:
        yield
    except RetryableRpcError as error:
        report.retryable_error = str(error)
        metrics.count("retryable_errors")
        metrics.log.warning("node unavailable, retrying next step: %s", error)


@dataclass(frozen=True)
class SignedTransaction:
    raw: str
    hash: str
    nonce: int


class TransactionSigner:
    """Signs engine calls with an Ape account (test, keyfile with autosign, or a bot's signer)
    so they can be sent as raw transactions in one post, without Ape waiting on each receipt."""

    def __init__(self, account, chain_id: int):
        self.account = account
        self.address = str(account.address)
        self.chain_id = chain_id

    def sign(self, to: str, data: str, *, nonce: int, gas: int, gas_price: int
             ) -> SignedTransaction:
        from ape import networks

        txn = networks.ethereum.create_transaction(
            chain_id=self.chain_id, to=to, data=bytes.fromhex(data.removeprefix("0x")), nonce=nonce,
            gas=gas, gas_price=gas_price, type=0, sender=self.address, value=0,
        )
        signed = self.account.sign_transaction(txn)
        if signed is None or not signed.signature:
            raise FinalRpcError(f"{self.address} refused to sign")
        raw = signed.serialize_transaction()
        return SignedTransaction(raw="0x" + raw.hex(), hash="0x" + keccak(raw).hex(), nonce=nonce)

    def prepare(self, rpc: RpcClient, to: str, calldata: Sequence[str], head: Head,
                gas_limits: Sequence[int]) -> list[SignedTransaction | RpcError]:
        """Runs every call once with `eth_call` at its gas limit (one post), then signs those
        that pass, with consecutive nonces. A call that reverts comes back as its (final) error,
        reason included: nothing is spent on it. A call that runs out of gas at the caller's
        limit is estimated (one more post) and gets the estimate plus `OUT_OF_GAS_HEADROOM`.

        Limits come from the caller's model first, not from `eth_estimateGas`: an estimate runs
        each call a dozen times (a binary search), which cost 8 s for 42 batches of 64
        liquidations, and it runs at the head block's timestamp, where funding has already
        accrued, so it misses the settlements the transaction pays a second later (a
        48-account liquidation estimated at 2.8M gas used over 3.5M)."""
        limits = list(gas_limits)
        checks = self._check(rpc, to, calldata, limits, head)
        short = [i for i, check in enumerate(checks) if _out_of_gas(check.error)]
        if short:
            estimates = rpc.batch([
                ("eth_estimateGas", [{"from": self.address, "to": to, "data": calldata[i]},
                                     hex(head.number)]) for i in short])
            for i, estimate in zip(short, estimates, strict=True):
                if estimate.error is not None:
                    checks[i] = estimate
                else:
                    limits[i] = max(limits[i], int(int(estimate.value, 16) * OUT_OF_GAS_HEADROOM))
                    checks[i] = RpcResult(value="0x")
        prepared: list[SignedTransaction | RpcError] = []
        nonce = head.nonce
        for data, gas, check in zip(calldata, limits, checks, strict=True):
            if check.error is not None:
                prepared.append(check.error)
                continue
            prepared.append(self.sign(to, data, nonce=nonce, gas=gas, gas_price=head.gas_price))
            nonce += 1
        return prepared

    def _check(self, rpc: RpcClient, to: str, calldata: Sequence[str], limits: Sequence[int],
               head: Head) -> list[RpcResult]:
        return rpc.batch([
            ("eth_call", [{"from": self.address, "to": to, "data": data, "gas": hex(gas)},
                          hex(head.number)])
            for data, gas in zip(calldata, limits, strict=True)
        ])

    @staticmethod
    def post(rpc: RpcClient, transactions: Sequence[SignedTransaction]) -> list[RpcError | None]:
        """Sends signed transactions in one post without waiting for receipts; the node's refusal
        of each, if any."""
        results = rpc.batch([("eth_sendRawTransaction", [tx.raw]) for tx in transactions])
        return [result.error for result in results]


def _out_of_gas(error: RpcError | None) -> bool:
    """anvil: "EVM error OutOfGas", "ReentrancySentryOOG"; geth: "out of gas"."""
    if error is None:
        return False
    message = str(error).lower()
    return "outofgas" in message or "out of gas" in message or "oog" in message
