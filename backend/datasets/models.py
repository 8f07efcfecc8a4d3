"""Dataset versions, what they freeze, their exports, and the marketplace mirror."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.core.params import MAX_ROW_ID, Address

# What a version's price and split may be: DatasetMarketplace keeps prices below 2**128 (so a
# version's pool total fits its packed slot); basis points sum to 10 000.
MAX_PRICE = 2**128 - 1
BPS = 10_000
# A chosen subset is at most this many item ids (the JSON body limit bounds it too).
MAX_SELECTED_ITEMS = 20_000


class VersionStatus(StrEnum):
    building = "building"  # the worker is freezing items, writing the manifest and exports
    built = "built"  # manifest and exports stored; waiting for its registration on chain
    failed = "failed"  # the build stopped; ``error`` says why (the requester may discard it)
    published = "published"  # registered in DatasetMarketplace: buyable
    withdrawn = "withdrawn"  # registered, then withdrawn from sale (licences stay valid)


class DatasetVersion(SQLModel, table=True):
    """A frozen, numbered version of a project's decided items and its terms of sale."""

    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    number: int
    status: str = Field(default=VersionStatus.building, index=True, max_length=16)
    # The allowed use (a consent scope) and the licence terms.
    scope: str = Field(max_length=64)
    scope_bit: int
    license_spdx: str | None = Field(default=None, max_length=64)
    license_terms_hash: str = Field(max_length=66)
    price: str = Field(max_length=78)
    token: str = Field(max_length=42)
    fee_bps: int
    requester_bps: int
    pool_bps: int
    # What goes in: the selection (None: every decided item) and the rules.
    selection: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    min_answers: int
    exclude_low_confidence: bool = False
    formats: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Whether anyone (an auditor) may download the manifest of the published version. It holds
    # the labels and answers but none of the items' content; exports stay licence-only.
    public_manifest: bool = False
    supersedes: int | None = None  # the version number this one follows
    # Consents are judged at this instant (unix seconds): the publication time.
    published_unix: int = Field(sa_type=BigInteger)
    # Progress of the build, for the requester.
    stage: str = Field(default="queued", max_length=32)
    progress_done: int = 0
    progress_total: int = 0
    error: str | None = Field(default=None, max_length=1000)
    # What the build found.
    item_count: int = 0
    answer_count: int = 0
    contributor_count: int = 0
    excluded: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    item_root: str | None = Field(default=None, max_length=66)
    weight_root: str | None = Field(default=None, max_length=66)
    total_weight: str | None = Field(default=None, max_length=78)
    manifest_digest: str | None = Field(default=None, max_length=64)  # SHA-256 in storage
    manifest_hash: str | None = Field(default=None, max_length=66)  # keccak256, as registered
    manifest_bytes: int | None = Field(default=None, sa_type=BigInteger)
    # Its registration on chain (mirrored from DatasetMarketplace's events).
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    registered_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class DatasetItem(SQLModel, table=True):
    """An item as a version froze it: its position, final label and confidence."""

    __tablename__ = "dataset_item"

    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    index: int = Field(primary_key=True)  # position in the version: order of content hash
    item_id: int = Field(foreign_key="item.id")
    content_hash: str = Field(max_length=66)
    label: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    label_hash: str = Field(max_length=66)
    confidence: float
    n_answers: int


class DatasetAnswer(SQLModel, table=True):
    """An answer that went into one of a version's labels."""

    __tablename__ = "dataset_answer"
    __table_args__ = (Index("ix_dataset_answer_contributor", "contributor", "version_id"),)

    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    answer_id: int = Field(foreign_key="answer.id", primary_key=True)
    item_index: int
    contributor: str = Field(max_length=42)
    accepted: bool  # the project's quality control accepted (and paid) it: it carries weight


class DatasetContributor(SQLModel, table=True):
    """A contributor's share of a version: the leaf of its weight tree."""

    __tablename__ = "dataset_contributor"

    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    address: str = Field(max_length=42, primary_key=True)
    answers: int
    weight: str = Field(max_length=78)
    consents: list[str] = Field(sa_column=Column(JSON, nullable=False))


class DatasetExport(SQLModel, table=True):
    """One export format of a version: a tar archive in storage, how many files it holds
    besides its SHA256SUMS, and that file's digest, which vouches for the others'."""

    __tablename__ = "dataset_export"

    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    format: str = Field(max_length=32, primary_key=True)
    archive_digest: str = Field(max_length=64)  # SHA-256 of the archive = its storage name
    archive_bytes: int = Field(sa_type=BigInteger)
    file_count: int = Field(sa_type=BigInteger)
    checksums_sha256: str = Field(max_length=64)
    checksums_bytes: int = Field(sa_type=BigInteger)


class MarketplaceEvent(SQLModel, table=True):
    """Every DatasetMarketplace event the mirror applied, once each."""

    __tablename__ = "marketplace_event"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    block_number: int = Field(sa_type=BigInteger, index=True)
    log_index: int
    tx_hash: str = Field(max_length=66)
    name: str = Field(max_length=32)
    version_id: str = Field(max_length=78, index=True)  # the on-chain version id, a uint256
    args: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Licence(SQLModel, table=True):
    """A licence bought on chain (mirrored from ``Licensed``)."""

    __tablename__ = "licence"
    __table_args__ = (UniqueConstraint("chain_version_id", "buyer"),)

    id: int | None = Field(default=None, primary_key=True)
    chain_version_id: str = Field(max_length=78, index=True)
    buyer: str = Field(max_length=42, index=True)
    token: str = Field(max_length=42)
    price: str = Field(max_length=78)
    pool: str = Field(max_length=78)
    tx_hash: str = Field(max_length=66)
    block_number: int = Field(sa_type=BigInteger)


class RoyaltyClaim(SQLModel, table=True):
    """What an account has claimed of a version's pool so far (mirrored from claims)."""

    __tablename__ = "royalty_claim"

    chain_version_id: str = Field(max_length=78, primary_key=True)
    account: str = Field(max_length=42, primary_key=True)
    claimed: str = Field(max_length=78)


# --- API shapes ---


class VersionSplit(SQLModel):
    """How a sale's price is divided; the platform fee is the platform's setting."""

    requester_bps: int | None = Field(default=None, ge=0, le=BPS)
    pool_bps: int | None = Field(default=None, ge=0, le=BPS)


class VersionCreate(SQLModel):
    scope: str = Field(min_length=1, max_length=64)
    license_spdx: str | None = Field(default=None, min_length=1, max_length=64)
    license_terms: str | None = Field(default=None, min_length=1, max_length=100_000)
    price: int = Field(ge=0, le=MAX_PRICE)
    token: Address | None = None
    pool_bps: int | None = Field(default=None, ge=0, le=BPS)
    item_ids: list[Annotated[int, PydanticField(ge=1, le=MAX_ROW_ID)]] | None = Field(
        default=None, min_length=1, max_length=MAX_SELECTED_ITEMS
    )
    min_answers: int | None = Field(default=None, ge=1, le=100)
    exclude_low_confidence: bool = False
    formats: list[str] | None = Field(default=None, max_length=16)
    public_manifest: bool = False


class VersionPublic(SQLModel):
    id: int
    project_id: int
    version: int
    status: str
    title: str
    task_type: str
    scope: str
    license_spdx: str | None
    license_terms_hash: str
    price: str
    token: str
    split: dict[str, int]
    supersedes: int | None
    changes: dict[str, Any] | None
    public_manifest: bool
    published_at: datetime
    stage: str
    progress: dict[str, int]
    error: str | None
    counts: dict[str, int]
    excluded: dict[str, Any]
    method: dict[str, Any] | None
    item_root: str | None
    weight_root: str | None
    total_weight: str | None
    manifest_hash: str | None
    chain_version_id: str
    marketplace: str | None
    chain_id: int | None
    tx_hash: str | None
    formats: list[dict[str, Any]]
    provenance: dict[str, Any]
    sales: dict[str, Any] | None = None


class UnsignedTx(SQLModel):
    description: str
    chain_id: int
    to: str
    data: str
    value: str = "0"


class RegistrationPlan(SQLModel):
    """Two ways to register a built version: the requester's wallet sends ``transaction``, or
    signs ``typed_data`` and posts the signature for the operator to relay."""

    chain_version_id: str
    transaction: UnsignedTx
    typed_data: dict[str, Any]
    digest: str


class RegistrationSubmit(SQLModel):
    signature: str = Field(min_length=1, max_length=1000)
    deadline: int = Field(ge=0, le=2**63 - 1)


class LicencePlan(SQLModel):
    """approve + buy for the buyer's wallet, in that order."""

    chain_version_id: str
    price: str
    token: str
    transactions: list[UnsignedTx]


class PreviewItem(SQLModel):
    index: int
    content_hash: str
    label: dict[str, Any]
    label_hash: str
    confidence: float
    n_answers: int
    text: str | None
    thumbnail_url: str | None
    proof: list[str]


class Preview(SQLModel):
    version_id: int
    seed: str
    item_root: str
    leaf_encoding: list[str]
    rule: str
    indices: list[int]
    items: list[PreviewItem]


class RoyaltyProof(SQLModel):
    version_id: int
    chain_version_id: str
    account: str
    weight: str
    total_weight: str
    proof: list[str]
    pool: str
    claimed: str
    claimable: str
    # claimRoyalty for the contributor's own wallet (the relayed claim sends the same call).
    transaction: UnsignedTx | None = None


class RelayedRoyaltyClaim(SQLModel):
    tx_hash: str
    amount: str


class Notice(SQLModel):
    kind: str
    version_id: int
    project_id: int
    version: int
    contributor: str
    consent_hash: str
    revoked_at: datetime | None
    answers: int
    message: str
