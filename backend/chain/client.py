"""web3.py client: sends operator transactions and decodes results. It decides nothing.

Transactions are signed locally with eth-account (the node never holds the key), nonces are
managed per process under a lock and re-synchronised when the node disagrees, receipts are
awaited with a deadline, and contract custom errors come back as ``ChainRevert``.
"""

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    BlockNotFound,
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)
from web3.types import BlockIdentifier, EventData, TxParams

from backend.chain.artifacts import custom_errors, load_artifact
from backend.chain.deployments import Deployments
from backend.chain.keys import operator_account
from backend.core.config import Settings
from backend.core.errors import ChainRevert, ChainUnavailable, ConfigurationError

_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ProviderConnectionError,
    ConnectionError,
    TimeoutError,
)
_NONCE_ERRORS = ("nonce too low", "nonce has already been used", "nonce too high")


@dataclass(frozen=True)
class TxResult:
    tx_hash: str
    block_number: int
    gas_used: int
    logs: list[Any]


def _revert_data(exc: Exception) -> str | None:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, (bytes, HexBytes)):
        data = "0x" + bytes(data).hex()
    return data if isinstance(data, str) and data.startswith("0x") else None


def _render_arg(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return Web3.to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def wallet_transaction(w3: Web3, sender: str, to: str, data: str, value: int = 0) -> dict[str, Any]:
    """A transaction the API prepared ({to, data, value}), completed as a wallet completes it
    before signing: nonce, gas estimate (a revert shows here), EIP-1559 fees."""
    tx: dict[str, Any] = {
        "from": sender,
        "to": Web3.to_checksum_address(to),
        "data": data,
        "value": value,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(Web3.to_checksum_address(sender)),
    }
    tx["gas"] = w3.eth.estimate_gas(cast(TxParams, tx))
    base_fee = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tx["maxPriorityFeePerGas"] = w3.eth.max_priority_fee
    tx["maxFeePerGas"] = 2 * base_fee + tx["maxPriorityFeePerGas"]
    return tx


class ChainClient:
    def __init__(self, settings: Settings, *, web3: Web3 | None = None) -> None:
        self.settings = settings
        self.w3 = web3 or Web3(
            Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.rpc_timeout_s})
        )
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None

    # --- identity -------------------------------------------------------------------------
    @cached_property
    def chain_id(self) -> int:
        return self._rpc(lambda: self.w3.eth.chain_id)

    @cached_property
    def operator(self) -> LocalAccount:
        return operator_account(self.settings, self.chain_id)

    @cached_property
    def deployments(self) -> Deployments:
        return Deployments.load(self.settings.deployments_dir, self.chain_id)

    def contract(self, name: str, address: str | None = None) -> Contract:
        artifact = load_artifact(self.settings.artifacts_dir, name)
        if address is None:
            address = self.deployments.address_of(name)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    # --- reads ----------------------------------------------------------------------------
    def call(self, fn: ContractFunction, block: BlockIdentifier = "latest") -> Any:
        return self._rpc(lambda: fn.call(block_identifier=block))

    def get_logs(self, event: Any, *, from_block: int, argument_filters: dict[str, Any]) -> list:
        return self._rpc(
            lambda: event.get_logs(from_block=from_block, argument_filters=argument_filters)
        )

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def block(self, number: int) -> Any | None:
        """The block with that number, or None if the chain has none yet."""
        try:
            return self._rpc(lambda: self.w3.eth.get_block(number))
        except BlockNotFound:
            return None

    def events_of(
        self, contract: Contract, names: Iterable[str], *, from_block: int, to_block: int
    ) -> list[EventData]:
        """The events called ``names`` that ``contract`` emitted in the block range (inclusive),
        decoded, in chain order; one RPC call whatever the number of event types."""
        wanted = set(names)
        abis: list[dict[str, Any]] = [dict(abi) for abi in contract.abi]
        by_topic = {
            event_abi_to_log_topic(cast(Any, abi)): contract.events[abi["name"]]()
            for abi in abis
            if abi.get("type") == "event" and abi["name"] in wanted
        }
        raw = self._rpc(
            lambda: self.w3.eth.get_logs(
                {"address": contract.address, "fromBlock": from_block, "toBlock": to_block}
            )
        )
        decoded = [
            by_topic[bytes(log["topics"][0])].process_log(log)
            for log in raw
            if log["topics"] and bytes(log["topics"][0]) in by_topic
        ]
        return sorted(decoded, key=lambda e: (e["blockNumber"], e["logIndex"]))

    def code_at(self, address: str) -> bytes:
        return bytes(self._rpc(lambda: self.w3.eth.get_code(Web3.to_checksum_address(address))))

    # --- writes ---------------------------------------------------------------------------
    def transact(self, fn: ContractFunction, *, gas: int | None = None) -> TxResult:
        """Sign ``fn`` with the operator key, send it, and wait for its receipt."""
        return self._send(lambda tx: fn.build_transaction(tx), gas=gas)

    def deploy(self, name: str, *args: Any) -> TxResult:
        artifact = load_artifact(self.settings.artifacts_dir, name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        return self._send(lambda tx: factory.constructor(*args).build_transaction(tx))

    def send_as(self, account: LocalAccount, *, to: str, data: str, value: int = 0) -> TxResult:
        """Sign and send a prepared transaction with someone's own key (a requester's wallet,
        in examples and tests) and wait for it; a revert raises ChainRevert like ours do."""
        tx = self._rpc(lambda: wallet_transaction(self.w3, account.address, to, data, value))
        signed = account.sign_transaction(tx)
        tx_hash = self._rpc(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
        return self._wait(tx_hash, tx)

    def _send(self, build: Any, *, gas: int | None = None) -> TxResult:
        for attempt in range(3):
            try:
                tx_hash, tx = self._sign_and_send(build, gas)
            except Web3RPCError as exc:
                if any(s in str(exc).lower() for s in _NONCE_ERRORS) and attempt < 2:
                    continue  # another sender used this nonce: resync and retry
                raise
            return self._wait(tx_hash, tx)
        raise AssertionError("unreachable")

    def _sign_and_send(self, build: Any, gas: int | None) -> tuple[bytes, dict[str, Any]]:
        with self._nonce_lock:
            nonce = self._claim_nonce()
            tx_params: dict[str, Any] = {
                "from": self.operator.address,
                "nonce": nonce,
                "chainId": self.chain_id,
            }
            if gas is not None:
                tx_params["gas"] = gas
            try:
                tx = self._rpc(lambda: build(tx_params))
                signed = self.operator.sign_transaction(tx)
                tx_hash = self._rpc(
                    lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction)
                )
            except Exception:
                self._next_nonce = None  # nothing was sent, or we cannot tell: resync
                raise
            self._next_nonce = nonce + 1
            return tx_hash, tx

    def _claim_nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = self._rpc(
                lambda: self.w3.eth.get_transaction_count(self.operator.address, "pending")
            )
        return self._next_nonce

    def _wait(self, tx_hash: bytes, tx: dict[str, Any]) -> TxResult:
        try:
            receipt = self._rpc(
                lambda: self.w3.eth.wait_for_transaction_receipt(
                    HexBytes(tx_hash), timeout=self.settings.tx_receipt_timeout_s, poll_latency=0.05
                )
            )
        except TimeExhausted as exc:
            raise ChainUnavailable(
                f"transaction 0x{bytes(tx_hash).hex()} was not mined within "
                f"{self.settings.tx_receipt_timeout_s:.0f} s"
            ) from exc
        result = TxResult(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            logs=list(receipt["logs"]),
        )
        if receipt["status"] != 1:
            # Replay the call at that block to learn which custom error it raised.
            replay = cast(TxParams, {k: tx[k] for k in ("from", "to", "data", "value") if k in tx})
            try:
                self.w3.eth.call(replay, receipt["blockNumber"] - 1)
            except Exception as exc:
                raise self._as_domain_error(exc, tx_hash=result.tx_hash) from exc
            raise ChainRevert("UnknownRevert", {}, tx_hash=result.tx_hash)
        return result

    # --- error translation ----------------------------------------------------------------
    def _rpc(self, thunk: Any) -> Any:
        try:
            return thunk()
        except _CONNECTION_ERRORS as exc:
            raise ChainUnavailable(f"chain node at {self.settings.rpc_url} is unreachable") from exc
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._as_domain_error(exc) from exc

    def _as_domain_error(self, exc: Exception, *, tx_hash: str | None = None) -> Exception:
        if isinstance(exc, ChainRevert | ChainUnavailable):
            return exc
        data = _revert_data(exc)
        if data and len(data) >= 10:
            raw = bytes.fromhex(data[2:])
            spec = custom_errors(Path(self.settings.artifacts_dir)).get(raw[:4])
            if spec is not None:
                values = abi_decode(list(spec.arg_types), raw[4:])
                args = {
                    n: _render_arg(t, v)
                    for n, t, v in zip(spec.arg_names, spec.arg_types, values, strict=True)
                }
                return ChainRevert(spec.name, args, tx_hash=tx_hash)
        if isinstance(exc, ContractLogicError):
            return ChainRevert("Revert", {"message": str(exc.message)}, tx_hash=tx_hash)
        return exc


def require_deployed(client: ChainClient, name: str) -> str:
    address = client.deployments.address_of(name)
    if not client.code_at(address):
        raise ConfigurationError(
            f"{name} has no code at {address} on chain {client.chain_id}; run `provenant deploy`"
        )
    return address
