"""Sign-In with Ethereum: single-use expiring nonces, strict message checks, session tokens."""

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, bindparam, update
from sqlmodel import Session, col, select

from backend.auth.models import AuthSession, SiweNonce
from backend.core.config import Settings
from backend.core.errors import BadRequest, Unauthorized
from backend.core.siwe import SiweError, SiweMessage, format_time, parse_message, recover_signer
from backend.core.time import as_utc, utcnow

SIGN_IN_STATEMENT = "Sign in to Provenant."
# Clocks of wallets and servers drift; a message issued this far in the future is accepted.
CLOCK_SKEW = timedelta(seconds=60)
NOT_A_SESSION = "session token is not valid; sign in again"


def issue_nonce(*, session: Session, settings: Settings) -> SiweNonce:
    """Create a single-use nonce that expires after the configured TTL."""
    now = utcnow()
    nonce = SiweNonce(
        nonce=secrets.token_hex(16),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.siwe_nonce_ttl_s),
    )
    session.add(nonce)
    session.commit()
    session.refresh(nonce)
    return nonce


def build_sign_in_message(
    *, settings: Settings, chain_id: int, address: str, nonce: SiweNonce
) -> SiweMessage:
    """The message a wallet should show for signing in with ``nonce``."""
    return SiweMessage(
        domain=settings.siwe_domain,
        address=address,
        statement=SIGN_IN_STATEMENT,
        uri=settings.siwe_uri,
        chain_id=chain_id,
        nonce=nonce.nonce,
        issued_at=nonce.created_at,
        expiration_time=nonce.expires_at,
    )


def _check_message(message: SiweMessage, *, settings: Settings, chain_id: int) -> None:
    if message.domain != settings.siwe_domain:
        raise Unauthorized(
            f"message is for domain {message.domain!r}, "
            f"but this service is {settings.siwe_domain!r}"
        )
    base = settings.siwe_uri.rstrip("/")
    if message.uri != base and not message.uri.startswith(base + "/"):
        raise Unauthorized(f"message URI {message.uri!r} is not under {settings.siwe_uri!r}")
    if message.chain_id != chain_id:
        raise Unauthorized(
            f"message is for chain {message.chain_id}, but this service is on {chain_id}"
        )
    now = utcnow()
    if message.expiration_time is not None and as_utc(message.expiration_time) <= now:
        raise Unauthorized(f"message expired at {format_time(message.expiration_time)}")
    if message.not_before is not None and as_utc(message.not_before) > now + CLOCK_SKEW:
        raise Unauthorized(f"message is not valid before {format_time(message.not_before)}")
    issued = as_utc(message.issued_at)
    if issued > now + CLOCK_SKEW:
        raise Unauthorized("message 'Issued At' is in the future")
    if issued < now - timedelta(seconds=settings.siwe_max_message_age_s):
        raise Unauthorized(f"message was issued at {format_time(message.issued_at)}, too long ago")


def _consume_nonce(*, session: Session, nonce: str) -> None:
    now = utcnow()
    # One conditional UPDATE, so two concurrent sign-ins with one nonce cannot both win.
    result: CursorResult = session.execute(  # type: ignore[assignment]
        update(SiweNonce)
        .where(
            col(SiweNonce.nonce) == nonce,
            col(SiweNonce.used_at).is_(None),
            col(SiweNonce.expires_at) > now,
        )
        .values(used_at=now)
    )
    if result.rowcount == 1:
        return
    session.rollback()
    row = session.get(SiweNonce, nonce)
    if row is None:
        raise Unauthorized("nonce was not issued by this service")
    if row.used_at is not None:
        raise Unauthorized("nonce has already been used; request a new one")
    raise Unauthorized("nonce has expired; request a new one")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    *, session: Session, settings: Settings, chain_id: int, message_text: str, signature: str
) -> tuple[str, AuthSession]:
    """Verify a signed EIP-4361 message and open a session; return (token, session row)."""
    try:
        message = parse_message(message_text)
    except SiweError as exc:
        raise BadRequest(f"invalid sign-in message: {exc}") from exc
    _check_message(message, settings=settings, chain_id=chain_id)
    try:
        signer = recover_signer(message_text, signature)
    except SiweError as exc:
        raise BadRequest(str(exc)) from exc
    if signer != message.address:
        raise Unauthorized(f"signature is not from {message.address}")
    _consume_nonce(session=session, nonce=message.nonce)

    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = AuthSession(
        token_hash=hash_token(token),
        address=message.address,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.session_ttl_s),
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return token, row


def resolve_session(*, session: Session, token: str) -> AuthSession:
    """Return the live session for a bearer token, or raise Unauthorized."""
    row = session.get(AuthSession, hash_token(token))
    if row is None:
        raise Unauthorized(NOT_A_SESSION)
    live_address((row.address, row.expires_at, row.revoked_at), utcnow())
    return row


# Every authenticated request runs this one primary-key read, in every API process: a
# sign-out is then refused everywhere from the moment it commits. Nothing about a session is
# cached between requests, because the only thing worth caching (token -> address) is in the
# very row that must be read anyway to see a revocation.
SESSION_BY_TOKEN = select(
    col(AuthSession.address), col(AuthSession.expires_at), col(AuthSession.revoked_at)
).where(col(AuthSession.token_hash) == bindparam("token_hash"))


def live_address(row: Sequence[Any] | None, now: datetime) -> str:
    """The address of a row of SESSION_BY_TOKEN (address, expires_at, revoked_at; a SQLAlchemy
    row or an asyncpg record) if the session is live at ``now``; Unauthorized naming why not."""
    if row is None:
        raise Unauthorized(NOT_A_SESSION)
    address, expires_at, revoked_at = row
    if revoked_at is not None:
        raise Unauthorized(NOT_A_SESSION)
    if as_utc(expires_at) <= now:
        raise Unauthorized("session has expired; sign in again")
    return str(address)


def session_address(*, connection: Connection, token: str) -> str:
    """The signed-in address for a bearer token, read now; Unauthorized if the session is
    unknown, revoked or expired."""
    row = connection.execute(SESSION_BY_TOKEN, {"token_hash": hash_token(token)}).first()
    return live_address(row, utcnow())


def sign_out(*, session: Session, token: str) -> None:
    """Revoke the session; committed before this returns, so every process refuses it next."""
    row = resolve_session(session=session, token=token)
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
