import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from sqlalchemy import BigInteger, SmallInteger
from sqlmodel import Field, SQLModel


class RelayStatus(StrEnum):
    pending = "pending"  # signed and stored; the worker has not yet seen it on chain
    recorded = "recorded"  # on chain: tx_hash and block_number are set
    failed = "failed"  # the contract refused it for good; ``error`` says why


class RelayAction(StrEnum):
    record = "record"
    revoke = "revoke"


class Consent(SQLModel, table=True):
    """A contributor's signed consent and, if any, its signed revocation.

    The chain is the source of truth; this row caches it and keeps the signatures so the
    worker can relay them until the chain has them.
    """

    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    consent_hash: str = Field(unique=True, max_length=66)
    contributor: str = Field(index=True, max_length=42)
    terms_version: int
    terms_hash: str = Field(max_length=66)
    scopes: int
    royalty_bps: int
    nonce: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    # Unix seconds, the last second the consent may be used; NULL (version 1) or 0: no end.
    valid_until: int | None = Field(default=None, sa_type=BigInteger)
    # Which typed data was signed: 1 = Consent, 2 = ConsentV2 (backend/consent/typed_data.py).
    typed_version: int = Field(default=1, sa_type=SmallInteger)
    signature: str = Field(max_length=1000)
    status: str = Field(default=RelayStatus.pending, index=True, max_length=16)
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    recorded_at: datetime | None = None
    error: str | None = Field(default=None, max_length=1000)
    relay_attempts: int = 0

    revoke_status: str | None = Field(default=None, index=True, max_length=16)
    revoke_nonce: int | None = Field(default=None, sa_type=BigInteger)
    revoke_deadline: int | None = Field(default=None, sa_type=BigInteger)
    revoke_signature: str | None = Field(default=None, max_length=1000)
    revoke_tx_hash: str | None = Field(default=None, max_length=66)
    revoke_block_number: int | None = Field(default=None, sa_type=BigInteger)
    revoked_at: datetime | None = None
    revoke_error: str | None = Field(default=None, max_length=1000)

    created_at: datetime
    updated_at: datetime


# What a signed message's numbers may be: what both the contract's types (typed_data.py:
# termsVersion uint32, scopes uint64, nonce and deadline uint256) and the columns they are
# kept in (INTEGER, BIGINT: signed) hold. Beyond them a value used to reach the database
# driver and fail there as a 500.
MAX_TERMS_VERSION = 2**31 - 1
MAX_SCOPES = 2**63 - 1
MAX_NONCE = 2**63 - 1
MAX_DEADLINE = 2**63 - 1
# validUntil is a uint64 on chain; the BIGINT column holds less, and no end date the API takes
# comes near either (service.check_end_date bounds it to END_DATE_HORIZON_S ahead).
MAX_VALID_UNTIL = 2**63 - 1
# A 65-byte signature is 132 hex characters with its 0x; the column holds 1000.
MAX_SIGNATURE_CHARS = 1000


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def end_of_day(day: date) -> int:
    """The last second of ``day`` in UTC, as unix seconds: an end date means "until the end
    of that day"."""
    return int(datetime.combine(day, time(23, 59, 59), tzinfo=UTC).timestamp())


def _end_date(value: Any) -> Any:
    """An ISO date ("2028-12-31") as the unix second its day ends (UTC); anything else is left
    to the integer validation that follows."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO date (YYYY-MM-DD) or unix seconds")
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            raise ValueError("expected an ISO date (YYYY-MM-DD) or unix seconds")
        try:
            return end_of_day(date.fromisoformat(value))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a date: {exc}") from None
    return value


# The end date a contributor asks for: an ISO date, usable until the end of that day (UTC),
# or unix seconds; validated into unix seconds.
EndDate = Annotated[
    int,
    BeforeValidator(_end_date),
    Field(le=MAX_VALID_UNTIL),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "integer", "minimum": 1, "maximum": MAX_VALID_UNTIL},
            ],
            "description": "an ISO date (usable until 23:59:59 UTC that day) or unix seconds",
        }
    ),
]


class ConsentRequest(SQLModel):
    """What to prepare typed data for. The typed data is always a ConsentV2; without
    ``valid_until`` its validUntil is 0 (no end date)."""

    scopes: list[str] = Field(max_length=64)
    terms_version: int | None = Field(default=None, ge=1, le=MAX_TERMS_VERSION)
    valid_until: EndDate | None = None


class ConsentSubmit(SQLModel):
    """The signed message's variable fields and the contributor's signature.

    ``valid_until`` says which message was signed: absent or null, a version-1 Consent; an
    integer, a ConsentV2 with that validUntil (0 = no end date), as the typed data the API
    prepares has it."""

    terms_version: int = Field(ge=1, le=MAX_TERMS_VERSION)
    scopes: int = Field(ge=1, le=MAX_SCOPES)
    nonce: int = Field(ge=0, le=MAX_NONCE)
    deadline: int = Field(ge=0, le=MAX_DEADLINE)
    signature: str = Field(min_length=1, max_length=MAX_SIGNATURE_CHARS)
    valid_until: int | None = Field(default=None, ge=0, le=MAX_VALID_UNTIL)


class RevocationSubmit(SQLModel):
    nonce: int = Field(ge=0, le=MAX_NONCE)
    deadline: int = Field(ge=0, le=MAX_DEADLINE)
    signature: str = Field(min_length=1, max_length=MAX_SIGNATURE_CHARS)


class TermsPublic(SQLModel):
    version: int
    title: str
    text: str
    terms_hash: str
    royalty_bps: int
    scopes: list[dict[str, str]]


class TypedDataPublic(SQLModel):
    typed_data: dict
    digest: str


class RevocationPublic(SQLModel):
    status: str
    tx_hash: str | None
    block_number: int | None
    revoked_at: datetime | None
    error: str | None


class ConsentPublic(SQLModel):
    consent_hash: str
    contributor: str
    terms_version: int
    terms_hash: str
    scopes: list[str]
    royalty_bps: int
    # The end of the consent (the last second it may be used), or null for none.
    valid_until: datetime | None
    typed_version: int
    status: str
    tx_hash: str | None
    block_number: int | None
    recorded_at: datetime | None
    error: str | None
    revocation: RevocationPublic | None
    registry: str
    chain_id: int


class ConsentStatusPublic(SQLModel):
    active: ConsentPublic | None
    history: list[ConsentPublic]
