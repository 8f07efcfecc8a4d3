"""Queries behind a contributor's contributions page: one page of answers at a time, and the
totals per project. Everything here is the caller's own: the salts (which only they may see)
appear only in their export."""

import json
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from backend.chain.client import ChainClient
from backend.consent import service as consent_service
from backend.contributions.models import (
    AnchoringPublic,
    ConsentUse,
    ContributionProof,
    ContributionsExport,
    ContributionsPage,
    ContributionView,
    ProjectTotals,
    VersionRoyalty,
    VersionUnderConsent,
    VersionUse,
)
from backend.core.errors import BadRequest, NotFound
from backend.datasets import service as datasets
from backend.datasets.models import DatasetAnswer, DatasetContributor, DatasetVersion, Licence
from backend.projects.models import Item, Project
from backend.provenance.leaf import LEAF_ENCODING
from backend.provenance.merkle import StandardMerkleTree
from backend.provenance.models import Batch
from backend.quality.models import AnswerStatus
from backend.rewards.service import earnings
from backend.storage.base import BlobStorage
from backend.tasks.models import Answer

EXPORT_LIMIT = 100_000  # answers in one export (one project's)


def _anchoring(batch: Batch | None) -> AnchoringPublic | None:
    if batch is None:
        return None
    return AnchoringPublic(
        batch_id=batch.id,  # type: ignore[arg-type]
        root=batch.root,
        status=batch.status,
        tx_hash=batch.tx_hash,
    )


def _uses(session: Session, contributor: str, answer_ids: list[int]) -> dict[int, list[VersionUse]]:
    """answer id -> the published versions holding it."""
    uses: dict[int, list[VersionUse]] = defaultdict(list)
    if not answer_ids:
        return uses
    rows = session.exec(
        select(DatasetAnswer.answer_id, DatasetAnswer.accepted, DatasetVersion)
        .join(DatasetVersion, col(DatasetVersion.id) == col(DatasetAnswer.version_id))
        .where(
            DatasetAnswer.contributor == contributor,
            col(DatasetAnswer.answer_id).in_(answer_ids),
            col(DatasetVersion.status).in_(datasets.PUBLIC),
        )
        .order_by(col(DatasetVersion.id))
    )
    for answer_id, accepted, version in rows:
        uses[answer_id].append(
            VersionUse(version_id=version.id, number=version.number, accepted=accepted)  # type: ignore[arg-type]
        )
    return uses


def _reward(answer: Answer, project: Project) -> str:
    return project.reward_per_answer if answer.status == AnswerStatus.accepted else "0"


def page(
    *, session: Session, contributor: str, project_id: int | None, limit: int, offset: int
) -> ContributionsPage:
    where = [Answer.contributor == contributor]
    if project_id is not None:
        where.append(Answer.project_id == project_id)
    total = session.exec(select(func.count()).select_from(Answer).where(*where)).one()
    rows = session.exec(
        select(Answer, Item.content_hash)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(*where)
        .order_by(col(Answer.id).desc())
        .limit(limit)
        .offset(offset)
    ).all()
    answers = [a for a, _ in rows]
    batches = _batches(session, answers)
    projects = {p.id: p for p in _projects(session, {a.project_id for a in answers})}
    uses = _uses(session, contributor, [a.id for a in answers])  # type: ignore[misc]
    contributions = [
        ContributionView(
            answer_id=a.id,  # type: ignore[arg-type]
            project_id=a.project_id,
            item_id=a.item_id,
            item_content_hash=content_hash,
            submitted_at=a.submitted_at,
            status=a.status,
            status_reason=a.status_reason,
            reward=_reward(a, projects[a.project_id]),
            leaf_hash=a.leaf_hash,
            anchoring=_anchoring(batches.get(a.batch_id)),  # type: ignore[arg-type]
            versions=uses.get(a.id, []),  # type: ignore[arg-type]
        )
        for a, content_hash in rows
    ]
    return ContributionsPage(
        total=total,
        limit=limit,
        offset=offset,
        contributions=contributions,
        projects=totals(session=session, contributor=contributor, project_id=project_id),
    )


def _batches(session: Session, answers: Iterable[Answer]) -> dict[int, Batch]:
    ids = {a.batch_id for a in answers if a.batch_id is not None}
    if not ids:
        return {}
    return {b.id: b for b in session.exec(select(Batch).where(col(Batch.id).in_(ids)))}  # type: ignore[misc]


def _projects(session: Session, ids: set[int]) -> list[Project]:
    if not ids:
        return []
    return list(session.exec(select(Project).where(col(Project.id).in_(ids))))


def totals(*, session: Session, contributor: str, project_id: int | None) -> list[ProjectTotals]:
    """Per project the contributor answered in: answers by fate, reward and royalties."""
    money = {
        e.project_id: e
        for e in earnings(session=session, contributor=contributor, project_id=project_id)
    }
    projects = {p.id: p for p in _projects(session, set(money))}
    versions: dict[int, list[VersionRoyalty]] = defaultdict(list)
    shares = session.exec(
        select(DatasetContributor, DatasetVersion)
        .join(DatasetVersion, col(DatasetVersion.id) == col(DatasetContributor.version_id))
        .where(
            DatasetContributor.address == contributor,
            col(DatasetVersion.status).in_(datasets.PUBLIC),
            col(DatasetVersion.project_id).in_(list(money)),
        )
        .order_by(col(DatasetVersion.id))
    )
    for share, version in shares:
        pool = datasets.pool_of(session, version)
        total_weight = int(version.total_weight or 0)
        chain_id = str(datasets.chain_id_of(version))
        sold = session.exec(
            select(func.count()).select_from(Licence).where(Licence.chain_version_id == chain_id)
        ).one()
        versions[version.project_id].append(
            VersionRoyalty(
                version_id=version.id,  # type: ignore[arg-type]
                number=version.number,
                status=version.status,
                answers=share.answers,
                weight=share.weight,
                total_weight=str(total_weight),
                licences_sold=sold,
                pool=str(pool),
                earned=str(pool * int(share.weight) // total_weight if total_weight else 0),
                claimed=str(datasets.claimed_of(session, version, contributor)),
            )
        )
    out = []
    for pid, e in sorted(money.items()):
        mine = versions.get(pid, [])
        out.append(
            ProjectTotals(
                project_id=pid,
                title=projects[pid].title,
                answers=e.accepted_answers + e.rejected_answers + e.pending_answers,
                accepted=e.accepted_answers,
                rejected=e.rejected_answers,
                undecided=e.pending_answers,
                reward_token=e.token,
                reward_earned=str(int(e.accepted_not_posted) + int(e.claimable) + int(e.claimed)),
                reward_claimed=e.claimed,
                royalties_earned=str(sum(int(v.earned) for v in mine)),
                royalties_claimed=str(sum(int(v.claimed) for v in mine)),
                versions=mine,
            )
        )
    return out


def export(
    *,
    session: Session,
    storage: BlobStorage,
    chain: ChainClient | None,
    contributor: str,
    project_id: int,
) -> ContributionsExport:
    """Every answer of the contributor in the project, with its salt and inclusion proof."""
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project {project_id}")
    mine = totals(session=session, contributor=contributor, project_id=project_id)
    if not mine:
        raise NotFound(f"{contributor} has no answers in project {project_id}")
    if mine[0].answers > EXPORT_LIMIT:
        raise BadRequest(
            f"{mine[0].answers} answers in project {project_id}: an export holds at most "
            f"{EXPORT_LIMIT}; page through GET /me/contributions instead"
        )
    rows = session.exec(
        select(Answer, Item.content_hash)
        .join(Item, col(Item.id) == col(Answer.item_id))
        .where(Answer.contributor == contributor, Answer.project_id == project_id)
        .order_by(col(Answer.id))
    ).all()
    answers = [a for a, _ in rows]
    batches = _batches(session, answers)
    trees: dict[int, StandardMerkleTree] = {}
    uses = _uses(session, contributor, [a.id for a in answers])  # type: ignore[misc]
    out = []
    for a, content_hash in rows:
        batch = batches.get(a.batch_id) if a.batch_id is not None else None
        proof = None
        if batch is not None and batch.id is not None and a.leaf_index is not None:
            if batch.id not in trees:
                dump = json.loads(storage.get(batch.tree_digest))
                trees[batch.id] = StandardMerkleTree.load(dump)
            proof = trees[batch.id].proof(a.leaf_index)
        out.append(
            ContributionProof(
                answer_id=a.id,  # type: ignore[arg-type]
                item_content_hash=content_hash,
                answer=a.payload,
                salt=a.salt,
                answer_hash=a.answer_hash,
                consent_hash=a.consent_hash,
                submitted_at=a.submitted_unix,
                leaf_hash=a.leaf_hash,
                leaf_index=a.leaf_index,
                proof=proof,
                anchoring=_anchoring(batch),
                status=a.status,
                versions=uses.get(a.id, []),  # type: ignore[arg-type]
            )
        )
    return ContributionsExport(
        contributor=contributor,
        project_id=project_id,
        project_title=project.title,
        chain_id=chain.chain_id if chain is not None else None,
        provenance_registry=(
            chain.deployments.address_of("ProvenanceRegistry") if chain is not None else None
        ),
        leaf_encoding=list(LEAF_ENCODING),
        contributions=out,
        totals=mine[0],
    )


def consents(*, session: Session, chain: ChainClient, contributor: str) -> list[ConsentUse]:
    """The contributor's consents, newest first, each with the published versions holding
    answers given under it (revoking one leaves those versions as they are: the next
    version leaves the answers out)."""
    status = consent_service.consent_status(session=session, chain=chain, contributor=contributor)
    rows = session.exec(
        select(Answer.consent_hash, DatasetVersion, func.count())
        .join(DatasetAnswer, col(DatasetAnswer.answer_id) == col(Answer.id))
        .join(DatasetVersion, col(DatasetVersion.id) == col(DatasetAnswer.version_id))
        .where(
            DatasetAnswer.contributor == contributor,
            col(DatasetVersion.status).in_(datasets.PUBLIC),
        )
        .group_by(col(Answer.consent_hash), col(DatasetVersion.id))
        .order_by(col(DatasetVersion.id))
    ).all()
    by_consent: dict[str, list[VersionUnderConsent]] = defaultdict(list)
    for consent_hash, version, n in rows:
        by_consent[consent_hash].append(
            VersionUnderConsent(
                version_id=version.id,  # type: ignore[arg-type]
                project_id=version.project_id,
                number=version.number,
                status=version.status,
                scope=version.scope,
                answers=n,
            )
        )
    active = status.active.consent_hash if status.active is not None else None
    return [
        ConsentUse(
            consent=c,
            active=c.consent_hash == active,
            versions=by_consent.get(c.consent_hash, []),
        )
        for c in status.history
    ]
