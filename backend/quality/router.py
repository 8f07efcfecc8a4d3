from fastapi import APIRouter

from backend.core.params import RowId
from backend.deps import CurrentUser, SessionDep
from backend.projects.service import get_owned_project, get_project
from backend.quality import service
from backend.quality.models import ContributorQualityPublic, ItemResultPublic, QualityReport

router = APIRouter(prefix="/projects/{project_id}", tags=["quality"])


@router.get("/quality", response_model=QualityReport)
def quality_report(project_id: RowId, session: SessionDep, owner: CurrentUser) -> QualityReport:
    """Agreement, gold accuracy, items in review and flagged contributors (requester only)."""
    project = get_owned_project(session=session, project_id=project_id, owner=owner)
    return service.report(session=session, project=project)


@router.get("/quality/me", response_model=ContributorQualityPublic)
def my_quality(
    project_id: RowId, session: SessionDep, contributor: CurrentUser
) -> ContributorQualityPublic:
    """The caller's standing in this project, and why they were stopped if they were."""
    get_project(session=session, project_id=project_id)
    return service.my_quality(session=session, project_id=project_id, contributor=contributor)


@router.get("/results", response_model=list[ItemResultPublic])
def results(project_id: RowId, session: SessionDep, owner: CurrentUser) -> list[ItemResultPublic]:
    """Final consensus of every finalised item (requester only)."""
    get_owned_project(session=session, project_id=project_id, owner=owner)
    return [
        ItemResultPublic(
            item_id=r.item_id,
            consensus=r.consensus,
            confidence=r.confidence,
            method=r.method,
            n_answers=r.n_answers,
            low_confidence=r.low_confidence,
        )
        for r in service.item_results(session=session, project_id=project_id)
    ]
