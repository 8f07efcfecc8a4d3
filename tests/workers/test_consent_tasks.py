"""Consent relaying through a real Celery worker process and a real broker."""

from sqlmodel import Session, select

from backend.consent import service
from backend.consent.models import Consent, ConsentSubmit
from backend.core.db import get_engine
from tests.factories import consent_body, consent_typed_data, new_account, sign_in, submit_consent
from tests.tcp_proxy import TcpProxy
from tests.workers.conftest import poll
from workers import consent_tasks


def _status(client, headers, consent_hash):
    return client.get(f"/consent/{consent_hash}", headers=headers).json()


def _row(consent_hash: str) -> Consent:
    with Session(get_engine()) as s:
        return s.exec(select(Consent).where(Consent.consent_hash == consent_hash)).one()


def test_task_function_relays_by_id(client, chain):
    account = new_account()
    headers = sign_in(client, account)
    consent = submit_consent(client, account, headers)
    row = _row(consent["consent_hash"])
    assert consent_tasks.relay(row.id, "record") == "recorded"
    assert _status(client, headers, consent["consent_hash"])["status"] == "recorded"


def test_worker_relays_consent_and_revocation(client, chain, worker):
    account = new_account()
    headers = sign_in(client, account)
    with worker():
        consent = submit_consent(client, account, headers)
        recorded = poll(
            lambda: (
                (b := _status(client, headers, consent["consent_hash"]))["status"] == "recorded"
                and b
            ),
            timeout=30,
            what="the consent to be recorded",
        )
        assert chain.w3.eth.get_transaction_receipt(recorded["tx_hash"])["status"] == 1
        registry = chain.contract("ConsentRegistry")
        assert registry.functions.isConsentActive(consent["consent_hash"]).call()

        path = f"/consent/{consent['consent_hash']}/revoke"
        typed = client.post(f"{path}/typed-data", headers=headers).json()["typed_data"]
        msg = typed["message"]
        reply = client.post(
            path,
            headers=headers,
            json={
                "nonce": msg["nonce"],
                "deadline": msg["deadline"],
                "signature": account.sign_typed_data(full_message=typed).signature.hex(),
            },
        )
        assert reply.status_code == 202, reply.text
        poll(
            lambda: (
                _status(client, headers, consent["consent_hash"])["revocation"]["status"]
                == "recorded"
            ),
            timeout=30,
            what="the revocation to be recorded",
        )
        assert not registry.functions.isConsentActive(consent["consent_hash"]).call()


def test_relay_waits_out_a_chain_outage(client, chain, worker, hardhat_node):
    proxy = TcpProxy(int(hardhat_node.rsplit(":", 1)[1]))
    account = new_account()
    headers = sign_in(client, account)
    with worker(PROVENANT_RPC_URL=proxy.url):  # the worker reaches the chain only via the proxy
        consent = submit_consent(client, account, headers)
        # The node is "down": the worker fails, keeps the row pending, and retries with backoff.
        poll(
            lambda: _row(consent["consent_hash"]).relay_attempts >= 2,
            timeout=30,
            what="two failed relay attempts",
        )
        row = _row(consent["consent_hash"])
        assert row.status == "pending" and "unreachable" in row.error
        proxy.up()
        try:
            poll(
                lambda: _row(consent["consent_hash"]).status == "recorded",
                timeout=60,
                what="the consent to be recorded after the outage",
            )
        finally:
            proxy.down()
    assert (
        chain.contract("ConsentRegistry").functions.isConsentActive(consent["consent_hash"]).call()
    )


def test_sweep_relays_what_never_reached_the_broker(client, chain, session, worker):
    # Stored without being enqueued, as when the broker was down at submit time.
    account = new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    row = service.submit_consent(
        session=session,
        chain=chain,
        contributor=account.address,
        data=ConsentSubmit(**consent_body(typed, account)),
    )
    with worker(
        beat=True, PROVENANT_RELAY_SWEEP_INTERVAL_S="0.5", PROVENANT_RELAY_STALE_AFTER_S="0"
    ):
        poll(
            lambda: _row(row.consent_hash).status == "recorded",
            timeout=30,
            what="the sweep to relay the stored consent",
        )


def test_a_long_quality_run_does_not_hold_up_consent_relays(client, chain, worker):
    """Quality runs have a queue and a worker process of their own: a run that takes a
    minute (a large project) used to keep every consent relay, anchoring and reward epoch
    waiting behind it on the one solo worker."""
    from workers import quality_tasks

    account = new_account()
    headers = sign_in(client, account)
    with worker(PROVENANT_FAILPOINTS="quality.run=stall:60") as proc:
        quality_tasks.aggregate_project.delay(0)  # stalls its worker for a minute
        poll(
            lambda: b"Task quality.aggregate_project" in proc.log_path.read_bytes(),
            timeout=30,
            what="the quality run to start",
        )
        consent = submit_consent(client, account, headers)
        poll(
            lambda: _status(client, headers, consent["consent_hash"])["status"] == "recorded",
            timeout=30,
            what="the consent to be recorded while the quality run goes on",
        )
