from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class LeaseStatus(StrEnum):
    leased = "leased"
    answered = "answered"
    expired = "expired"


# The live-lease predicate of the partial index below. A query uses the index only if it
# repeats the predicate with the literal (tasks/service.py, _loop_columns, does, with
# LEASED_SQL): a bound parameter in its place keeps a generic plan from the index.
LEASED_SQL = f"'{LeaseStatus.leased.value}'"
LIVE_LEASE = f"status = {LEASED_SQL}"


class Task(SQLModel, table=True):
    """A lease of one item to one contributor; at most one per (item, contributor)."""

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("item_id", "contributor"),
        # A contributor's tasks in a project: what they have seen.
        Index("ix_task_contributor_project", "contributor", "project_id"),
        # Their live leases only (migration 0007 says why), for the queries that repeat the
        # predicate with its literal (tasks/service.py, _loop_columns). Unique (0009): one
        # lease at a time per contributor and project, whatever requests race; an expired
        # lease counts until a reclaim or the contributor's next lease retires it.
        Index(
            "ix_task_live_lease",
            "contributor",
            "project_id",
            unique=True,
            postgresql_where=text(LIVE_LEASE),
            sqlite_where=text(LIVE_LEASE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    item_id: int = Field(foreign_key="item.id")  # indexed by (item_id, contributor)
    contributor: str = Field(max_length=42)  # indexed by (contributor, project_id)
    status: str = Field(default=LeaseStatus.leased, max_length=16)
    leased_at: datetime
    expires_at: datetime = Field(index=True)
    answered_at: datetime | None = None


class Answer(SQLModel, table=True):
    """A contributor's answer; also the contribution leaf anchored on chain."""

    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("contributor", "idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", unique=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    contributor: str = Field(max_length=42)  # indexed by (contributor, idempotency_key)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    idempotency_key: str = Field(max_length=100)
    time_on_task_ms: int
    submitted_at: datetime
    # The leaf: (contributor, project_id, item content hash, answer_hash, consent_hash, unix time)
    answer_hash: str = Field(max_length=66)
    # 0x + 32 random bytes: answer_hash = keccak256(salt || RFC 8785 answer); None for answers
    # stored before salting (migration 0008), whose hash is the unsalted one
    salt: str | None = Field(default=None, max_length=66)
    consent_hash: str = Field(max_length=66)
    submitted_unix: int
    leaf_hash: str = Field(max_length=66)
    batch_id: int | None = Field(default=None, foreign_key="batch.id", index=True)
    leaf_index: int | None = None  # the leaf's position among its batch's values
    # quality.AnswerStatus; not indexed, so deciding it can update the row in place (0006)
    status: str = Field(default="pending", max_length=16)
    score: float | None = None  # agreement with the consensus, 0..1, once decided
    status_reason: str | None = Field(default=None, max_length=500)


class ItemView(SQLModel):
    """An item as a contributor sees it: nothing says whether it is gold."""

    id: int
    kind: str
    content_hash: str
    text: str | None = None
    media_url: str | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None


class TaskPublic(SQLModel):
    task_id: int
    project_id: int
    task_type: str
    instructions: str
    label_schema: dict[str, Any]
    item: ItemView
    leased_at: datetime
    expires_at: datetime


class AnswerSubmit(SQLModel):
    answer: dict[str, Any]
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)


class AnswerPublic(SQLModel):
    """An answer as its contributor sees it: the only reply that carries the salt."""

    answer_id: int
    task_id: int
    answer_hash: str
    salt: str | None = Field(
        description="0x + 32 bytes: answer_hash = keccak256(salt || RFC 8785 JSON of the "
        "answer). Yours alone until a dataset's manifest reveals it; null for answers stored "
        "before salting, whose hash is unsalted (docs/provenance.md)"
    )
    leaf_hash: str
    time_on_task_ms: int
    submitted_at: datetime


class AnswerAndNext(SQLModel):
    answer: AnswerPublic
    next: TaskPublic | None = None
    next_detail: str | None = None  # why ``next`` is null
