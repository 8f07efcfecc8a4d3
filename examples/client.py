"""What the examples' simulated users share: HTTP calls that fail loudly, SIWE sign-in,
consent and its revocation, and sending the transactions the API prepares from the user's
own wallet."""

import sys
import time
from collections.abc import Sequence
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


def consent(
    api: httpx.Client,
    account: Any,
    scopes: Sequence[str] = ("research", "commercial_ai_training"),
) -> str:
    """Sign and submit a consent for ``scopes``; wait until it is on chain; return its hash."""
    typed = check(api.post("/consent/typed-data", json={"scopes": list(scopes)}))["typed_data"]
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
    return consent_hash


def revoke(api: httpx.Client, account: Any, consent_hash: str) -> dict[str, Any]:
    """Sign and submit the revocation of a consent; wait until it is on chain; return the
    consent as the API shows it (its ``revocation`` has the transaction and the time)."""
    typed = check(api.post(f"/consent/{consent_hash}/revoke/typed-data"))["typed_data"]
    body = {
        "nonce": typed["message"]["nonce"],
        "deadline": typed["message"]["deadline"],
        "signature": account.sign_typed_data(full_message=typed).signature.hex(),
    }
    check(api.post(f"/consent/{consent_hash}/revoke", json=body))
    deadline = time.monotonic() + 20
    while (row := check(api.get(f"/consent/{consent_hash}")))["revocation"]["status"] != "recorded":
        if row["revocation"]["status"] == "failed" or time.monotonic() > deadline:
            sys.exit(f"revocation of {consent_hash} was not recorded: {row['revocation']}")
        time.sleep(0.1)
    return row


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
