"""Consent rules: prepare what the contributor signs, check it, relay it, mirror the chain."""

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, CursorResult, ScalarSelect, and_, case, or_, update
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

# How far ahead an end date may be: 100 years of 365.25 days. A consent meant to last longer
# has no end date (validUntil 0); a larger number is far more likely a unit mix-up
# (milliseconds for seconds) than an intent.
END_DATE_HORIZON_S = 36_525 * 86_400


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


def check_end_date(valid_until: int, *, now: int) -> None:
    """Refuse an end date (unix seconds) that is not in the future, or is more than
    END_DATE_HORIZON_S ahead; the message names the field, ``valid_until``."""
    if valid_until <= now:
        raise BadRequest(
            f"valid_until {valid_until} ({_iso(valid_until)}) is not in the future; "
            "choose a later end date, or none"
        )
    if valid_until > now + END_DATE_HORIZON_S:
        raise BadRequest(
            f"valid_until {valid_until} is more than 100 years ahead; "
            "for a consent without an end date leave valid_until out"
        )


def _iso(unix: int) -> str:
    try:
        return datetime.fromtimestamp(unix, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return "beyond any calendar"


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
        valid_until=data.valid_until,
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
    valid_until: int | None = None,
) -> TypedDataPublic:
    """The EIP-712 ConsentV2 the contributor must sign for these scopes, terms and end date."""
    terms = terms_mod.get_terms(terms_version) if terms_version else terms_mod.current_terms()
    scopes = terms_mod.scopes_from_names(scope_names, terms)
    now = int(time.time())
    deadline = now + settings.consent_signature_ttl_s
    if valid_until is not None:
        check_end_date(valid_until, now=now)
        # Recordable only before its end (ConsentRegistryEndInPast otherwise): a signature
        # that could still be relayed at the end date would be refused by the contract.
        deadline = min(deadline, valid_until - 1)
    _ensure_nothing_pending(session, contributor)
    message = td.ConsentMessage(
        contributor=contributor,
        terms_version=terms.version,
        terms_hash=terms.terms_hash,
        scopes=scopes,
        royalty_bps=terms.royalty_bps,
        nonce=_onchain_nonce(chain, contributor),
        deadline=deadline,
        valid_until=valid_until or 0,
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
    """Check a signed Consent or ConsentV2 and store it for relaying; idempotent for the same
    signature.

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
    registry = chain.deployments.address_of(REGISTRY)
    typed = td.consent_typed_data(message, chain_id=chain.chain_id, registry=registry)
    consent_hash = td.digest(typed)
    existing = _consent_by_hash(session, consent_hash)
    if existing is not None:
        return existing  # the same signed message submitted again
    if data.valid_until:
        check_end_date(data.valid_until, now=int(time.time()))
        if data.valid_until <= data.deadline:
            raise BadRequest(
                f"valid_until {data.valid_until} is not after the signature's deadline "
                f"{data.deadline}: the registry would refuse the consent if it were recorded "
                "after its end; request new typed data"
            )
    try:
        _check_signature(typed, signature, contributor, message.primary_type)
    except InvalidSignature as exc:
        if data.valid_until is None:
            _explain_missing_end_date(exc, message, signature, chain.chain_id, registry)
        raise
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
        valid_until=data.valid_until,
        typed_version=message.typed_version,
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


def _explain_missing_end_date(
    refused: InvalidSignature,
    message: td.ConsentMessage,
    signature: str,
    chain_id: int,
    registry: str,
) -> None:
    """A signature checked as a version-1 Consent that is the contributor's ConsentV2 with no
    end date (what POST /consent/typed-data prepares): say which field is missing."""
    v2 = td.consent_typed_data(
        replace(message, valid_until=0), chain_id=chain_id, registry=registry
    )
    try:
        signer = td.recover(v2, signature)
    except Exception:  # malformed: the refusal already says so
        return
    if signer == message.contributor:
        raise InvalidSignature(
            "signature is over a ConsentV2 (the typed data POST /consent/typed-data prepares) "
            "but valid_until was not sent, so it was checked as a version-1 Consent; send "
            "valid_until, the message's validUntil (0 for no end date)"
        ) from refused


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


# The fields of ConsentRegistry's ConsentRecord the mirror reads.
_RECORD_TIMES = ("recordedAt", "revokedAt", "validUntil")


def _onchain_record(chain: ChainClient, consent_hash: str) -> dict[str, int]:
    """The record's times (unix seconds, 0 for none): recordedAt, revokedAt, validUntil (0
    for a version-1 consent; for a ConsentV2 the row's own, which the consent hash binds)."""
    fn = _registry(chain).functions.consentRecord(consent_hash)
    rec = chain.call(fn)
    # web3 returns the struct as a tuple in declaration order: read it by the ABI's names.
    names = [c["name"] for c in fn.abi["outputs"][0]["components"]]
    fields = dict(zip(names, rec, strict=True))
    return {name: int(fields.get(name, 0)) for name in _RECORD_TIMES}


def _block_time(chain: ChainClient, block_number: int) -> int:
    block = chain.block(block_number)
    if block is None:  # the node that gave the receipt has the block; another may lag
        raise ChainUnavailable(f"block {block_number} is not available yet")
    return int(block["timestamp"])


def _mark_recorded(
    row: Consent, action: RelayAction, tx_hash: str, block_number: int, *, at: int
) -> None:
    """Mirror the chain: the transaction, and ``at``, the block time the registry recorded
    (recordedAt or revokedAt), which is what decides whether the consent was in force."""
    when = datetime.fromtimestamp(at, UTC)
    if action is RelayAction.record:
        row.status, row.tx_hash, row.block_number = RelayStatus.recorded, tx_hash, block_number
        row.recorded_at, row.error = when, None
    else:
        row.revoke_status, row.revoke_tx_hash = RelayStatus.recorded, tx_hash
        row.revoke_block_number, row.revoked_at, row.revoke_error = block_number, when, None
    row.updated_at = utcnow()


def _send(chain: ChainClient, row: Consent, action: RelayAction) -> Any:
    fns = _registry(chain).functions
    if action is RelayAction.record:
        signature = bytes.fromhex(row.signature[2:])
        if row.typed_version == 2:
            return chain.transact(
                fns.recordConsentV2(
                    row.contributor,
                    row.terms_version,
                    row.terms_hash,
                    row.scopes,
                    row.royalty_bps,
                    row.valid_until or 0,
                    row.nonce,
                    row.deadline,
                    signature,
                )
            )
        return chain.transact(
            fns.recordConsent(
                row.contributor,
                row.terms_version,
                row.terms_hash,
                row.scopes,
                row.royalty_bps,
                row.nonce,
                row.deadline,
                signature,
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
        record = _onchain_record(chain, row.consent_hash)
        if record[field] == 0:
            try:
                result = _send(chain, row, action)
                at = _block_time(chain, result.block_number)
                _mark_recorded(row, action, result.tx_hash, result.block_number, at=at)
            except ChainRevert as exc:
                # A concurrent relay may have won; otherwise the contract refused for good.
                record = _onchain_record(chain, row.consent_hash)
                if record[field] == 0:
                    if action is RelayAction.record:
                        row.status, row.error = RelayStatus.failed, exc.detail
                    else:
                        row.revoke_status, row.revoke_error = RelayStatus.failed, exc.detail
                    row.updated_at = utcnow()
                else:
                    tx = _find_event_tx(chain, event, row.consent_hash)
                    _mark_recorded(row, action, *tx, at=record[field])
        else:
            tx = _find_event_tx(chain, event, row.consent_hash)
            _mark_recorded(row, action, *tx, at=record[field])
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
        valid_until=datetime.fromtimestamp(row.valid_until, UTC) if row.valid_until else None,
        typed_version=row.typed_version,
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
    # The newest recorded consent is the one in force, unless it is revoked or has ended.
    newest = next(
        ((p, r) for p, r in zip(history, rows, strict=True) if r.status == RelayStatus.recorded),
        None,
    )
    active = newest[0] if newest is not None and _in_force(newest[1]) else None
    return ConsentStatusPublic(active=active, history=history)


def _in_force(row: Consent, now: int | None = None) -> bool:
    """Whether a recorded consent still counts: not revoked, and its end date not passed."""
    now = int(time.time()) if now is None else now
    return row.revoke_status != RelayStatus.recorded and (
        not row.valid_until or row.valid_until >= now
    )


def active_consent_hash(
    contributor: str | BindParameter[str], now_unix: int | BindParameter[int]
) -> ScalarSelect[str | None]:
    """SQL expression: the hash of the contributor's active consent, else NULL.

    The same rule as active_consent, for hot paths that fold it into a larger query. The
    hot paths build their statements once, so the time arrives as a bound parameter
    (``now_unix``, unix seconds), never as a value frozen into the statement."""
    table = Consent.__table__  # type: ignore[attr-defined]
    return (
        select(
            case(
                (table.c.revoke_status == RelayStatus.recorded, None),
                # An end date that has passed (valid_until NULL or 0: none).
                (and_(table.c.valid_until != 0, table.c.valid_until < now_unix), None),
                else_=table.c.consent_hash,
            )
        )
        .where(table.c.contributor == contributor, table.c.status == RelayStatus.recorded)
        .order_by(table.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def active_consent(*, session: Session, contributor: str, now: int | None = None) -> Consent | None:
    """The contributor's newest consent recorded on chain, if it is neither revoked nor
    past its end date (at ``now``, unix seconds; the current time by default).

    A newer consent replaces the older ones, as ConsentRegistry.activeConsentOf does: once
    it ends or is revoked, the contributor has no active consent until they sign another."""
    row = session.exec(
        select(Consent)
        .where(Consent.contributor == contributor, Consent.status == RelayStatus.recorded)
        .order_by(col(Consent.id).desc())
    ).first()
    return row if row is not None and _in_force(row, now) else None


def has_active_consent(*, session: Session, contributor: str, now: int | None = None) -> bool:
    return active_consent(session=session, contributor=contributor, now=now) is not None
