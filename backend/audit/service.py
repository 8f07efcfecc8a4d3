"""Verifying published versions in the worker, and serving the cached reports.

The worker runs exactly `provenant verify` (verify.py) on the stored manifest against the
configured RPC endpoint: the API's answer is that run's report, not a badge. A report's
failing facts can quote labels and answers, so they are shown to those who may read the
manifest; everyone else sees each check's status and counts.
"""

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.audit.chain import ChainReader
from backend.audit.models import (
    BatchSummary,
    CheckPublic,
    ContributorSummary,
    ProvenanceSummary,
    VerificationPublic,
    VersionVerification,
)
from backend.audit.verify import verify_manifest
from backend.consent.models import Consent
from backend.consent.terms import SCOPES
from backend.core.errors import AppError
from backend.core.time import utcnow
from backend.datasets import labels
from backend.datasets import service as datasets_service
from backend.datasets.models import (
    DatasetAnswer,
    DatasetContributor,
    DatasetVersion,
    VersionStatus,
)
from backend.projects.models import Project
from backend.provenance.merkle import keccak256
from backend.provenance.models import Batch
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer


def verify_version(
    *, session: Session, storage: BlobStorage, rpc_url: str, version_id: int
) -> VersionVerification | None:
    """Verify a published version's manifest against the chain and store the report; None
    if the version is not published (nothing to verify yet)."""
    version = session.get(DatasetVersion, version_id)
    if version is None or version.status != VersionStatus.published:
        return None
    assert version.manifest_digest is not None and version.manifest_hash is not None
    report = verify_manifest(storage.get(version.manifest_digest), ChainReader(rpc_url))
    row = session.get(VersionVerification, version_id) or VersionVerification(
        version_id=version_id, manifest_hash=version.manifest_hash, ok=False, report={}
    )
    row.manifest_hash, row.ok, row.report = version.manifest_hash, report.ok, report.as_json()
    row.checked_at = utcnow()
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def unverified_versions(session: Session) -> list[int]:
    """Published versions without a report for their manifest, or whose last run could not
    read the chain."""
    rows = session.exec(
        select(
            DatasetVersion.id,
            DatasetVersion.manifest_hash,
            VersionVerification.manifest_hash,
            VersionVerification.report,
        )
        .join(
            VersionVerification,
            col(VersionVerification.version_id) == col(DatasetVersion.id),
            isouter=True,
        )
        .where(DatasetVersion.status == VersionStatus.published)
    ).all()
    return [
        vid  # type: ignore[misc]
        for vid, current, verified, report in rows
        if verified != current or _chain_unread(report)
    ]


def _chain_unread(report: Any) -> bool:
    return any(c["check"] == "chain.read" for c in (report or {}).get("checks", []))


def verification_public(
    *, session: Session, version_id: int, viewer: str | None
) -> VerificationPublic:
    version = datasets_service.get_version(session=session, version_id=version_id, viewer=viewer)
    row = session.get(VersionVerification, version_id)
    if row is None or row.manifest_hash != version.manifest_hash:
        return VerificationPublic(version_id=version_id, status="pending")
    try:
        datasets_service.require_manifest_access(session=session, version=version, viewer=viewer)
        with_facts = True
    except AppError:
        with_facts = False
    report = row.report
    checks = [
        CheckPublic(
            check=c["check"],
            title=c["title"],
            status=c["status"],
            checked=c["checked"],
            failures=c["failures"],
            failure=c["failure"] if with_facts else None,
            skipped=c["skipped"],
        )
        for c in report["checks"]
    ]
    first = report.get("firstFailure")
    return VerificationPublic(
        version_id=version_id,
        status="verified" if row.ok else "failed",
        manifest_hash=row.manifest_hash,
        checked_at=row.checked_at,
        first_failure=(
            f"{first['check']}: {first['fact'] if with_facts else 'see the report'}"
            if first
            else None
        ),
        checks=checks,
        timings=report.get("timings", {}),
    )


def provenance_summary(
    *, session: Session, version_id: int, viewer: str | None
) -> ProvenanceSummary:
    """A version's contributors (by pseudonym), the consents' coverage of each scope, the
    batches and transactions that anchored its answers, its method and its verification."""
    version = datasets_service.get_version(session=session, version_id=version_id, viewer=viewer)
    contributors = session.exec(
        select(DatasetContributor)
        .where(DatasetContributor.version_id == version_id)
        .order_by(col(DatasetContributor.address))
    ).all()
    scopes_of = {
        c.consent_hash: c.scopes
        for c in session.exec(
            select(Consent).where(
                col(Consent.consent_hash).in_({h for c in contributors for h in c.consents})
            )
        )
    }
    coverage = {scope.name: 0 for scope in SCOPES}
    summaries = []
    for c in contributors:
        bits = 0
        for consent_hash in c.consents:
            bits |= scopes_of.get(consent_hash, 0)
        names = [scope.name for scope in SCOPES if bits & scope.bit]
        for name in names:
            coverage[name] += 1
        summaries.append(
            ContributorSummary(
                pseudonym=_pseudonym(version_id, c.address),
                answers=c.answers,
                weight=c.weight,
                consent_scopes=names,
            )
        )
    batches = session.exec(
        select(Batch, func.count())
        .join(Answer, col(Answer.batch_id) == col(Batch.id))
        .join(DatasetAnswer, col(DatasetAnswer.answer_id) == col(Answer.id))
        .where(DatasetAnswer.version_id == version_id)
        .group_by(col(Batch.id))
        .order_by(col(Batch.id))
    ).all()
    project = session.get(Project, version.project_id)
    assert project is not None
    method = labels.method_for(project.task_type, project.label_schema).as_manifest()
    return ProvenanceSummary(
        version_id=version_id,
        scope=version.scope,
        method={**method, "minAnswers": version.min_answers},
        contributors=summaries,
        consent_coverage=coverage,
        excluded=version.excluded,
        batches=[
            BatchSummary(batch_id=b.id, root=b.root, tx_hash=b.tx_hash, answers=n)  # type: ignore[arg-type]
            for b, n in batches
        ],
        verification=verification_public(session=session, version_id=version_id, viewer=viewer),
    )


def _pseudonym(version_id: int, address: str) -> str:
    """A contributor's name in one version's summary: the first 6 bytes of keccak256 of the
    version id and the address, so summaries do not list accounts side by side."""
    digest = keccak256(f"{version_id}:{address.lower()}".encode())
    return "c-" + digest[:6].hex()
