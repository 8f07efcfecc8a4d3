"""The cached verification of a published version: what `provenant verify` reported when the
worker ran it against the chain, kept per manifest hash."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from backend.core.time import utcnow


class VersionVerification(SQLModel, table=True):
    __tablename__ = "version_verification"

    version_id: int = Field(foreign_key="dataset_version.id", primary_key=True)
    manifest_hash: str = Field(max_length=66)  # the manifest verified
    ok: bool
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    checked_at: datetime = Field(default_factory=utcnow)


class CheckPublic(SQLModel):
    check: str
    title: str
    status: str  # ok, FAIL, skip
    checked: int
    failures: int
    failure: str | None = None  # the failing fact: only for those who may see the data
    skipped: str | None = None


class VerificationPublic(SQLModel):
    """A version's verification as the API serves it: ``status`` is ``verified``,
    ``failed``, or ``pending`` (published, not verified yet)."""

    version_id: int
    status: str
    manifest_hash: str | None = None
    checked_at: datetime | None = None
    first_failure: str | None = None  # "check: fact", for those who may see the data
    checks: list[CheckPublic] = []
    timings: dict[str, float] = {}


class ContributorSummary(SQLModel):
    pseudonym: str  # stable within a version, unlinkable across versions without the manifest
    answers: int
    weight: str
    consent_scopes: list[str]  # the scopes of the consents their answers were given under


class BatchSummary(SQLModel):
    batch_id: int
    root: str
    tx_hash: str | None
    answers: int  # the version's answers anchored in it


class ProvenanceSummary(SQLModel):
    """Where a version's labels come from, without its data: for requesters and buyers."""

    version_id: int
    scope: str
    method: dict[str, Any]
    contributors: list[ContributorSummary]
    consent_coverage: dict[str, int]  # scope -> contributors whose consents cover it
    excluded: dict[str, Any]
    batches: list[BatchSummary]
    verification: VerificationPublic
