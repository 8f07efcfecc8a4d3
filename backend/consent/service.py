"""Consent rules: prepare what the contributor signs, check it, relay it, mirror the chain."""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, CursorResult, ScalarSelect, case, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.consent import terms as terms_mod
from backend.consent import typed_data as td
from backend.consent.models import (
    Consent,
    ConsentPublic,
    ConsentStatusPublic,
    ConsentSubmit,
    RelayAction,
    RelayStatus,
    RevocationPublic,
    RevocationSubmit,
    TypedDataPublic,
)
from backend.core.config import Settings
from backend.core.errors import (
    BadRequest,
    ChainRevert,
    ChainUnavailable,
    Conflict,
    Forbidden,
    InvalidSignature,
    NotFound,
)
from backend.core.time import utcnow

REGISTRY = "ConsentRegistry"


def _registry(chain: ChainClient) -> Any:
    return chain.contract(REGISTRY)


def _onchain_nonce(chain: ChainClient, contributor: str) -> int:
    return int(chain.call(_registry(chain).functions.nonces(contributor)))


def _has_pending_action() -> Any:
    return or_(
        col(Consent.status) == RelayStatus.pending,
        col(Consent.revoke_status) == RelayStatus.pending,
    )


def _ensure_nothing_pending(session: Session, contributor: str) -> None:
    # One signed action at a time per contributor: each consumes the next on-chain nonce, so a
    # second one signed while the first is in flight would carry the same nonce and revert.
    pending = session.exec(
        select(Consent).where(
            Consent.contributor == contributor,
            _has_pending_action(),
        )
    ).first()
    if pending is not None:
        raise Conflict(
            f"consent {pending.consent_hash} is still being recorded on chain; "
            "wait until its status is 'recorded' before signing another action"
        )


def _consent_message(contributor: str, data: ConsentSubmit) -> td.ConsentMessage:
    terms = terms_mod.get_terms(data.terms_version)
    return td.ConsentMessage(
        contributor=contributor,
        terms_version=terms.version,
        terms_hash=terms.terms_hash,
        scopes=data.scopes,
        royalty_bps=terms.royalty_bps,
        nonce=data.nonce,
        deadline=data.deadline,
    )


def _normalised_signature(signature: str) -> str:
    try:
        return td.normalise_signature(signature)
    except ValueError as exc:
        raise InvalidSignature(str(exc)) from exc


def _check_signature(typed: dict[str, Any], signature: str, contributor: str, what: str) -> None:
    try:
        signer = td.recover(typed, signature)
    except Exception as exc:  # eth-account raises several types for malformed signatures
        raise InvalidSignature(f"signature is malformed: {exc}") from exc
    if signer != contributor:
        raise InvalidSignature(
            f"signature is not {contributor}'s signature over this {what} "
            f"(it recovers to {signer}); sign the typed data returned by the API"
        )


def _check_fresh(chain: ChainClient, contributor: str, nonce: int, deadline: int) -> None:
    if deadline <= int(time.time()):
        raise BadRequest(f"signature deadline {deadline} has passed; request new typed data")
    expected = _onchain_nonce(chain, contributor)
    if nonce != expected:
        raise Conflict(f"nonce {nonce} is stale: the registry expects nonce {expected}")


def prepare_consent(
    *,
    session: Session,
    chain: ChainClient,
    settings: Settings,
    contributor: str,
    scope_names: list[str],
    terms_version: int | None,
) -> TypedDataPublic:
    """The EIP-712 Consent the contributor must sign for these scopes and terms."""
    terms = terms_mod.get_terms(terms_version) if terms_version else terms_mod.current_terms()
    scopes = terms_mod.scopes_from_names(scope_names, terms)
    _ensure_nothing_pending(session, contributor)
    message = td.ConsentMessage(
        contributor=contributor,
        terms_version=terms.version,
        terms_hash=terms.terms_hash,
        scopes=scopes,
        royalty_bps=terms.royalty_bps,
        nonce=_onchain_nonce(chain, contributor),
        deadline=int(time.time()) + settings.consent_signature_ttl_s,
    )
    typed = td.consent_typed_data(
        message, chain_id=chain.chain_id, registry=chain.deployments.address_of(REGISTRY)
    )
    return TypedDataPublic(typed_data=typed, digest=td.digest(typed))


def _consent_by_hash(session: Session, consent_hash: str) -> Consent | None:
    return session.exec(select(Consent).where(Consent.consent_hash == consent_hash)).first()


def submit_consent(
    *,
    session: Session,
    chain: ChainClient,
    contributor: str,
    data: ConsentSubmit,
    on_stored: Callable[[Consent], None] | None = None,
) -> Consent:
    """Check a signed Consent and store it for relaying; idempotent for the same signature.

    Concurrent submissions of one signature all return the one row; ``on_stored`` (enqueue
    its relay) is called, after the commit, only by the call that stored it."""
    terms = terms_mod.get_terms(data.terms_version)
    signature = _normalised_signature(data.signature)
    if data.scopes <= 0 or data.scopes & ~terms.allowed_scopes:
        raise BadRequest(
            f"scopes {data.scopes} are not a non-empty subset of the scopes terms "
            f"version {terms.version} offers ({terms.allowed_scopes})"
        )
    message = _consent_message(contributor, data)
    typed = td.consent_typed_data(
        message, chain_id=chain.chain_id, registry=chain.deployments.address_of(REGISTRY)
    )
    consent_hash = td.digest(typed)
    existing = _consent_by_hash(session, consent_hash)
    if existing is not None:
        return existing  # the same signed message submitted again
    _check_signature(typed, signature, contributor, "consent")
    try:
        _check_fresh(chain, contributor, data.nonce, data.deadline)
        _ensure_nothing_pending(session, contributor)
    except (BadRequest, Conflict):
        # A concurrent submission of this same signature may have been stored since the
        # lookup above: its pending row, or its nonce already consumed on chain, is then
        # this very consent, and this is a resubmission, not a conflict.
        existing = _consent_by_hash(session, consent_hash)
        if existing is not None:
            return existing
        raise

    now = utcnow()
    row = Consent(
        consent_hash=consent_hash,
        contributor=contributor,
        terms_version=terms.version,
        terms_hash=terms.terms_hash,
        scopes=data.scopes,
        royalty_bps=terms.royalty_bps,
        nonce=data.nonce,
        deadline=data.deadline,
        signature=signature,
        status=RelayStatus.pending,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent submission of the same signature stored it first (consent_hash is
        # unique): return its row, as for any resubmission; its caller enqueues the relay.
        session.rollback()
        existing = _consent_by_hash(session, consent_hash)
        if existing is None:
            raise
        return existing
    session.refresh(row)
    if on_stored is not None:
        on_stored(row)
    return row


def get_owned_consent(*, session: Session, contributor: str, consent_hash: str) -> Consent:
    row = session.exec(select(Consent).where(Consent.consent_hash == consent_hash.lower())).first()
    if row is None:
        raise NotFound(f"no consent with hash {consent_hash}")
    if row.contributor != contributor:
        raise Forbidden("this consent belongs to another account")
    return row


def _revocation_message(row: Consent, nonce: int, deadline: int) -> td.RevocationMessage:
    return td.RevocationMessage(
        contributor=row.contributor, consent_hash=row.consent_hash, nonce=nonce, deadline=deadline
    )


def _ensure_revocable(row: Consent) -> None:
    if row.status != RelayStatus.recorded:
        raise Conflict(f"consent is {row.status}, not recorded on chain; it cannot be revoked yet")
    if row.revoke_status == RelayStatus.recorded:
        raise Conflict("consent is already revoked")


def prepare_revocation(
    *, session: Session, chain: ChainClient, settings: Settings, contributor: str, consent_hash: str
) -> TypedDataPublic:
    """The EIP-712 Revocation the contributor must sign to revoke this consent."""
    row = get_owned_consent(session=session, contributor=contributor, consent_hash=consent_hash)
    _ensure_revocable(row)
    _ensure_nothing_pending(session, contributor)
    message = _revocation_message(
        row,
        _onchain_nonce(chain, contributor),
        int(time.time()) + settings.consent_signature_ttl_s,
    )
    typed = td.revocation_typed_data(
        message, chain_id=chain.chain_id, registry=chain.deployments.address_of(REGISTRY)
    )
    return TypedDataPublic(typed_data=typed, digest=td.digest(typed))


def _is_revocation(row: Consent, signature: str) -> bool:
    """Whether ``signature`` is the row's revocation, stored and not refused by the chain."""
    return row.revoke_signature == signature and row.revoke_status != RelayStatus.failed


def submit_revocation(
    *,
    session: Session,
    chain: ChainClient,
    contributor: str,
    consent_hash: str,
    data: RevocationSubmit,
    on_stored: Callable[[Consent], None] | None = None,
) -> Consent:
    """Check a signed Revocation and store it for relaying; idempotent for the same signature.

    Concurrent submissions of one signature all return the row; ``on_stored`` (enqueue the
    relay) is called, after the commit, only by the call that stored the revocation."""
    row = get_owned_consent(session=session, contributor=contributor, consent_hash=consent_hash)
    signature = _normalised_signature(data.signature)
    if _is_revocation(row, signature):
        return row
    _ensure_revocable(row)
    typed = td.revocation_typed_data(
        _revocation_message(row, data.nonce, data.deadline),
        chain_id=chain.chain_id,
        registry=chain.deployments.address_of(REGISTRY),
    )
    _check_signature(typed, signature, contributor, "revocation")
    try:
        _check_fresh(chain, contributor, data.nonce, data.deadline)
        _ensure_nothing_pending(session, contributor)
    except (BadRequest, Conflict):
        # As for consents: a concurrent submission of this same revocation may have been
        # stored (and its nonce consumed) since the row was read; that is a resubmission.
        session.refresh(row)
        if _is_revocation(row, signature):
            return row
        raise

    # Store it only if no revocation is stored or in flight meanwhile: one conditional
    # UPDATE, so of concurrent submissions exactly one stores it (and enqueues its relay).
    stored: CursorResult = session.execute(  # type: ignore[assignment]
        update(Consent)
        .where(
            col(Consent.id) == row.id,
            col(Consent.status) == RelayStatus.recorded,
            or_(
                col(Consent.revoke_status).is_(None),
                col(Consent.revoke_status) == RelayStatus.failed,
            ),
        )
        .values(
            revoke_status=RelayStatus.pending,
            revoke_nonce=data.nonce,
            revoke_deadline=data.deadline,
            revoke_signature=signature,
            revoke_error=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(row)
    if stored.rowcount == 1:
        if on_stored is not None:
            on_stored(row)
        return row
    if _is_revocation(row, signature):
        return row  # a concurrent submission of the same revocation stored it first
    _ensure_revocable(row)
    raise Conflict(
        f"another revocation of consent {row.consent_hash} is being recorded on chain; "
        "wait until its status is 'recorded' or 'failed'"
    )


# --- relaying (runs in the worker) ----------------------------------------------------------


def _find_event_tx(chain: ChainClient, event_name: str, consent_hash: str) -> tuple[str, int]:
    registry = _registry(chain)
    from_block = int(chain.deployments.contracts[REGISTRY].get("blockNumber", 0))
    logs = chain.get_logs(
        getattr(registry.events, event_name),
        from_block=from_block,
        argument_filters={"consentHash": consent_hash},
    )
    if not logs:
        raise ChainUnavailable(f"{event_name} for {consent_hash} is on chain but its log is not")
    log = logs[0]
    return "0x" + bytes(log["transactionHash"]).hex(), int(log["blockNumber"])


def _onchain_record(chain: ChainClient, consent_hash: str) -> dict[str, int]:
    rec = chain.call(_registry(chain).functions.consentRecord(consent_hash))
    # web3 returns the struct as a tuple in declaration order
    return {"recordedAt": int(rec[4]), "revokedAt": int(rec[5])}


def _mark_recorded(row: Consent, action: RelayAction, tx_hash: str, block_number: int) -> None:
    now = utcnow()
    if action is RelayAction.record:
        row.status, row.tx_hash, row.block_number = RelayStatus.recorded, tx_hash, block_number
        row.recorded_at, row.error = now, None
    else:
        row.revoke_status, row.revoke_tx_hash = RelayStatus.recorded, tx_hash
        row.revoke_block_number, row.revoked_at, row.revoke_error = block_number, now, None
    row.updated_at = now


def _send(chain: ChainClient, row: Consent, action: RelayAction) -> Any:
    fns = _registry(chain).functions
    if action is RelayAction.record:
        return chain.transact(
            fns.recordConsent(
                row.contributor,
                row.terms_version,
                row.terms_hash,
                row.scopes,
                row.royalty_bps,
                row.nonce,
                row.deadline,
                bytes.fromhex(row.signature[2:]),
            )
        )
    return chain.transact(
        fns.revokeConsent(
            row.contributor,
            row.consent_hash,
            row.revoke_nonce,
            row.revoke_deadline,
            bytes.fromhex((row.revoke_signature or "0x")[2:]),
        )
    )


def relay(*, session: Session, chain: ChainClient, consent_id: int, action: RelayAction) -> str:
    """Put one pending consent or revocation on chain; safe to run any number of times.

    The chain is asked first, so a relay that was sent before a crash is recognised and only
    mirrored. Raises ChainUnavailable (the caller retries) while the node cannot be reached.
    """
    row = session.get(Consent, consent_id)
    if row is None:
        raise NotFound(f"no consent with id {consent_id}")
    status = row.status if action is RelayAction.record else row.revoke_status
    if status != RelayStatus.pending:
        return str(status)
    event = "ConsentRecorded" if action is RelayAction.record else "ConsentRevoked"
    field = "recordedAt" if action is RelayAction.record else "revokedAt"

    row.relay_attempts += 1
    row.updated_at = utcnow()  # shows the sweep that a retry chain is alive
    session.add(row)
    session.commit()
    try:
        if _onchain_record(chain, row.consent_hash)[field] == 0:
            try:
                result = _send(chain, row, action)
                _mark_recorded(row, action, result.tx_hash, result.block_number)
            except ChainRevert as exc:
                # A concurrent relay may have won; otherwise the contract refused for good.
                if _onchain_record(chain, row.consent_hash)[field] == 0:
                    if action is RelayAction.record:
                        row.status, row.error = RelayStatus.failed, exc.detail
                    else:
                        row.revoke_status, row.revoke_error = RelayStatus.failed, exc.detail
                    row.updated_at = utcnow()
                else:
                    _mark_recorded(row, action, *_find_event_tx(chain, event, row.consent_hash))
        else:
            _mark_recorded(row, action, *_find_event_tx(chain, event, row.consent_hash))
    except ChainUnavailable as exc:
        if action is RelayAction.record:
            row.error = exc.detail
        else:
            row.revoke_error = exc.detail
        row.updated_at = utcnow()
        session.add(row)
        session.commit()
        raise
    session.add(row)
    session.commit()
    return str(row.status if action is RelayAction.record else row.revoke_status)


def pending_relays(
    *, session: Session, untouched_since: datetime | None = None
) -> list[tuple[int, RelayAction]]:
    """Actions the chain does not have yet, oldest first; optionally only those untouched
    since a given time (a live retry chain keeps touching its row)."""
    query = select(Consent).where(_has_pending_action())
    if untouched_since is not None:
        query = query.where(Consent.updated_at <= untouched_since)
    rows = session.exec(query.order_by(col(Consent.updated_at))).all()
    out: list[tuple[int, RelayAction]] = []
    for row in rows:
        assert row.id is not None
        if row.status == RelayStatus.pending:
            out.append((row.id, RelayAction.record))
        if row.revoke_status == RelayStatus.pending:
            out.append((row.id, RelayAction.revoke))
    return out


# --- reading --------------------------------------------------------------------------------


def to_public(row: Consent, *, chain_id: int, registry: str) -> ConsentPublic:
    revocation = None
    if row.revoke_status is not None:
        revocation = RevocationPublic(
            status=row.revoke_status,
            tx_hash=row.revoke_tx_hash,
            block_number=row.revoke_block_number,
            revoked_at=row.revoked_at,
            error=row.revoke_error,
        )
    return ConsentPublic(
        consent_hash=row.consent_hash,
        contributor=row.contributor,
        terms_version=row.terms_version,
        terms_hash=row.terms_hash,
        scopes=terms_mod.scope_names(row.scopes),
        royalty_bps=row.royalty_bps,
        status=row.status,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        recorded_at=row.recorded_at,
        error=row.error,
        revocation=revocation,
        registry=registry,
        chain_id=chain_id,
    )


def consent_status(
    *, session: Session, chain: ChainClient, contributor: str
) -> ConsentStatusPublic:
    """The contributor's consents, newest first, and the one currently in force."""
    rows = session.exec(
        select(Consent).where(Consent.contributor == contributor).order_by(col(Consent.id).desc())
    ).all()
    registry = chain.deployments.address_of(REGISTRY)
    history = [to_public(r, chain_id=chain.chain_id, registry=registry) for r in rows]
    active = next(
        (
            p
            for p, r in zip(history, rows, strict=True)
            if r.status == RelayStatus.recorded and r.revoke_status != RelayStatus.recorded
        ),
        None,
    )
    return ConsentStatusPublic(active=active, history=history)


def active_consent_hash(contributor: str | BindParameter[str]) -> ScalarSelect[str | None]:
    """SQL expression: the hash of the contributor's active consent, else NULL.

    The same rule as active_consent, for hot paths that fold it into a larger query."""
    table = Consent.__table__  # type: ignore[attr-defined]
    return (
        select(
            case(
                (table.c.revoke_status == RelayStatus.recorded, None),
                else_=table.c.consent_hash,
            )
        )
        .where(table.c.contributor == contributor, table.c.status == RelayStatus.recorded)
        .order_by(table.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def active_consent(*, session: Session, contributor: str) -> Consent | None:
    """The contributor's newest consent that is recorded on chain and not revoked."""
    row = session.exec(
        select(Consent)
        .where(Consent.contributor == contributor, Consent.status == RelayStatus.recorded)
        .order_by(col(Consent.id).desc())
    ).first()
    return row if row is not None and row.revoke_status != RelayStatus.recorded else None


def has_active_consent(*, session: Session, contributor: str) -> bool:
    return active_consent(session=session, contributor=contributor) is not None
