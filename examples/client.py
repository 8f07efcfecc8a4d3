"""What the examples' simulated users share: HTTP calls that fail loudly, SIWE sign-in,
consent, and sending the transactions the API prepares from the user's own wallet."""

import sys
import time
from typing import Any

import httpx
from eth_account.messages import encode_defunct
from web3 import Web3

from backend.chain.client import wallet_transaction


def check(reply: httpx.Response) -> Any:
    if reply.is_error:
        sys.exit(f"{reply.request.method} {reply.request.url} -> {reply.status_code}: {reply.text}")
    return reply.json()


def signed_in(api_url: str, account: Any) -> httpx.Client:
    api = httpx.Client(base_url=api_url, timeout=30)
    message = check(api.get("/auth/nonce", params={"address": account.address}))["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    token = check(api.post("/auth/verify", json={"message": message, "signature": signature}))
    api.headers["Authorization"] = f"Bearer {token['token']}"
    return api


def consent(api: httpx.Client, account: Any) -> None:
    typed = check(
        api.post("/consent/typed-data", json={"scopes": ["research", "commercial_ai_training"]})
    )["typed_data"]
    msg = typed["message"]
    body = {
        "terms_version": msg["termsVersion"],
        "scopes": msg["scopes"],
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "valid_until": msg["validUntil"],  # a ConsentV2 (0: no end date)
        "signature": account.sign_typed_data(full_message=typed).signature.hex(),
    }
    consent_hash = check(api.post("/consent", json=body))["consent_hash"]
    deadline = time.monotonic() + 20
    while check(api.get(f"/consent/{consent_hash}"))["status"] != "recorded":
        if time.monotonic() > deadline:
            sys.exit("consent was not recorded in 20 s; is the worker running?")
        time.sleep(0.1)


def send(w3: Web3, account: Any, tx: dict[str, Any]) -> Any:
    """Sign and send a transaction the API prepared ({to, data, value}), as a wallet would."""
    params = wallet_transaction(w3, account.address, tx["to"], tx["data"], int(tx.get("value", 0)))
    signed = account.sign_transaction(params)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    if receipt["status"] != 1:
        sys.exit(f"transaction {tx.get('description', '')} reverted")
    return receipt
