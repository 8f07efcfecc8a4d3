from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class BatchStatus(StrEnum):
    built = "built"  # tree stored, root known, not yet seen on chain
    anchored = "anchored"  # ProvenanceRegistry holds the root: tx_hash is set
    conflict = "conflict"  # the chain holds another root under this batch id


class Batch(SQLModel, table=True):
    """A Merkle batch of contribution leaves; its id is the on-chain batch id."""

    __tablename__ = "batch"
    # Batch ids are on-chain ids: never reuse one, even after rows are deleted (SQLite would).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=BatchStatus.built, index=True, max_length=16)
    root: str = Field(max_length=66)
    leaf_count: int
    tree_digest: str = Field(max_length=64)  # SHA-256 of the standard-v1 dump, in storage
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=1000)
    created_at: datetime
    anchored_at: datetime | None = None


class BatchPublic(SQLModel):
    batch_id: int
    status: str
    root: str
    leaf_count: int
    tree_hash: str
    tx_hash: str | None
    block_number: int | None
    registry: str | None
    chain_id: int | None
    created_at: datetime
    anchored_at: datetime | None


class LeafPublic(SQLModel):
    contributor: str
    project_id: int
    item_hash: str
    answer_hash: str
    consent_hash: str
    submitted_at: int


class ContributionPublic(SQLModel):
    answer_id: int
    status: str  # "pending" until its batch is anchored, then "anchored"
    leaf: LeafPublic
    leaf_encoding: list[str]
    leaf_hash: str
    batch: BatchPublic | None
    proof: list[str] | None
