from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, literal_column, text
from sqlalchemy.sql.elements import ColumnClause
from sqlmodel import Field, SQLModel

from backend.core.params import Address
from backend.projects.schemas import TaskType


class Project(SQLModel, table=True):
    __tablename__ = "project"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True, max_length=42)
    task_type: str = Field(max_length=32)
    title: str = Field(max_length=200)
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    label_schema: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    overlap: int
    # Token base units (e.g. wei); a string because uint256 does not fit a SQL integer.
    reward_per_answer: str = Field(max_length=78)
    # The ERC-20 rewards are paid in; None: the platform's default token (local chains: the
    # deployed TestRewardToken). Fixed on chain when the project is first funded.
    reward_token: str | None = Field(default=None, max_length=42)
    # Paid on top of the reward for each accepted (that is, correct) answer to a gold item.
    gold_bonus: str = Field(default="0", max_length=78)
    gold_rate: float
    lease_seconds: int
    # Quality control (see backend/quality/service.py).
    min_confidence: float = 0.7  # consensus below this sends an item to review
    max_extra_answers: int = 2  # review cap: answers asked beyond the overlap, per item
    min_gold_accuracy: float = 0.6  # contributors below it (after min_gold_answers) are stopped
    min_gold_answers: int = 3
    min_skill: float = 0.0  # agreement-based skill bar (0 disables it)
    min_skill_answers: int = 10
    min_ms_per_task: int | None = None  # None: the task type's default floor
    max_answers_per_minute: int = 60
    aggregated_through: int = 0  # highest answer id the last aggregation run saw
    created_at: datetime


# SQL's true and false as the partial indexes below write them. Queries must compare with these
# (``Item.is_gold.is_(SQL_FALSE)``): SQLite uses a partial index only when the query repeats
# its WHERE terms, and SQLAlchemy renders ``is_(False)`` there as ``IS 0``, which does not.
SQL_TRUE: ColumnClause[bool] = literal_column("true")
SQL_FALSE: ColumnClause[bool] = literal_column("false")
OPEN_ITEM = text("is_gold IS false AND finalized IS false")
GOLD_ITEM = text("is_gold IS true")


class Item(SQLModel, table=True):
    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash"),
        # Assignment's order (nearest-to-complete open item first; see backend/tasks/service.py)
        # as an index over open items only: leasing reads the first free item from it instead
        # of sorting the project's items.
        Index(
            "ix_item_open_by_fill",
            "project_id",
            text("(extra_answers - slots_taken)"),
            "id",
            postgresql_where=OPEN_ITEM,
            sqlite_where=OPEN_ITEM,
        ),
        # Gold items in id order, for the gold draw; they are never slot-counted, so this
        # index costs the write path nothing.
        Index(
            "ix_item_gold", "project_id", "id", postgresql_where=GOLD_ITEM, sqlite_where=GOLD_ITEM
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id")  # indexed by (project_id, content_hash)
    kind: str = Field(max_length=8)  # "image" or "text"
    content_hash: str = Field(max_length=66)  # 0x + SHA-256 of the stored bytes / UTF-8 text
    media_digest: str | None = Field(default=None, max_length=64)
    thumbnail_digest: str | None = Field(default=None, max_length=64)
    mime_type: str | None = Field(default=None, max_length=32)
    width: int | None = None
    height: int | None = None
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    external_id: str | None = Field(default=None, max_length=200)
    is_gold: bool = False
    gold_answer: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Live leases plus answers; never above the project's overlap (gold items: unused).
    slots_taken: int = 0
    answer_count: int = 0
    extra_answers: int = 0  # asked beyond the project's overlap because consensus was weak
    finalized: bool = False
    # Why the quality run could not process this item (shown to the requester); such an item
    # is left out of aggregation and decisions while the rest of the project goes on.
    set_aside_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime


class ProjectCreate(SQLModel):
    task_type: TaskType
    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1, max_length=20_000)
    label_schema: dict[str, Any]
    overlap: int = Field(ge=1, le=100)
    reward_per_answer: int = Field(ge=0, lt=2**256)
    # (SQLModel's Field(regex=...) is not applied under pydantic 2: a type that is.)
    reward_token: Address | None = None
    gold_bonus: int = Field(default=0, ge=0, lt=2**256)
    gold_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lease_seconds: int = Field(default=600, ge=10, le=86_400)
    min_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    max_extra_answers: int = Field(default=2, ge=0, le=20)
    min_gold_accuracy: float = Field(default=0.6, ge=0.0, le=1.0)
    min_gold_answers: int = Field(default=3, ge=1, le=1000)
    min_skill: float = Field(default=0.0, ge=0.0, le=1.0)
    min_skill_answers: int = Field(default=10, ge=1, le=10_000)
    min_ms_per_task: int | None = Field(default=None, ge=0, le=3_600_000)
    max_answers_per_minute: int = Field(default=60, ge=1, le=10_000)


class ProjectPublic(SQLModel):
    id: int
    owner: str
    task_type: str
    title: str
    instructions: str
    label_schema: dict[str, Any]
    overlap: int
    reward_per_answer: str
    reward_token: str | None
    gold_bonus: str
    gold_rate: float
    lease_seconds: int
    min_confidence: float
    max_extra_answers: int
    min_gold_accuracy: float
    min_gold_answers: int
    min_skill: float
    min_skill_answers: int
    min_ms_per_task: int | None
    max_answers_per_minute: int
    created_at: datetime


class ItemPublic(SQLModel):
    """An item as its project's owner sees it (gold answers included)."""

    id: int
    kind: str
    content_hash: str
    mime_type: str | None
    width: int | None
    height: int | None
    text: str | None
    external_id: str | None
    is_gold: bool
    gold_answer: dict[str, Any] | None
    answer_count: int


class UploadResult(SQLModel):
    created: int
    duplicates: int
    items: list[ItemPublic]
