"""A contributor's own contributions: paged, filterable by project, and exportable with
proofs so they can check them without us."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.contributions import service
from backend.contributions.models import ConsentUse, ContributionsExport, ContributionsPage
from backend.core.params import MAX_ROW_ID, Limit, Offset
from backend.deps import ChainDep, CurrentUser, SessionDep, StorageDep

router = APIRouter(tags=["contributions"])

ProjectFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="one project")]


@router.get("/me/contributions", response_model=ContributionsPage)
def my_contributions(
    session: SessionDep,
    contributor: CurrentUser,
    project_id: ProjectFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The caller's answers, newest first: each with its anchoring batch and transaction, its
    fate in quality control and why, the published versions holding it and what it earned;
    and per project the totals, the versions, the licences sold and the royalties."""
    return service.page(
        session=session, contributor=contributor, project_id=project_id, limit=limit, offset=offset
    )


@router.get("/me/contributions/export", response_model=ContributionsExport)
def export_contributions(
    session: SessionDep,
    storage: StorageDep,
    chain: ChainDep,
    contributor: CurrentUser,
    project_id: Annotated[int, Query(ge=1, le=MAX_ROW_ID)],
) -> Any:
    """Every answer of the caller in one project with its salt, leaf and inclusion proof:
    a file they can check against the chain themselves (docs/audit.md)."""
    return service.export(
        session=session,
        storage=storage,
        chain=chain,
        contributor=contributor,
        project_id=project_id,
    )


@router.get("/me/consents", response_model=list[ConsentUse])
def my_consents(session: SessionDep, chain: ChainDep, contributor: CurrentUser) -> Any:
    """The caller's consents in one place, newest first: scopes, end date, status and
    revocation (revoke with POST /consent/{hash}/revoke), and for each the published dataset
    versions holding answers given under it."""
    return service.consents(session=session, chain=chain, contributor=contributor)
