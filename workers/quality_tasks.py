"""Quality tasks: thin wrappers that open a session and call the quality service."""

import logging
from functools import lru_cache

from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.failpoints import failpoint
from backend.quality import service
from backend.quality.pacing import RunPacer
from workers.celery_app import celery_app

log = logging.getLogger("provenant.quality")


@lru_cache
def _pacer() -> RunPacer:
    """One per worker process (workers run --pool=solo): see backend/quality/pacing.py."""
    return RunPacer(get_settings().aggregate_max_share)


@celery_app.task(name="quality.aggregate_project")
def aggregate_project(project_id: int) -> dict[str, int]:
    failpoint("quality.run")
    with Session(get_engine()) as session:
        return service.aggregate_project(session=session, project_id=project_id)


@celery_app.task(name="quality.aggregate_pending")
def aggregate_pending() -> dict[int, dict[str, int]]:
    """Aggregate every project with answers newer than its last run (Celery beat runs this),
    unless that project's last run here was too recent for its cost (see RunPacer)."""
    with Session(get_engine()) as session:
        projects = service.projects_to_aggregate(session=session)
    return _run_paced(projects)


@celery_app.task(name="quality.release_idle_gold")
def release_idle_gold() -> dict[int, dict[str, int]]:
    """Run the projects whose idle contributors' gold answers are due a decision (hourly)."""
    with Session(get_engine()) as session:
        projects = service.projects_with_idle_gold(session=session)
    return _run_paced(projects)


def _run_paced(projects: list[int]) -> dict[int, dict[str, int]]:
    pacer = _pacer()
    out = {}
    for project_id in projects:
        if not pacer.due(project_id):
            continue  # picked up again by a later beat
        started = pacer.clock()
        try:
            with Session(get_engine()) as session:
                out[project_id] = service.aggregate_project(session=session, project_id=project_id)
        except Exception:
            # A run that fails (items it cannot process are set aside within it; this is
            # anything else) must not keep the projects after it from theirs.
            log.exception("project %s: the quality run failed", project_id)
            out[project_id] = {"failed": 1}
        finally:
            pacer.ran(project_id, started)
    return out
