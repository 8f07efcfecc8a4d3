"""The relay: idempotent, recognises work already on chain, and never forges consent; and
concurrent submissions of one signature store it once and enqueue one relay."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import select as sa_select
from sqlmodel import Session, select
from web3.logs import DISCARD

from backend.consent import service
from backend.consent import typed_data as td
from backend.consent.eligibility import ConsentFacts, consent_exclusion
from backend.consent.models import Consent, ConsentSubmit, RelayAction, RevocationSubmit
from backend.core.db import get_engine
from backend.core.errors import ChainRevert
from backend.core.time import as_utc, utcnow
from tests.consent.helpers import as_version_1
from tests.factories import consent_body, consent_typed_data, new_account, sign_in

# Concurrent submissions per round, and rounds. Before the fix these races failed on SQLite
# and on PostgreSQL: losers hit the unique key (a 500) or the pending rule, which saw the
# winner's row (a 409), and the API enqueued the relay more than once.
RACERS = 8
ROUNDS = 5


def _signed_consent(client, account) -> ConsentSubmit:
    headers = sign_in(client, account)
    return ConsentSubmit(**consent_body(consent_typed_data(client, headers), account))


def _submitted(
    client, session, chain, account=None, *, version: int = 2, valid_until=None
) -> tuple[Account, Consent, dict]:
    """A stored consent: the ConsentV2 the API prepares (with ``valid_until`` if given), or
    with ``version=1`` the same terms signed as a version-1 Consent."""
    account = account or new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers, valid_until=valid_until)
    if version == 1:
        typed = as_version_1(typed)
    row = service.submit_consent(
        session=session,
        chain=chain,
        contributor=account.address,
        data=ConsentSubmit(**consent_body(typed, account)),
    )
    return account, row, headers


def _signed_revocation(session, chain, account, row) -> RevocationSubmit:
    typed = service.prepare_revocation(
        session=session,
        chain=chain,
        settings=chain.settings,
        contributor=account.address,
        consent_hash=row.consent_hash,
    ).typed_data
    return RevocationSubmit(
        nonce=typed["message"]["nonce"],
        deadline=typed["message"]["deadline"],
        signature=account.sign_typed_data(full_message=typed).signature.hex(),
    )


def _race(call: Callable[[Session], Any], n: int = RACERS) -> list[Any]:
    """``call`` from n threads at once, each in a session (and connection) of its own, as n
    requests in API processes; each thread's result, or the exception it raised."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        with Session(get_engine(), expire_on_commit=False) as s:
            start.wait()
            try:
                results[i] = call(s)
            except Exception as exc:
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _registry(chain):
    return chain.contract("ConsentRegistry")


def test_relay_records_on_chain_and_mirrors_the_transaction(client, session, chain):
    account, row, _ = _submitted(client, session, chain)
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "recorded"
    )
    session.refresh(row)
    assert row.tx_hash and row.block_number and row.relay_attempts == 1
    registry = _registry(chain)
    assert registry.functions.isConsentActive(row.consent_hash).call()
    assert (
        "0x" + registry.functions.activeConsentOf(account.address).call().hex() == row.consent_hash
    )
    receipt = chain.w3.eth.get_transaction_receipt(row.tx_hash)
    (event,) = registry.events.ConsentRecorded().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["contributor"] == account.address
    assert event["args"]["scopes"] == row.scopes
    assert service.has_active_consent(session=session, contributor=account.address)


def test_relaying_twice_sends_once(client, session, chain):
    _, row, _ = _submitted(client, session, chain)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    block = chain.w3.eth.block_number
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "recorded"
    )
    assert chain.w3.eth.block_number == block  # no second transaction


@pytest.mark.parametrize("version", [1, 2])
def test_relay_after_a_crash_recognises_the_transaction_already_sent(
    client, session, chain, version
):
    # The worker sent the transaction, then died before writing the result down.
    _, row, _ = _submitted(client, session, chain, version=version, valid_until=_days(30))
    sent = service._send(chain, row, RelayAction.record)
    block = chain.w3.eth.block_number
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "recorded"
    )
    session.refresh(row)
    assert row.tx_hash == sent.tx_hash
    assert chain.w3.eth.block_number == block
    # The mirror has the chain's own time, read back from the record.
    onchain = service._onchain_record(chain, row.consent_hash)
    assert _unix(row.recorded_at) == onchain["recordedAt"] == _block_time(chain, sent)
    assert onchain["validUntil"] == (row.valid_until or 0)


def test_contract_refuses_a_consent_the_contributor_did_not_sign(client, session, chain):
    # Bypass the API: the operator relays Mallory's signature for Alice straight to the contract.
    alice, mallory = new_account(), new_account()
    terms = service.terms_mod.current_terms()
    msg = td.ConsentMessage(
        alice.address, terms.version, terms.terms_hash, 1, terms.royalty_bps, 0, 2**40
    )
    typed = td.consent_typed_data(msg, chain_id=chain.chain_id, registry=_registry(chain).address)
    forged = mallory.sign_typed_data(full_message=typed).signature
    with pytest.raises(ChainRevert) as info:
        chain.transact(
            _registry(chain).functions.recordConsent(
                alice.address,
                msg.terms_version,
                msg.terms_hash,
                msg.scopes,
                msg.royalty_bps,
                msg.nonce,
                msg.deadline,
                forged,
            )
        )
    assert info.value.error_name == "ConsentRegistryInvalidSignature"
    assert info.value.error_args == {"contributor": alice.address}
    assert "ConsentRegistryInvalidSignature" in info.value.detail


def test_a_refused_relay_is_marked_failed_with_the_reason(client, session, chain):
    _, row, _ = _submitted(client, session, chain)
    # Corrupt the stored signature so the contract refuses it for good.
    other = new_account()
    row.signature = "0x" + other.sign_message(encode_defunct(text="x")).signature.hex()
    session.add(row)
    session.commit()
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "failed"
    )
    session.refresh(row)
    assert "ConsentRegistryInvalidSignature" in row.error
    assert service.pending_relays(session=session) == []


def test_revocation_relay(client, session, chain):
    account, row, _ = _submitted(client, session, chain)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    typed = service.prepare_revocation(
        session=session,
        chain=chain,
        settings=chain.settings,
        contributor=account.address,
        consent_hash=row.consent_hash,
    ).typed_data
    service.submit_revocation(
        session=session,
        chain=chain,
        contributor=account.address,
        consent_hash=row.consent_hash,
        data=RevocationSubmit(
            nonce=typed["message"]["nonce"],
            deadline=typed["message"]["deadline"],
            signature=account.sign_typed_data(full_message=typed).signature.hex(),
        ),
    )
    assert service.pending_relays(session=session) == [(row.id, RelayAction.revoke)]
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.revoke)
        == "recorded"
    )
    assert not _registry(chain).functions.isConsentActive(row.consent_hash).call()
    assert not service.has_active_consent(session=session, contributor=account.address)
    status = service.consent_status(session=session, chain=chain, contributor=account.address)
    assert status.active is None
    assert status.history[0].revocation.status == "recorded"


def test_pending_relays_lists_only_untouched_rows(client, session, chain):
    from datetime import timedelta

    from backend.core.time import utcnow

    _, row, _ = _submitted(client, session, chain)
    assert service.pending_relays(session=session) == [(row.id, RelayAction.record)]
    assert (
        service.pending_relays(session=session, untouched_since=utcnow() - timedelta(minutes=1))
        == []
    )


def _consent_race_round(client, session, chain) -> None:
    account = new_account()
    data = _signed_consent(client, account)
    stored: list[int | None] = []

    def submit(s: Session) -> tuple:
        row = service.submit_consent(
            session=s,
            chain=chain,
            contributor=account.address,
            data=data,
            on_stored=lambda new: stored.append(new.id),
        )
        return row.id, row.consent_hash, row.status

    results = _race(submit)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert len(set(results)) == 1, results
    ((row_id, _, status),) = set(results)
    assert status == "pending"
    rows = session.exec(select(Consent).where(Consent.contributor == account.address)).all()
    assert [r.id for r in rows] == [row_id]
    assert stored == [row_id]  # one relay enqueued, by the submission that stored it


def test_concurrent_submissions_of_one_consent_store_it_once(client, session, chain):
    for _ in range(ROUNDS):
        _consent_race_round(client, session, chain)


def _revocation_race_round(client, session, chain) -> None:
    account, row, _ = _submitted(client, session, chain)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    data = _signed_revocation(session, chain, account, row)
    stored: list[int | None] = []

    def revoke(s: Session) -> tuple:
        got = service.submit_revocation(
            session=s,
            chain=chain,
            contributor=account.address,
            consent_hash=row.consent_hash,
            data=data,
            on_stored=lambda new: stored.append(new.id),
        )
        return got.id, got.revoke_status, got.revoke_signature

    results = _race(revoke)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert set(results) == {(row.id, "pending", td.normalise_signature(data.signature))}, results
    assert stored == [row.id]  # one relay enqueued, by the submission that stored it
    session.expire_all()  # the threads wrote the row this session holds
    assert service.pending_relays(session=session) == [(row.id, RelayAction.revoke)]
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.revoke)


def test_concurrent_submissions_of_one_revocation_store_it_once(client, session, chain):
    for _ in range(ROUNDS):
        _revocation_race_round(client, session, chain)


def test_a_resubmission_stores_and_enqueues_nothing(client, session, chain):
    account = new_account()
    data = _signed_consent(client, account)
    stored: list[Consent] = []
    first, again = (
        service.submit_consent(
            session=session,
            chain=chain,
            contributor=account.address,
            data=data,
            on_stored=stored.append,
        )
        for _ in range(2)
    )
    assert again.id == first.id and stored == [first]


def test_a_consent_stored_after_the_lookup_is_a_resubmission_not_a_conflict(
    client, session, chain, monkeypatch
):
    """The interleavings the race test hits by chance, each made to happen: the winner's row
    appears after the loser looked for it, and then the pending rule sees it, the unique key
    refuses the loser's insert, or the chain has already consumed its nonce."""
    account = new_account()
    data = _signed_consent(client, account)
    winner = service.submit_consent(
        session=session, chain=chain, contributor=account.address, data=data
    )
    lookup = service._consent_by_hash

    def submit_as_the_loser() -> Consent:
        missed: list[str] = []

        def first_lookup_misses(s: Session, consent_hash: str) -> Consent | None:
            if not missed:
                missed.append(consent_hash)
                return None
            return lookup(s, consent_hash)

        monkeypatch.setattr(service, "_consent_by_hash", first_lookup_misses)
        with Session(get_engine()) as s:
            return service.submit_consent(
                session=s,
                chain=chain,
                contributor=account.address,
                data=data,
                on_stored=lambda r: pytest.fail("the loser stored the consent"),
            )

    assert submit_as_the_loser().id == winner.id  # the pending rule saw the winner's row
    with monkeypatch.context() as m:
        m.setattr(service, "_ensure_nothing_pending", lambda *a: None)
        assert submit_as_the_loser().id == winner.id  # the unique key refused the insert
    service.relay(session=session, chain=chain, consent_id=winner.id, action=RelayAction.record)
    assert submit_as_the_loser().id == winner.id  # the chain had consumed the nonce
    assert len(session.exec(select(Consent)).all()) == 1


def test_a_revocation_stored_after_the_read_is_a_resubmission_not_a_conflict(
    client, session, chain, monkeypatch
):
    """As above for revocations: the losers read the consent before the winner stored the
    revocation; one is stopped by the pending rule, the other by the conditional UPDATE."""
    account, row, _ = _submitted(client, session, chain)
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
    data = _signed_revocation(session, chain, account, row)
    losers = [Session(get_engine()), Session(get_engine())]
    try:
        for s in losers:
            s.exec(select(Consent).where(Consent.id == row.id)).one()
        stored = service.submit_revocation(
            session=session,
            chain=chain,
            contributor=account.address,
            consent_hash=row.consent_hash,
            data=data,
        )
        assert stored.revoke_status == "pending"
        for i, s in enumerate(losers):
            with monkeypatch.context() as m:
                if i == 1:
                    m.setattr(service, "_ensure_nothing_pending", lambda *a: None)
                got = service.submit_revocation(
                    session=s,
                    chain=chain,
                    contributor=account.address,
                    consent_hash=row.consent_hash,
                    data=data,
                    on_stored=lambda r: pytest.fail("a loser stored the revocation"),
                )
            assert (
                got.revoke_status == "pending"
                and got.revoke_signature == td.normalise_signature(data.signature)
            )
    finally:
        for s in losers:
            s.close()


# --- end dates (ConsentV2) ------------------------------------------------------------------


def _days(n: int) -> int:
    return int(time.time()) + n * 86_400


def _unix(value: datetime) -> int:
    return int(as_utc(value).timestamp())


def _block_time(chain, sent) -> int:
    return int(chain.w3.eth.get_block(sent.block_number)["timestamp"])


def _relayed(session, chain, row: Consent) -> Consent:
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "recorded"
    )
    session.refresh(row)
    return row


def test_a_consent_with_an_end_date_is_recorded_with_it_on_chain(client, session, chain):
    end = _days(30)
    account, row, _ = _submitted(client, session, chain, valid_until=end)
    assert (row.typed_version, row.valid_until) == (2, end)
    _relayed(session, chain, row)
    registry = _registry(chain)
    receipt = chain.w3.eth.get_transaction_receipt(row.tx_hash)
    (recorded,) = registry.events.ConsentRecorded().process_receipt(receipt, errors=DISCARD)
    (ended,) = registry.events.ConsentEndDate().process_receipt(receipt, errors=DISCARD)
    assert "0x" + recorded["args"]["consentHash"].hex() == row.consent_hash
    assert ended["args"]["validUntil"] == end
    assert ended["args"]["contributor"] == account.address
    onchain = service._onchain_record(chain, row.consent_hash)
    assert onchain == {
        "recordedAt": int(receipt_time := chain.w3.eth.get_block(row.block_number)["timestamp"]),
        "revokedAt": 0,
        "validUntil": end,
    }
    assert _unix(row.recorded_at) == receipt_time
    public = service.to_public(row, chain_id=chain.chain_id, registry=registry.address)
    assert public.valid_until == datetime.fromtimestamp(end, UTC)
    assert public.typed_version == 2
    assert registry.functions.isConsentActive(row.consent_hash).call()
    assert service.has_active_consent(session=session, contributor=account.address)


@pytest.mark.parametrize("version", [1, 2])
def test_a_consent_without_an_end_date_is_recorded_by_its_own_function(
    client, session, chain, version
):
    """Version 1 through recordConsent, a ConsentV2 with validUntil 0 through
    recordConsentV2: each is found on chain under its own hash, with no ConsentEndDate."""
    _, row, _ = _submitted(client, session, chain, version=version)
    assert row.typed_version == version
    assert row.valid_until == (None if version == 1 else 0)
    _relayed(session, chain, row)
    registry = _registry(chain)
    receipt = chain.w3.eth.get_transaction_receipt(row.tx_hash)
    assert registry.events.ConsentEndDate().process_receipt(receipt, errors=DISCARD) == ()
    (recorded,) = registry.events.ConsentRecorded().process_receipt(receipt, errors=DISCARD)
    assert "0x" + recorded["args"]["consentHash"].hex() == row.consent_hash
    assert service._onchain_record(chain, row.consent_hash)["validUntil"] == 0
    public = service.to_public(row, chain_id=chain.chain_id, registry=registry.address)
    assert public.valid_until is None and public.typed_version == version


def test_the_prepared_deadline_ends_before_the_consent_does(client, session, chain):
    """A signature relayed after its consent's end would be refused by the registry; the API
    prepares one whose deadline comes first, so it is never relayed that late."""
    end = int(time.time()) + 120
    headers = sign_in(client, new_account())
    message = consent_typed_data(client, headers, valid_until=end)["message"]
    assert (message["validUntil"], message["deadline"]) == (end, end - 1)


def test_a_consent_whose_end_has_passed_is_refused_by_the_registry(client, session, chain):
    """One signed by hand, bypassing the API's checks: the relay is refused for good
    (ConsentRegistryEndInPast) and the row says so."""
    account = new_account()
    terms = service.terms_mod.current_terms()
    now = int(time.time())
    message = td.ConsentMessage(
        account.address, terms.version, terms.terms_hash, 1, terms.royalty_bps, 0, now + 600, now
    )
    typed = td.consent_typed_data(
        message, chain_id=chain.chain_id, registry=_registry(chain).address
    )
    row = Consent(
        consent_hash=td.digest(typed),
        contributor=account.address,
        terms_version=terms.version,
        terms_hash=terms.terms_hash,
        scopes=1,
        royalty_bps=terms.royalty_bps,
        nonce=0,
        deadline=now + 600,
        valid_until=now,
        typed_version=2,
        signature="0x" + account.sign_typed_data(full_message=typed).signature.hex(),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(row)
    session.commit()
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "failed"
    )
    session.refresh(row)
    assert "ConsentRegistryEndInPast" in row.error


def test_a_consent_past_its_end_date_is_no_longer_active(client, session, chain):
    account, row, _ = _submitted(client, session, chain, valid_until=_days(1))
    _relayed(session, chain, row)
    end = row.valid_until
    who = account.address
    assert service.has_active_consent(session=session, contributor=who, now=end)
    assert not service.has_active_consent(session=session, contributor=who, now=end + 1)
    # The hot path's SQL says the same at the same instants.
    for now, expected in [(end - 1, row.consent_hash), (end, row.consent_hash), (end + 1, None)]:
        got = session.exec(sa_select(service.active_consent_hash(who, now))).one()[0]
        assert got == expected, now
    # Once the end has passed (made so in the row), the status shows no consent in force.
    row.valid_until = int(time.time()) - 1
    session.add(row)
    session.commit()
    status = service.consent_status(session=session, chain=chain, contributor=who)
    assert status.active is None
    assert [c.consent_hash for c in status.history] == [row.consent_hash]
    assert status.history[0].valid_until == datetime.fromtimestamp(row.valid_until, UTC)


def test_the_mirror_agrees_with_consent_in_force_at_on_chain(client, session, chain):
    """consent_exclusion over the mirrored row and the registry's consentInForceAt give the
    same verdict at every boundary: recording, end date, revocation, and for each scope."""
    account, row, _ = _submitted(client, session, chain, valid_until=_days(10))
    _relayed(session, chain, row)
    typed = service.prepare_revocation(
        session=session,
        chain=chain,
        settings=chain.settings,
        contributor=account.address,
        consent_hash=row.consent_hash,
    ).typed_data
    registry = _registry(chain)

    def agree(facts: ConsentFacts, moments: list[int]) -> None:
        for at in moments:
            for scope in (0, 1, 2, 3, 4):
                onchain = registry.functions.consentInForceAt(row.consent_hash, at, scope).call()
                mirrored = consent_exclusion(facts, scope_bit=scope, at=at)
                assert onchain == (mirrored is None), (at, scope, mirrored)

    facts = ConsentFacts.of(row)
    assert facts.recorded_at == _unix(row.recorded_at) and facts.revoked_at is None
    recorded, end = facts.recorded_at, row.valid_until
    agree(facts, [0, recorded - 1, recorded, recorded + 1, end - 1, end, end + 1])

    service.submit_revocation(
        session=session,
        chain=chain,
        contributor=account.address,
        consent_hash=row.consent_hash,
        data=RevocationSubmit(
            nonce=typed["message"]["nonce"],
            deadline=typed["message"]["deadline"],
            signature=account.sign_typed_data(full_message=typed).signature.hex(),
        ),
    )
    service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.revoke)
    session.refresh(row)
    facts = ConsentFacts.of(row)
    revoked = facts.revoked_at
    assert revoked == service._onchain_record(chain, row.consent_hash)["revokedAt"] > 0
    agree(facts, [recorded - 1, recorded, revoked - 1, revoked, revoked + 1, end, end + 1])


def test_the_type_strings_are_the_registrys(chain):
    """The API signs what the contract hashes: both consent type strings, byte for byte."""
    from eth_utils import keccak

    registry = _registry(chain)
    for version, constant in [(1, "CONSENT_TYPEHASH"), (2, "CONSENT_V2_TYPEHASH")]:
        name, fields = td.CONSENT_TYPES[version]
        assert (
            keccak(text=td.encode_type(name, fields))
            == getattr(registry.functions, constant)().call()
        )
