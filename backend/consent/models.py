from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger
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
# A 65-byte signature is 132 hex characters with its 0x; the column holds 1000.
MAX_SIGNATURE_CHARS = 1000


class ConsentRequest(SQLModel):
    """What to prepare typed data for."""

    scopes: list[str] = Field(max_length=64)
    terms_version: int | None = Field(default=None, ge=1, le=MAX_TERMS_VERSION)


class ConsentSubmit(SQLModel):
    """The signed Consent message's variable fields and the contributor's signature."""

    terms_version: int = Field(ge=1, le=MAX_TERMS_VERSION)
    scopes: int = Field(ge=1, le=MAX_SCOPES)
    nonce: int = Field(ge=0, le=MAX_NONCE)
    deadline: int = Field(ge=0, le=MAX_DEADLINE)
    signature: str = Field(min_length=1, max_length=MAX_SIGNATURE_CHARS)


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
