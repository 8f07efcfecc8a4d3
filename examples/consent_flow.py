"""Sign in with a fresh Ethereum account, consent on chain, then revoke — as a client would.

The client side uses only eth-account and an HTTP client (httpx); web3 is used at the end
to read ConsentRegistry directly, as an auditor would, instead of trusting the API.

    python examples/consent_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

ARTIFACT = (
    Path(__file__).resolve().parents[1]
    / "artifacts/contracts/consent/ConsentRegistry.sol/ConsentRegistry.json"
)


def check(reply: httpx.Response) -> dict:
    if reply.is_error:
        sys.exit(f"{reply.request.method} {reply.request.url} -> {reply.status_code}: {reply.text}")
    return reply.json()


def wait_for(api: httpx.Client, path: str, done, deadline_s: float = 10.0) -> tuple[dict, float]:
    start = time.monotonic()
    while True:
        body = check(api.get(path))
        if done(body):
            return body, time.monotonic() - start
        if time.monotonic() - start > deadline_s:
            sys.exit(f"not done after {deadline_s} s: {json.dumps(body, indent=2)}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545")
    args = parser.parse_args()

    account = Account.create()
    print(f"contributor: {account.address} (fresh key, never sent anywhere)")
    api = httpx.Client(base_url=args.api, timeout=30)

    # 1. Sign-In with Ethereum: the server prepares the EIP-4361 message; we check and sign it.
    nonce = check(api.get("/auth/nonce", params={"address": account.address}))
    message = nonce["message"]
    assert f"\n{account.address}\n" in message and f"Nonce: {nonce['nonce']}" in message
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    session = check(api.post("/auth/verify", json={"message": message, "signature": signature}))
    api.headers["Authorization"] = f"Bearer {session['token']}"
    print(f"signed in; session expires {session['expires_at']}")

    # 2. Consent: read the terms, sign the EIP-712 typed data, submit; the operator relays it.
    terms = check(api.get("/consent/terms"))[-1]
    print(f"terms v{terms['version']}: {terms['title']} (royalty {terms['royalty_bps'] / 100}%)")
    prepared = check(
        api.post("/consent/typed-data", json={"scopes": ["research", "commercial_ai_training"]})
    )
    typed = prepared["typed_data"]
    assert typed["message"]["contributor"] == account.address
    assert typed["message"]["termsHash"] == terms["terms_hash"]
    signed = account.sign_typed_data(full_message=typed)
    fields = typed["message"]
    consent = check(
        api.post(
            "/consent",
            json={
                "terms_version": fields["termsVersion"],
                "scopes": fields["scopes"],
                "nonce": fields["nonce"],
                "deadline": fields["deadline"],
                "signature": signed.signature.hex(),
            },
        )
    )
    consent_hash = consent["consent_hash"]
    print(f"consent {consent_hash} submitted: {consent['status']}")
    recorded, took = wait_for(api, f"/consent/{consent_hash}", lambda b: b["status"] != "pending")
    if recorded["status"] != "recorded":
        sys.exit(f"consent was not recorded: {recorded}")
    print(
        f"consent recorded on chain in {took:.2f} s: tx {recorded['tx_hash']} "
        f"(block {recorded['block_number']})"
    )

    # 3. Check the chain itself, not the API's word for it.
    w3 = Web3(Web3.HTTPProvider(args.rpc))
    registry = w3.eth.contract(
        address=recorded["registry"], abi=json.loads(ARTIFACT.read_text())["abi"]
    )
    assert registry.functions.isConsentActive(consent_hash).call() is True
    assert registry.functions.activeConsentOf(account.address).call().hex() == consent_hash[2:]
    receipt = w3.eth.get_transaction_receipt(recorded["tx_hash"])
    assert receipt["status"] == 1
    print(f"ConsentRegistry at {recorded['registry']} confirms: consent active")

    # 4. Revoke the same way.
    prepared = check(api.post(f"/consent/{consent_hash}/revoke/typed-data"))
    signed = account.sign_typed_data(full_message=prepared["typed_data"])
    fields = prepared["typed_data"]["message"]
    check(
        api.post(
            f"/consent/{consent_hash}/revoke",
            json={
                "nonce": fields["nonce"],
                "deadline": fields["deadline"],
                "signature": signed.signature.hex(),
            },
        )
    )
    revoked, took = wait_for(
        api, f"/consent/{consent_hash}", lambda b: b["revocation"]["status"] != "pending"
    )
    if revoked["revocation"]["status"] != "recorded":
        sys.exit(f"revocation was not recorded: {revoked}")
    print(f"revocation recorded in {took:.2f} s: tx {revoked['revocation']['tx_hash']}")
    assert registry.functions.isConsentActive(consent_hash).call() is False
    assert int(registry.functions.consentRecord(consent_hash).call()[5]) > 0
    print("ConsentRegistry confirms: consent revoked")


if __name__ == "__main__":
    main()
