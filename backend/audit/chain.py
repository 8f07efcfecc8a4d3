"""What the verifier reads from the chain, over plain JSON-RPC: no database, no API of ours.

Only the view functions and the one event it needs, with their ABIs written out here (an
auditor needs no build of the contracts). Every call is retried on a transport error, and
logs are read in pages of at most ``max_blocks`` blocks, halving a page the node refuses
(public RPCs cap log ranges and result sizes).
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3

T = TypeVar("T")

_VERSION_FIELDS = (
    ("uint256", "projectId"),
    ("uint32", "version"),
    ("address", "requester"),
    ("address", "token"),
    ("uint256", "price"),
    ("bytes32", "manifestHash"),
    ("bytes32", "itemRoot"),
    ("bytes32", "weightRoot"),
    ("uint256", "totalWeight"),
    ("bytes32", "termsHash"),
    ("uint16", "feeBps"),
    ("uint16", "requesterBps"),
    ("uint16", "poolBps"),
    ("bool", "withdrawn"),
    ("uint64", "registeredAt"),
    ("uint256", "pool"),
    ("uint256", "paid"),
)
_CONSENT_FIELDS = (
    ("address", "contributor"),
    ("uint32", "termsVersion"),
    ("uint64", "scopes"),
    ("uint16", "royaltyBps"),
    ("uint64", "recordedAt"),
    ("uint64", "revokedAt"),
    ("uint64", "validUntil"),
    ("bytes32", "termsHash"),
)


_CONSENT_TUPLE = "(" + ",".join(t for t, _ in _CONSENT_FIELDS) + ")"


def _tuple_output(fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {
        "type": "tuple",
        "name": "",
        "components": [{"type": t, "name": n} for t, n in fields],
    }


def _view(name: str, inputs: list[str], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [{"type": t, "name": f"a{i}"} for i, t in enumerate(inputs)],
        "outputs": outputs,
    }


MARKETPLACE_ABI = [
    _view("version", ["uint256"], [_tuple_output(_VERSION_FIELDS)]),
    _view("escrow", [], [{"type": "address", "name": ""}]),
]
CONSENT_ABI = [_view("consentRecord", ["bytes32"], [_tuple_output(_CONSENT_FIELDS)])]
PROVENANCE_ABI = [_view("rootOf", ["uint256"], [{"type": "bytes32", "name": ""}])]
BATCH_ANCHORED = "0x" + keccak(text="BatchAnchored(uint256,bytes32,uint32,bytes32)").hex()


class ChainReadError(RuntimeError):
    """A read failed; the message names the call. ``transport``: the node did not answer
    (after the retries), as opposed to answering with an error (a range too wide, say)."""

    def __init__(self, message: str, *, transport: bool) -> None:
        super().__init__(message)
        self.transport = transport


@dataclass(frozen=True)
class Anchoring:
    batch_id: int
    root: str
    block_number: int
    timestamp: int


class ChainReader:
    def __init__(
        self,
        rpc_url: str,
        *,
        retries: int = 4,
        max_blocks: int = 10_000,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_blocks < 1:  # a page of no blocks would never advance
            raise ValueError(f"max_blocks is at least 1, not {max_blocks}")
        self.rpc_url = rpc_url
        self.timeout_s = timeout_s
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
        self.retries = retries
        self.max_blocks = max_blocks
        self._sleep = sleep
        self.calls = 0
        self.block: int | str = "latest"  # the block every view call reads (pin_latest)

    def pin_latest(self) -> int:
        """Read every later view call at the current latest block, so one verification sees
        one state of the chain however long it runs."""
        self.block = self.latest_block()
        return self.block

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with backoff when the transport fails (requests' errors are
        OSErrors); an error the node answers with is not retried."""
        delay = 0.25
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return fn()
            except (OSError, TimeoutError) as exc:
                if attempt == self.retries:
                    raise ChainReadError(
                        f"{what} at {self.rpc_url}: {exc}", transport=True
                    ) from exc
            except Exception as exc:
                raise ChainReadError(f"{what} at {self.rpc_url}: {exc}", transport=False) from exc
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def chain_id(self) -> int:
        return self._retry("eth_chainId", lambda: int(self.w3.eth.chain_id))

    def has_code(self, address: str) -> bool:
        code = self._retry(
            f"eth_getCode {address}", lambda: self.w3.eth.get_code(to_checksum_address(address))
        )
        return len(code) > 0

    def latest_block(self) -> int:
        return self._retry("eth_blockNumber", lambda: int(self.w3.eth.block_number))

    def block_time(self, number: int) -> int:
        block = self._retry(f"eth_getBlockByNumber {number}", lambda: self.w3.eth.get_block(number))
        return int(block["timestamp"])

    def _call(self, fn: Any) -> Callable[[], Any]:
        return lambda: fn.call(block_identifier=self.block)

    def _contract(self, address: str, abi: list[dict[str, Any]]) -> Any:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    def version(self, marketplace: str, version_id: int) -> dict[str, Any]:
        fn = self._contract(marketplace, MARKETPLACE_ABI).functions.version(version_id)
        raw = self._retry(f"DatasetMarketplace.version({version_id})", self._call(fn))
        return {name: _plain(v) for (_, name), v in zip(_VERSION_FIELDS, raw, strict=True)}

    def marketplace_escrow(self, marketplace: str) -> str:
        fn = self._contract(marketplace, MARKETPLACE_ABI).functions.escrow()
        return str(self._retry("DatasetMarketplace.escrow()", self._call(fn)))

    def consent(self, registry: str, consent_hash: str) -> dict[str, Any]:
        contract = self._contract(registry, CONSENT_ABI)
        fn = contract.functions.consentRecord(bytes.fromhex(consent_hash[2:]))
        raw = self._retry(f"ConsentRegistry.consentRecord({consent_hash})", self._call(fn))
        return {name: _plain(v) for (_, name), v in zip(_CONSENT_FIELDS, raw, strict=True)}

    def consents(
        self, registry: str, consent_hashes: Iterable[str], *, per_request: int = 100
    ) -> dict[str, dict[str, Any]]:
        """``consentRecord`` of many consents, ``per_request`` eth_calls to one JSON-RPC batch
        request (a node answers a batch in about the time of one call: 2,000 consents took
        15 s one call at a time). A node that refuses batches is asked one call at a time."""
        hashes = list(consent_hashes)
        contract = self._contract(registry, CONSENT_ABI)
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(hashes), per_request):
            chunk = hashes[start : start + per_request]
            calls = [
                {
                    "to": contract.address,
                    "data": contract.encode_abi("consentRecord", args=[bytes.fromhex(h[2:])]),
                }
                for h in chunk
            ]
            answers = self._batch_calls(f"consentRecord x{len(chunk)}", calls)
            if answers is None:  # no batches here: one call at a time
                for h in chunk:
                    out[h] = self.consent(registry, h)
                continue
            for h, data in zip(chunk, answers, strict=True):
                (raw,) = abi_decode([_CONSENT_TUPLE], data)
                out[h] = {n: _plain(v) for (_, n), v in zip(_CONSENT_FIELDS, raw, strict=True)}
        return out

    def _batch_calls(self, what: str, calls: list[dict[str, Any]]) -> list[bytes] | None:
        """The results of ``calls`` (eth_call) sent as one batch, in order; None if the node
        does not take batches."""
        block = hex(self.block) if isinstance(self.block, int) else self.block
        body = [
            {"jsonrpc": "2.0", "id": i, "method": "eth_call", "params": [call, block]}
            for i, call in enumerate(calls)
        ]

        def post() -> Any:
            reply = httpx.post(self.rpc_url, json=body, timeout=self.timeout_s)
            reply.raise_for_status()
            return reply.json()

        try:
            answer = self._retry(f"a batch of {what}", post)
        except ChainReadError as exc:
            if exc.transport:
                raise
            return None
        if not isinstance(answer, list) or len(answer) != len(calls):
            return None
        by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
        results = []
        for i in range(len(calls)):
            item = by_id.get(i, {})
            if "result" not in item:
                raise ChainReadError(
                    f"{what} at {self.rpc_url}: call {i}: {item.get('error')}", transport=False
                )
            results.append(bytes.fromhex(str(item["result"])[2:]))
        return results

    def root_of(self, registry: str, batch_id: int) -> str:
        fn = self._contract(registry, PROVENANCE_ABI).functions.rootOf(batch_id)
        return str(_plain(self._retry(f"ProvenanceRegistry.rootOf({batch_id})", self._call(fn))))

    def anchorings(self, registry: str, batch_ids: Iterable[int]) -> dict[int, Anchoring]:
        """The BatchAnchored event of each batch asked for, with its block's time, read in
        pages from block 0 to the latest."""
        wanted = set(batch_ids)
        found: dict[int, Anchoring] = {}
        latest = self.block if isinstance(self.block, int) else self.latest_block()
        start, span = 0, self.max_blocks
        address = to_checksum_address(registry)
        while start <= latest and len(found) < len(wanted):
            end = min(latest, start + span - 1)
            params = {
                "address": address,
                "fromBlock": start,
                "toBlock": end,
                "topics": [BATCH_ANCHORED],
            }
            try:
                logs = self._retry(
                    f"eth_getLogs BatchAnchored blocks {start}-{end}",
                    lambda params=params: self.w3.eth.get_logs(params),  # type: ignore[misc]
                )
            except ChainReadError as exc:
                if exc.transport or span == 1:
                    raise
                span = max(1, span // 2)  # the node refused the range: ask for less
                continue
            times: dict[int, int] = {}
            for log in logs:
                batch_id = int.from_bytes(bytes(log["topics"][1]), "big")
                if batch_id not in wanted or batch_id in found:
                    continue
                number = int(log["blockNumber"])
                if number not in times:
                    times[number] = self.block_time(number)
                found[batch_id] = Anchoring(
                    batch_id, "0x" + bytes(log["topics"][2]).hex(), number, times[number]
                )
            start = end + 1
        return found


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value
