"""Sign-In with Ethereum: single-use expiring nonces, strict message checks, session tokens."""

import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col

from backend.auth.models import AuthSession, SiweNonce
from backend.core.config import Settings
from backend.core.errors import BadRequest, Unauthorized
from backend.core.siwe import SiweError, SiweMessage, format_time, parse_message, recover_signer
from backend.core.time import as_utc, utcnow

SIGN_IN_STATEMENT = "Sign in to Provenant."
# Clocks of wallets and servers drift; a message issued this far in the future is accepted.
CLOCK_SKEW = timedelta(seconds=60)


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


def _hash_token(token: str) -> str:
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
        token_hash=_hash_token(token),
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
    row = session.get(AuthSession, _hash_token(token))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("session token is not valid; sign in again")
    if row.expires_at <= utcnow():
        raise Unauthorized("session has expired; sign in again")
    return row


class _SessionCache:
    """Addresses of recently resolved tokens, per process.

    Every authenticated request resolves its token, and the contributor's loop makes many
    requests a second; reading the session row each time was one query in eight on that path.
    A sign-out evicts at once in the process that handles it, and within
    ``SESSION_CACHE_TTL_S`` in the others. Expiry is checked on every hit."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s, self._max = ttl_s, max_entries
        self._entries: dict[str, tuple[str, datetime, float]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> tuple[str, datetime] | None:
        entry = self._entries.get(token_hash)
        if entry is None or time.monotonic() - entry[2] > self._ttl_s:
            return None
        return entry[0], entry[1]

    def put(self, token_hash: str, address: str, expires_at: datetime) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()  # rare; simpler than LRU and bounded all the same
            self._entries[token_hash] = (address, expires_at, time.monotonic())

    def evict(self, token_hash: str) -> None:
        with self._lock:
            self._entries.pop(token_hash, None)


SESSION_CACHE_TTL_S = 5.0
_session_cache = _SessionCache(SESSION_CACHE_TTL_S, max_entries=100_000)


def cached_session_address(token: str) -> str | None:
    """The signed-in address for a bearer token if this process resolved it recently (None:
    ask session_address); Unauthorized once the cached session has expired."""
    token_hash = _hash_token(token)
    cached = _session_cache.get(token_hash)
    if cached is None:
        return None
    address, expires_at = cached
    if expires_at <= utcnow():
        _session_cache.evict(token_hash)
        raise Unauthorized("session has expired; sign in again")
    return address


def session_address(*, session: Session, token: str) -> str:
    """The signed-in address for a bearer token, or Unauthorized (cached briefly, see above)."""
    cached = cached_session_address(token)
    if cached is not None:
        return cached
    token_hash = _hash_token(token)
    row = resolve_session(session=session, token=token)
    _session_cache.put(token_hash, row.address, row.expires_at)
    return row.address


def sign_out(*, session: Session, token: str) -> None:
    row = resolve_session(session=session, token=token)
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
    _session_cache.evict(row.token_hash)
