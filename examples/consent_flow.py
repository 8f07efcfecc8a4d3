"""Sign in with a fresh Ethereum account, consent on chain with an end date, then revoke — as
a client would.

The client side uses only eth-account and an HTTP client (httpx); web3 is used at the end
to read ConsentRegistry directly, as an auditor would, instead of trusting the API.

    python examples/consent_flow.py [--api http://127.0.0.1:8000] [--rpc http://127.0.0.1:8545]
        [--until 2028-12-31 | --until none]
"""

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
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
    parser.add_argument(
        "--until",
        default=(date.today() + timedelta(days=365)).isoformat(),
        help="the consent's end date (ISO date: usable until 23:59:59 UTC that day), or 'none'",
    )
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

    # 2. Consent: read the terms, sign the EIP-712 typed data (a ConsentV2, with the end date
    # if one is asked for), submit; the operator relays it.
    terms = check(api.get("/consent/terms"))[-1]
    print(f"terms v{terms['version']}: {terms['title']} (royalty {terms['royalty_bps'] / 100}%)")
    request: dict = {"scopes": ["research", "commercial_ai_training"]}
    if args.until != "none":
        request["valid_until"] = args.until
    prepared = check(api.post("/consent/typed-data", json=request))
    typed = prepared["typed_data"]
    fields = typed["message"]
    assert typed["primaryType"] == "ConsentV2"
    assert fields["contributor"] == account.address
    assert fields["termsHash"] == terms["terms_hash"]
    end = fields["validUntil"]  # unix seconds; 0 = no end date
    if end:
        print(f"end date: usable until {datetime.fromtimestamp(end, UTC).isoformat()} ({end})")
    else:
        print("no end date: in force until revoked")
    signed = account.sign_typed_data(full_message=typed)
    consent = check(
        api.post(
            "/consent",
            json={
                "terms_version": fields["termsVersion"],
                "scopes": fields["scopes"],
                "nonce": fields["nonce"],
                "deadline": fields["deadline"],
                # The signed message's validUntil: it says the signature is over a ConsentV2.
                "valid_until": end,
                "signature": signed.signature.hex(),
            },
        )
    )
    consent_hash = consent["consent_hash"]
    print(
        f"consent {consent_hash} submitted: {consent['status']} "
        f"(typed data v{consent['typed_version']}, valid until {consent['valid_until']})"
    )
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
    record = _record(registry, consent_hash)
    assert record["validUntil"] == end
    print(f"ConsentRegistry at {recorded['registry']} confirms: consent active")
    if end:
        # In force up to and including its last second, for every scope it was given.
        in_force_at = registry.functions.consentInForceAt
        assert in_force_at(consent_hash, end, fields["scopes"]).call() is True
        assert in_force_at(consent_hash, end + 1, fields["scopes"]).call() is False
        print(f"and in force until {end}, not a second later (consentInForceAt)")

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
    assert _record(registry, consent_hash)["revokedAt"] > 0
    print("ConsentRegistry confirms: consent revoked")


def _record(registry, consent_hash: str) -> dict:
    """ConsentRegistry's ConsentRecord by field name (web3 returns the struct as a tuple)."""
    fn = registry.functions.consentRecord(consent_hash)
    names = [c["name"] for c in fn.abi["outputs"][0]["components"]]
    return dict(zip(names, fn.call(), strict=True))


if __name__ == "__main__":
    main()
