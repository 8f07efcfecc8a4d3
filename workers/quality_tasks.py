"""Quality tasks: thin wrappers that open a session and call the quality service."""

from sqlmodel import Session

from backend.core.db import get_engine
from backend.quality import service
from workers.celery_app import celery_app


@celery_app.task(name="quality.aggregate_project")
def aggregate_project(project_id: int) -> dict[str, int]:
    with Session(get_engine()) as session:
        return service.aggregate_project(session=session, project_id=project_id)


@celery_app.task(name="quality.aggregate_pending")
def aggregate_pending() -> dict[int, dict[str, int]]:
    """Aggregate every project with answers newer than its last run (Celery beat runs this)."""
    with Session(get_engine()) as session:
        projects = service.projects_to_aggregate(session=session)
    out = {}
    for project_id in projects:
        with Session(get_engine()) as session:
            out[project_id] = service.aggregate_project(session=session, project_id=project_id)
    return out
