"""The relay: idempotent, recognises work already on chain, and never forges consent."""

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from backend.consent import service
from backend.consent import typed_data as td
from backend.consent.models import Consent, ConsentSubmit, RelayAction, RevocationSubmit
from backend.core.errors import ChainRevert
from tests.factories import consent_typed_data, new_account, sign_in


def _submitted(client, session, chain, account=None) -> tuple[Account, Consent, dict]:
    account = account or new_account()
    headers = sign_in(client, account)
    typed = consent_typed_data(client, headers)
    msg = typed["message"]
    row = service.submit_consent(
        session=session,
        chain=chain,
        contributor=account.address,
        data=ConsentSubmit(
            terms_version=msg["termsVersion"],
            scopes=msg["scopes"],
            nonce=msg["nonce"],
            deadline=msg["deadline"],
            signature=account.sign_typed_data(full_message=typed).signature.hex(),
        ),
    )
    return account, row, headers


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
    (event,) = registry.events.ConsentRecorded().process_receipt(receipt)
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


def test_relay_after_a_crash_recognises_the_transaction_already_sent(client, session, chain):
    # The worker sent the transaction, then died before writing the result down.
    account, row, _ = _submitted(client, session, chain)
    sent = chain.transact(
        _registry(chain).functions.recordConsent(
            account.address,
            row.terms_version,
            row.terms_hash,
            row.scopes,
            row.royalty_bps,
            row.nonce,
            row.deadline,
            bytes.fromhex(row.signature[2:]),
        )
    )
    block = chain.w3.eth.block_number
    assert (
        service.relay(session=session, chain=chain, consent_id=row.id, action=RelayAction.record)
        == "recorded"
    )
    session.refresh(row)
    assert row.tx_hash == sent.tx_hash
    assert chain.w3.eth.block_number == block


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
