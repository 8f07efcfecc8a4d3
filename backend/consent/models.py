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


class ConsentRequest(SQLModel):
    """What to prepare typed data for."""

    scopes: list[str]
    terms_version: int | None = None


class ConsentSubmit(SQLModel):
    """The signed Consent message's variable fields and the contributor's signature."""

    terms_version: int
    scopes: int
    nonce: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    signature: str


class RevocationSubmit(SQLModel):
    nonce: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    signature: str


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
