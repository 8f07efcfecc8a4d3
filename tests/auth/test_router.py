from datetime import timedelta

import pytest
from eth_account.messages import encode_defunct
from sqlmodel import select

from backend.auth.models import AuthSession, SiweNonce
from backend.core.siwe import SiweMessage, parse_message
from backend.core.time import utcnow
from tests.factories import new_account, sign_in


def _prepared(client, account):
    nonce = client.get("/auth/nonce", params={"address": account.address}).json()
    return nonce, parse_message(nonce["message"])


def _verify(client, account, message: SiweMessage | str, signer=None):
    text = message if isinstance(message, str) else message.to_text()
    signature = (signer or account).sign_message(encode_defunct(text=text)).signature.hex()
    return client.post("/auth/verify", json={"message": text, "signature": signature})


def test_sign_in_opens_a_session(client):
    account = new_account()
    headers = sign_in(client, account)
    me = client.get("/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json() == {"address": account.address}


def test_nonce_describes_the_service(client, chain):
    body = client.get("/auth/nonce").json()
    assert body["domain"] == "localhost:8000"
    assert body["chain_id"] == chain.chain_id == 31337
    assert body["message"] is None
    assert len(body["nonce"]) >= 8


def test_nonce_rejects_a_bad_address(client):
    reply = client.get("/auth/nonce", params={"address": "0x123"})
    assert reply.status_code == 400
    assert "not an Ethereum address" in reply.json()["detail"]


def test_wrong_signature_is_refused(client):
    account, mallory = new_account(), new_account()
    _, message = _prepared(client, account)
    reply = _verify(client, account, message, signer=mallory)
    assert reply.status_code == 401
    assert reply.json() == {
        "type": "Unauthorized",
        "detail": f"signature is not from {account.address}",
    }


def test_malformed_signature_is_a_bad_request(client):
    account = new_account()
    nonce, _ = _prepared(client, account)
    reply = client.post("/auth/verify", json={"message": nonce["message"], "signature": "0xdead"})
    assert reply.status_code == 400
    assert "signature is malformed" in reply.json()["detail"]


def test_replayed_nonce_is_refused(client):
    account = new_account()
    _, message = _prepared(client, account)
    assert _verify(client, account, message).status_code == 200
    replay = _verify(client, account, message)
    assert replay.status_code == 401
    assert "already been used" in replay.json()["detail"]


def test_unknown_nonce_is_refused(client):
    account = new_account()
    _, message = _prepared(client, account)
    forged = SiweMessage(**{**message.__dict__, "nonce": "neverissued0000"})
    reply = _verify(client, account, forged)
    assert reply.status_code == 401
    assert "not issued by this service" in reply.json()["detail"]


def test_expired_nonce_is_refused(client, session):
    account = new_account()
    nonce, message = _prepared(client, account)
    row = session.exec(select(SiweNonce).where(SiweNonce.nonce == nonce["nonce"])).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    # The message itself carries no expiry, so only the nonce's own TTL can refuse it.
    fresh = SiweMessage(**{**message.__dict__, "expiration_time": None})
    reply = _verify(client, account, fresh)
    assert reply.status_code == 401
    assert "nonce has expired" in reply.json()["detail"]


def test_expired_message_is_refused(client):
    account = new_account()
    _, message = _prepared(client, account)
    past = utcnow() - timedelta(minutes=1)
    expired = SiweMessage(
        **{**message.__dict__, "expiration_time": past, "issued_at": past - timedelta(minutes=1)}
    )
    reply = _verify(client, account, expired)
    assert reply.status_code == 401
    assert "message expired at" in reply.json()["detail"]


def test_message_issued_too_long_ago_is_refused(client):
    account = new_account()
    _, message = _prepared(client, account)
    old = SiweMessage(**{**message.__dict__, "issued_at": utcnow() - timedelta(hours=2)})
    reply = _verify(client, account, old)
    assert reply.status_code == 401
    assert "too long ago" in reply.json()["detail"]


def test_message_not_yet_valid_is_refused(client):
    account = new_account()
    _, message = _prepared(client, account)
    later = SiweMessage(**{**message.__dict__, "not_before": utcnow() + timedelta(hours=1)})
    reply = _verify(client, account, later)
    assert reply.status_code == 401
    assert "not valid before" in reply.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("domain", "evil.example", "is for domain 'evil.example'"),
        ("uri", "https://evil.example/login", "is not under"),
        ("chain_id", 1, "is for chain 1"),
    ],
)
def test_message_for_another_service_is_refused(client, field, value, reason):
    account = new_account()
    _, message = _prepared(client, account)
    other = SiweMessage(**{**message.__dict__, field: value})
    reply = _verify(client, account, other)
    assert reply.status_code == 401
    assert reason in reply.json()["detail"]


def test_malformed_message_is_a_bad_request(client):
    account = new_account()
    reply = _verify(client, account, "not a sign-in message at all")
    assert reply.status_code == 400
    assert reply.json()["type"] == "BadRequest"
    assert "invalid sign-in message" in reply.json()["detail"]


def test_refused_sign_in_leaves_the_nonce_usable(client):
    account, mallory = new_account(), new_account()
    _, message = _prepared(client, account)
    assert _verify(client, account, message, signer=mallory).status_code == 401
    assert _verify(client, account, message).status_code == 200


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing Authorization header"),
        ("Token abc", "must be 'Bearer <token>'"),
        ("Bearer ", "must be 'Bearer <token>'"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer not-a-real-token", "not valid"),
    ],
)
def test_protected_routes_need_a_live_session(client, header, reason):
    headers = {"Authorization": header} if header else {}
    reply = client.get("/auth/me", headers=headers)
    assert reply.status_code == 401
    assert reason in reply.json()["detail"]


def test_openapi_documents_the_bearer_session_on_protected_routes(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["session"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the token that POST /auth/verify returns",
    }
    assert spec["paths"]["/tasks/{task_id}/answer-and-next"]["post"]["security"] == [
        {"session": []}
    ]
    assert "security" not in spec["paths"]["/auth/nonce"]["get"]


def test_logout_ends_the_session(client):
    headers = sign_in(client, new_account())
    assert client.get("/auth/me", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_an_expired_session_is_refused_on_every_path(client, session):
    """Expiry is read with the session row on each request: through FastAPI's dependency and,
    on PostgreSQL, on the loop's asyncpg path (aware datetimes either way)."""
    account = new_account()
    headers = sign_in(client, account)
    assert client.get("/auth/me", headers=headers).status_code == 200
    row = session.exec(select(AuthSession).where(AuthSession.address == account.address)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.add(row)
    session.commit()
    for reply in (
        client.get("/auth/me", headers=headers),
        client.post("/projects/1/tasks/next", headers=headers),
    ):
        assert reply.status_code == 401
        assert reply.json()["detail"] == "session has expired; sign in again"
