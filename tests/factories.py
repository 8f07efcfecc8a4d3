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
    client: TestClient,
    headers: dict[str, str],
    scopes: list[str] | None = None,
    valid_until: int | str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"scopes": scopes or ["research", "commercial_ai_training"]}
    if valid_until is not None:
        body["valid_until"] = valid_until
    reply = client.post("/consent/typed-data", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()["typed_data"]


def consent_body(typed: dict[str, Any], signer: LocalAccount) -> dict[str, Any]:
    """The submit body for ``typed`` (a Consent or a ConsentV2) signed by ``signer``."""
    msg = typed["message"]
    body = {
        "terms_version": msg["termsVersion"],
        "scopes": msg["scopes"],
        "nonce": msg["nonce"],
        "deadline": msg["deadline"],
        "signature": signer.sign_typed_data(full_message=typed).signature.hex(),
    }
    if "validUntil" in msg:
        body["valid_until"] = msg["validUntil"]
    return body


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


def consenting_contributor(client: TestClient, chain: Any) -> tuple[LocalAccount, dict[str, str]]:
    """A signed-in contributor whose consent is already recorded on chain."""
    from sqlmodel import Session

    from backend.consent import service
    from backend.consent.models import RelayAction
    from backend.core.db import get_engine

    account = new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    with Session(get_engine()) as session:
        row = service.get_owned_consent(
            session=session, contributor=account.address, consent_hash=consent["consent_hash"]
        )
        assert row.id is not None
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    return account, headers


def project_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST /projects body, with ``overrides``."""
    return {
        "task_type": "text_classification",
        "title": "Sentiment",
        "instructions": "Is the review positive or negative?",
        "label_schema": {"classes": ["positive", "negative"]},
        "overlap": 3,
        "reward_per_answer": 10**16,
        "gold_rate": 0.0,
        **overrides,
    }


def create_project(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    reply = client.post("/projects", json=project_body(**overrides), headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


def upload_text(
    client: TestClient, headers: dict[str, str], project_id: int, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    import json

    data = "\n".join(json.dumps(r) for r in rows).encode()
    reply = client.post(
        f"/projects/{project_id}/items/text",
        files={"file": ("items.jsonl", data, "application/x-ndjson")},
        headers=headers,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def png_bytes(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def recorded_consent_row(session: Any, address: str) -> str:
    """Store a consent as already recorded, for tests about assignment rather than consent."""
    import secrets

    from backend.consent.models import Consent, RelayStatus
    from backend.consent.terms import current_terms
    from backend.core.time import utcnow

    terms = current_terms()
    consent_hash = "0x" + secrets.token_hex(32)
    now = utcnow()
    session.add(
        Consent(
            consent_hash=consent_hash,
            contributor=address,
            terms_version=terms.version,
            terms_hash=terms.terms_hash,
            scopes=3,
            royalty_bps=terms.royalty_bps,
            nonce=0,
            deadline=2**40,
            signature="0x" + "00" * 65,
            status=RelayStatus.recorded,
            tx_hash="0x" + "00" * 32,
            block_number=1,
            recorded_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    session.commit()
    return consent_hash


def give_eth(chain: Any, address: str, ether: int = 10) -> None:
    """Gas money for an account that sends its own transactions (Hardhat's test RPC)."""
    reply = chain.w3.provider.make_request("hardhat_setBalance", [address, hex(ether * 10**18)])
    assert "error" not in reply, reply


def mint_test_tokens(chain: Any, to: str, amount: int) -> None:
    token = chain.contract("TestRewardToken")
    chain.transact(token.functions.mint(to, amount))


def token_balance(chain: Any, address: str) -> int:
    return int(chain.contract("TestRewardToken").functions.balanceOf(address).call())


def send_prepared(chain: Any, account: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign and send a transaction the API prepared, as the account's own wallet would."""
    return chain.send_as(account, to=tx["to"], data=tx["data"], value=int(tx.get("value", 0)))


def fund_project(
    client: TestClient,
    chain: Any,
    requester: LocalAccount,
    headers: dict[str, str],
    project_id: int,
    amount: int,
) -> None:
    """Mint test tokens to the requester, then approve + deposit from their own account."""
    give_eth(chain, requester.address)
    mint_test_tokens(chain, requester.address, amount)
    plan = client.post(f"/projects/{project_id}/funding", json={"amount": amount}, headers=headers)
    assert plan.status_code == 200, plan.text
    for tx in plan.json()["transactions"]:
        send_prepared(chain, requester, tx)
