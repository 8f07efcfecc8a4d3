"""Builders for test actors: fresh accounts, signed-in clients, signed consents."""

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient


def new_account() -> LocalAccount:
    return Account.create()


def sign_in(client: TestClient, account: LocalAccount) -> dict[str, str]:
    """Sign in with SIWE; return the Authorization header for the session."""
    nonce = client.get("/auth/nonce", params={"address": account.address}).json()
    message = nonce["message"]
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    reply = client.post("/auth/verify", json={"message": message, "signature": signature})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def consent_typed_data(
    client: TestClient, headers: dict[str, str], scopes: list[str] | None = None
) -> dict[str, Any]:
    reply = client.post(
        "/consent/typed-data",
        json={"scopes": scopes or ["research", "commercial_ai_training"]},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["typed_data"]


def consent_body(typed: dict[str, Any], signer: LocalAccount) -> dict[str, Any]:
    """The submit body for ``typed`` signed by ``signer``."""
    msg = typed["message"]
    return {
        "terms_version": msg["termsVersion"],
        "scopes": msg["scopes"],
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "signature": signer.sign_typed_data(full_message=typed).signature.hex(),
    }


def submit_consent(
    client: TestClient, account: LocalAccount, headers: dict[str, str]
) -> dict[str, Any]:
    typed = consent_typed_data(client, headers)
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 202, reply.text
    return reply.json()


def revocation_body(typed: dict[str, Any], signer: LocalAccount) -> dict[str, Any]:
    msg = typed["message"]
    return {
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "signature": signer.sign_typed_data(full_message=typed).signature.hex(),
    }
