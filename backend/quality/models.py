from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class AnswerStatus(StrEnum):
    pending = "pending"  # its item is not complete and aggregated yet
    accepted = "accepted"  # agrees with the consensus (or the gold answer): paid
    rejected = "rejected"  # disagrees: not paid
    held = "held"  # flagged as likely fraud: held from payment, shown to the requester


class ItemResult(SQLModel, table=True):
    """The consensus of a completed item, frozen when the item is finalised."""

    __tablename__ = "item_result"

    item_id: int = Field(primary_key=True, foreign_key="item.id")
    project_id: int = Field(foreign_key="project.id", index=True)
    consensus: Any = Field(sa_column=Column(JSON, nullable=False))  # the answer-shaped result
    confidence: float
    method: str = Field(max_length=32)
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    n_answers: int
    low_confidence: bool = False  # still below the bar after the review cap
    finalized_at: datetime


class ContributorQuality(SQLModel, table=True):
    """A contributor's standing in one project, recomputed at every aggregation run."""

    __tablename__ = "contributor_quality"
    __table_args__ = (UniqueConstraint("project_id", "contributor"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    contributor: str = Field(index=True, max_length=42)
    answers: int = 0
    gold_answered: int = 0
    gold_correct: int = 0
    gold_accuracy: float | None = None
    skill: float | None = None  # from agreement: Dawid-Skene, box IoU or text similarity
    blocked: bool = False
    blocked_reason: str | None = Field(default=None, max_length=500)
    updated_at: datetime


class FraudFlag(SQLModel, table=True):
    __tablename__ = "fraud_flag"
    __table_args__ = (UniqueConstraint("project_id", "contributor", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    contributor: str = Field(index=True, max_length=42)
    kind: str = Field(max_length=32)
    detail: str = Field(max_length=500)
    answers_held: int
    created_at: datetime
    updated_at: datetime


class FlagPublic(SQLModel):
    contributor: str
    kind: str
    detail: str
    answers_held: int


class ContributorQualityPublic(SQLModel):
    contributor: str
    answers: int
    gold_answered: int
    gold_correct: int
    gold_accuracy: float | None
    skill: float | None
    blocked: bool
    blocked_reason: str | None
    flags: list[FlagPublic]


class SetAsideItem(SQLModel):
    """An item the quality run could not process: left out of aggregation and decisions, its
    answers kept (pending: neither paid nor rejected) until the requester deals with it."""

    item_id: int
    external_id: str | None
    answers: int
    reason: str


class QualityReport(SQLModel):
    project_id: int
    method: str | None
    krippendorff_alpha: float | None
    answers: dict[str, int]  # by status
    items: dict[str, int]  # total, final, in_review, waiting, set_aside
    gold_accuracy_histogram: dict[str, int]  # "0.0-0.1" ... "0.9-1.0" -> contributors
    contributors: list[ContributorQualityPublic]
    flagged: list[FlagPublic]
    set_aside: list[SetAsideItem] = []


class ItemResultPublic(SQLModel):
    item_id: int
    consensus: Any
    confidence: float
    method: str
    n_answers: int
    low_confidence: bool
