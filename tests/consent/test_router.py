import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest
from sqlmodel import select

from backend.consent import router as consent_router
from backend.consent import service
from backend.consent import terms as terms_mod
from backend.consent.models import Consent, RelayAction
from backend.consent.typed_data import digest
from tests.consent.helpers import as_version_1
from tests.factories import (
    consent_body,
    consent_typed_data,
    new_account,
    revocation_body,
    sign_in,
    submit_consent,
)


def test_terms_are_published_with_their_hash(client):
    terms = client.get("/consent/terms").json()
    current = terms[-1]
    assert current["version"] == terms_mod.current_terms().version
    assert current["terms_hash"] == terms_mod.current_terms().terms_hash
    assert {s["name"] for s in current["scopes"]} == {"research", "commercial_ai_training"}


def test_typed_data_binds_caller_terms_chain_and_registry(client, chain):
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers, scopes=["research"])
    assert typed["primaryType"] == "ConsentV2"
    assert typed["domain"] == {
        "name": "Provenant ConsentRegistry",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": chain.deployments.address_of("ConsentRegistry"),
    }
    msg = typed["message"]
    assert msg["contributor"] == account.address
    assert msg["scopes"] == 1
    assert msg["nonce"] == 0
    assert msg["termsHash"] == terms_mod.current_terms().terms_hash
    assert msg["deadline"] > time.time()
    assert msg["validUntil"] == 0  # no end date asked for


def test_typed_data_needs_a_session(client):
    reply = client.post("/consent/typed-data", json={"scopes": ["research"]})
    assert reply.status_code == 401


def test_unknown_or_empty_scopes_are_named(client):
    headers = sign_in(client, new_account())
    reply = client.post("/consent/typed-data", json={"scopes": ["marketing"]}, headers=headers)
    assert reply.status_code == 400
    assert "unknown scope 'marketing'" in reply.json()["detail"]
    reply = client.post("/consent/typed-data", json={"scopes": []}, headers=headers)
    assert reply.status_code == 400
    assert "at least one scope" in reply.json()["detail"]


def test_unknown_terms_version_is_404(client):
    headers = sign_in(client, new_account())
    reply = client.post(
        "/consent/typed-data", json={"scopes": ["research"], "terms_version": 99}, headers=headers
    )
    assert reply.status_code == 404
    assert "no terms version 99" in reply.json()["detail"]


def test_submitted_consent_is_pending_until_relayed(client):
    account = new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    assert consent["status"] == "pending"
    assert consent["contributor"] == account.address
    assert consent["scopes"] == ["research", "commercial_ai_training"]
    status = client.get("/consent", headers=headers).json()
    assert status["active"] is None
    assert [c["consent_hash"] for c in status["history"]] == [consent["consent_hash"]]


def test_consent_hash_is_the_eip712_digest(client):
    from backend.consent.typed_data import digest

    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.json()["consent_hash"] == digest(typed)


def test_signature_by_another_account_is_rejected(client):
    account, mallory = new_account(), new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    reply = client.post("/consent", json=consent_body(typed, mallory), headers=headers)
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "InvalidSignature"
    assert f"not {account.address}'s signature" in body["detail"]
    assert client.get("/consent", headers=headers).json()["history"] == []


def test_someone_cannot_submit_their_signature_as_another_account(client):
    # Mallory signs in as herself but submits a consent signed for Alice's typed data.
    alice, mallory = new_account(), new_account()
    alice_headers = sign_in(client, alice)
    typed = consent_typed_data(client, alice_headers)
    mallory_headers = sign_in(client, mallory)
    reply = client.post("/consent", json=consent_body(typed, alice), headers=mallory_headers)
    assert reply.status_code == 400
    assert reply.json()["type"] == "InvalidSignature"


def test_changed_terms_fields_break_the_signature(client):
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers, scopes=["research"])
    body = consent_body(typed, account)
    body["scopes"] = 3  # claim more than was signed
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 400
    assert reply.json()["type"] == "InvalidSignature"


def test_malformed_signature_is_named(client):
    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers), account)
    body["signature"] = "0xzz"
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 400
    assert reply.json()["detail"] == "signature is not hex"
    body["signature"] = "0x" + "11" * 64
    assert (
        "must be 65 bytes, got 64"
        in client.post("/consent", json=body, headers=headers).json()["detail"]
    )


def test_expired_deadline_is_refused(client):
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    typed["message"]["deadline"] = int(time.time()) - 5
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 400
    assert "deadline" in reply.json()["detail"]


def test_stale_nonce_is_refused(client):
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    typed["message"]["nonce"] = 7
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 409
    assert "expects nonce 0" in reply.json()["detail"]


def test_scopes_outside_the_terms_are_refused(client):
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    typed["message"]["scopes"] = 4
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 400
    assert "not a non-empty subset" in reply.json()["detail"]


def test_missing_fields_get_a_named_validation_error(client):
    headers = sign_in(client, new_account())
    reply = client.post("/consent", json={"scopes": 1}, headers=headers)
    assert reply.status_code == 422
    assert "terms_version: Field required" in reply.json()["detail"]


def test_resubmitting_the_same_signature_is_idempotent(client, session):
    from sqlmodel import select

    from backend.consent.models import Consent

    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers), account)
    first = client.post("/consent", json=body, headers=headers)
    second = client.post("/consent", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["consent_hash"] == second.json()["consent_hash"]
    assert (
        len(session.exec(select(Consent).where(Consent.contributor == account.address)).all()) == 1
    )


def test_second_action_waits_for_the_pending_one(client):
    account = new_account()
    headers = sign_in(client, account)
    submit_consent(client, account, headers)
    reply = client.post("/consent/typed-data", json={"scopes": ["research"]}, headers=headers)
    assert reply.status_code == 409
    assert "still being recorded" in reply.json()["detail"]


def test_other_accounts_cannot_read_or_revoke_a_consent(client):
    alice, bob = new_account(), new_account()
    alice_headers = sign_in(client, alice)
    consent = submit_consent(client, alice, alice_headers)
    bob_headers = sign_in(client, bob)
    path = f"/consent/{consent['consent_hash']}"
    assert client.get(path, headers=bob_headers).status_code == 403
    assert client.post(f"{path}/revoke/typed-data", headers=bob_headers).status_code == 403
    assert client.get("/consent/0x" + "00" * 32, headers=bob_headers).status_code == 404


def test_pending_consent_cannot_be_revoked_yet(client):
    account = new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    reply = client.post(f"/consent/{consent['consent_hash']}/revoke/typed-data", headers=headers)
    assert reply.status_code == 409
    assert "not recorded on chain" in reply.json()["detail"]


def test_revocation_signed_by_another_account_is_rejected(client, session, chain):
    from backend.consent import service
    from backend.consent.models import RelayAction

    account, mallory = new_account(), new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    row_id = service.get_owned_consent(
        session=session, contributor=account.address, consent_hash=consent["consent_hash"]
    ).id
    assert (
        service.relay(session=session, chain=chain, consent_id=row_id, action=RelayAction.record)
        == "recorded"
    )
    path = f"/consent/{consent['consent_hash']}/revoke"
    typed = client.post(f"{path}/typed-data", headers=headers).json()["typed_data"]
    reply = client.post(path, json=revocation_body(typed, mallory), headers=headers)
    assert reply.status_code == 400
    assert reply.json()["type"] == "InvalidSignature"


def test_numbers_beyond_the_contracts_and_columns_types_are_named(client):
    """Each of these reached the database driver and failed there (a 500): nonce and deadline
    are BIGINT columns, the terms version an INTEGER."""
    headers = sign_in(client, new_account())
    good = {"terms_version": 1, "scopes": 1, "nonce": 0, "deadline": 2**40, "signature": "0x00"}
    cases = [
        ("nonce", -1),
        ("nonce", 2**256),
        ("nonce", 2**63),
        ("deadline", 2**63),
        ("deadline", -1),
        ("terms_version", 2**31),
        ("scopes", 2**64),
        ("signature", "0x" + "ab" * 1000),
    ]
    for field, value in cases:
        reply = client.post("/consent", json={**good, field: value}, headers=headers)
        assert reply.status_code == 422, (field, value, reply.text)
        assert reply.json()["detail"].startswith(f"{field}: "), reply.json()
    revoke = f"/consent/0x{'11' * 32}/revoke"
    for field, value in [("nonce", -1), ("nonce", 2**256), ("deadline", 2**63)]:
        body = {"nonce": 0, "deadline": 2**40, "signature": "0x00", field: value}
        reply = client.post(revoke, json=body, headers=headers)
        assert reply.status_code == 422 and field in reply.json()["detail"], reply.text
    # A consent hash is 32 bytes of hex; anything else is named before any lookup.
    odd = client.get("/consent/0x%00", headers=headers)
    assert odd.status_code == 422 and "consent_hash" in odd.json()["detail"]
    typed = client.post(
        "/consent/typed-data",
        json={"scopes": ["research"], "terms_version": 2**40},
        headers=headers,
    )
    assert typed.status_code == 422 and "terms_version" in typed.json()["detail"]


def _post_at_once(client, path: str, body: dict, headers: dict, n: int = 8) -> list:
    """n identical POSTs at the same moment, each from its own thread: each one's status
    code and body, or the exception the test client raised for a 500."""
    start = threading.Barrier(n)
    replies: list = [None] * n

    def post(i: int) -> None:
        start.wait()
        try:
            reply = client.post(path, json=body, headers=headers)
            replies[i] = (reply.status_code, reply.json())
        except Exception as exc:
            replies[i] = (500, repr(exc))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return replies


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple]:
    """The relays the API enqueues, instead of sending them to the broker."""
    calls: list[tuple] = []
    monkeypatch.setattr(consent_router, "enqueue_relay", lambda *args: calls.append(args))
    return calls


def test_concurrent_identical_submissions_all_get_the_one_consent(client, session, enqueued):
    """An outside tester's four concurrent POSTs of one signature got 500s (the unique key)
    and 409s (the pending rule seeing the winner's row) in every round."""
    for _ in range(5):
        account = new_account()
        headers = sign_in(client, account)
        body = consent_body(consent_typed_data(client, headers), account)
        enqueued.clear()
        replies = _post_at_once(client, "/consent", body, headers)
        assert [code for code, _ in replies] == [202] * len(replies), replies
        assert len({reply["consent_hash"] for _, reply in replies}) == 1
        (row,) = session.exec(select(Consent).where(Consent.contributor == account.address))
        assert enqueued == [(row.id, RelayAction.record)]


def test_concurrent_identical_revocations_all_get_the_one_revocation(
    client, session, chain, enqueued
):
    for _ in range(5):
        account = new_account()
        headers = sign_in(client, account)
        consent = submit_consent(client, account, headers)
        row = service.get_owned_consent(
            session=session, contributor=account.address, consent_hash=consent["consent_hash"]
        )
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        path = f"/consent/{consent['consent_hash']}/revoke"
        typed = client.post(f"{path}/typed-data", headers=headers).json()["typed_data"]
        enqueued.clear()
        replies = _post_at_once(client, path, revocation_body(typed, account), headers)
        assert [code for code, _ in replies] == [202] * len(replies), replies
        assert {reply["revocation"]["status"] for _, reply in replies} == {"pending"}
        assert enqueued == [(row.id, RelayAction.revoke)]


def test_resubmitting_enqueues_no_second_relay(client, enqueued):
    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers), account)
    first = client.post("/consent", json=body, headers=headers)
    second = client.post("/consent", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert len(enqueued) == 1


# --- end dates (ConsentV2) ------------------------------------------------------------------


def _end_of_day_in(days: int) -> tuple[str, int]:
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    end = int(datetime.combine(day, dtime(23, 59, 59), tzinfo=UTC).timestamp())
    return day.isoformat(), end


def test_an_iso_end_date_means_the_end_of_that_day_in_utc(client):
    headers = sign_in(client, new_account())
    day, end = _end_of_day_in(400)
    typed = consent_typed_data(client, headers, valid_until=day)
    assert typed["primaryType"] == "ConsentV2"
    assert [f["name"] for f in typed["types"]["ConsentV2"]][5] == "validUntil"
    assert typed["message"]["validUntil"] == end
    assert time.time() < typed["message"]["deadline"] < end


def test_an_end_date_in_unix_seconds_is_taken_as_it_is(client):
    headers = sign_in(client, new_account())
    end = int(time.time()) + 86_400
    assert consent_typed_data(client, headers, valid_until=end)["message"]["validUntil"] == end


def test_an_end_date_is_signed_submitted_and_shown(client, session, chain):
    account = new_account()
    headers = sign_in(client, account)
    day, end = _end_of_day_in(30)
    typed = consent_typed_data(client, headers, valid_until=day)
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 202, reply.text
    consent = reply.json()
    assert consent["typed_version"] == 2
    assert consent["valid_until"] == f"{day}T23:59:59Z"
    assert consent["consent_hash"] == digest(typed)
    row = service.get_owned_consent(
        session=session, contributor=account.address, consent_hash=consent["consent_hash"]
    )
    assert (row.valid_until, row.typed_version) == (end, 2)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    status = client.get("/consent", headers=headers).json()
    assert status["active"]["valid_until"] == f"{day}T23:59:59Z"
    assert status["history"][0]["valid_until"] == f"{day}T23:59:59Z"
    one = client.get(f"/consent/{consent['consent_hash']}", headers=headers).json()
    assert (one["status"], one["valid_until"], one["typed_version"]) == (
        "recorded",
        f"{day}T23:59:59Z",
        2,
    )


def test_without_an_end_date_the_consent_is_a_consent_v2_with_none(client, session, chain):
    account = new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    assert (consent["typed_version"], consent["valid_until"]) == (2, None)


def test_a_version_1_consent_is_still_taken_and_relayed(client, session, chain):
    """An older client signs a version-1 Consent and sends no valid_until."""
    account = new_account()
    headers = sign_in(client, account)
    typed = as_version_1(consent_typed_data(client, headers))
    body = consent_body(typed, account)
    assert "valid_until" not in body
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 202, reply.text
    consent = reply.json()
    assert (consent["typed_version"], consent["valid_until"]) == (1, None)
    assert consent["consent_hash"] == digest(typed)
    row = service.get_owned_consent(
        session=session, contributor=account.address, consent_hash=consent["consent_hash"]
    )
    assert (row.typed_version, row.valid_until) == (1, None)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    status = client.get("/consent", headers=headers).json()
    assert status["active"]["consent_hash"] == consent["consent_hash"]
    assert chain.contract("ConsentRegistry").functions.isConsentActive(row.consent_hash).call()


def test_a_consent_v2_sent_without_its_valid_until_is_named(client):
    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers), account)
    del body["valid_until"]
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 400
    assert reply.json()["type"] == "InvalidSignature"
    assert "send valid_until" in reply.json()["detail"]


def test_a_changed_end_date_breaks_the_signature(client):
    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers, valid_until=_days(30)), account)
    body["valid_until"] += 86_400  # claim a longer consent than was signed
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 400 and reply.json()["type"] == "InvalidSignature"
    body["valid_until"] = 0  # or none at all
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == 400 and reply.json()["type"] == "InvalidSignature"


def _days(n: int) -> int:
    return int(time.time()) + n * 86_400


@pytest.mark.parametrize(
    ("valid_until", "status", "says"),
    [
        ("2020-01-01", 400, "is not in the future"),
        (_days(-1), 400, "is not in the future"),
        (0, 400, "is not in the future"),
        (-5, 400, "is not in the future"),
        (_days(36_526), 400, "more than 100 years ahead"),
        ("3026-01-01", 400, "more than 100 years ahead"),
        (2**63, 422, "less than or equal to"),
        ("2028-02-30", 422, "is not a date"),
        ("2028-12-31T00:00:00Z", 422, "an ISO date (YYYY-MM-DD) or unix seconds"),
        ("tomorrow", 422, "an ISO date (YYYY-MM-DD) or unix seconds"),
        ("1893456000", 422, "an ISO date (YYYY-MM-DD) or unix seconds"),
        (True, 422, "an ISO date (YYYY-MM-DD) or unix seconds"),
        (1.5, 422, "valid integer"),
    ],
)
def test_an_end_date_out_of_bounds_is_refused_naming_the_field(client, valid_until, status, says):
    headers = sign_in(client, new_account())
    reply = client.post(
        "/consent/typed-data",
        json={"scopes": ["research"], "valid_until": valid_until},
        headers=headers,
    )
    assert reply.status_code == status, reply.text
    detail = reply.json()["detail"]
    assert detail.startswith("valid_until"), detail
    assert says in detail, detail


@pytest.mark.parametrize(
    ("valid_until", "status", "says"),
    [
        (-1, 422, "valid_until: "),
        (2**63, 422, "valid_until: "),
        (2**64, 422, "valid_until: "),
        ("2028-12-31", 422, "valid_until: "),  # the signed message's number, not a date
        (_days(-1), 400, "is not in the future"),
        (_days(36_526), 400, "more than 100 years ahead"),
    ],
)
def test_a_submitted_end_date_out_of_bounds_is_refused_naming_the_field(
    client, valid_until, status, says
):
    account = new_account()
    headers = sign_in(client, account)
    body = consent_body(consent_typed_data(client, headers), account)
    body["valid_until"] = valid_until
    reply = client.post("/consent", json=body, headers=headers)
    assert reply.status_code == status, reply.text
    detail = reply.json()["detail"]
    assert detail.startswith("valid_until"), detail
    assert says in detail, detail


def test_a_submitted_end_date_must_come_after_the_signatures_deadline(client):
    """Else the registry could be asked to record it after its end, and refuse it."""
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers, valid_until=_days(1))
    typed["message"]["validUntil"] = typed["message"]["deadline"]
    reply = client.post("/consent", json=consent_body(typed, account), headers=headers)
    assert reply.status_code == 400
    assert reply.json()["detail"].startswith("valid_until")
    assert "not after the signature's deadline" in reply.json()["detail"]
