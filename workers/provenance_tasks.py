"""Anchoring task: thin wrapper that opens a session and calls the provenance service."""

from sqlmodel import Session

from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.deps import get_chain, get_storage
from backend.provenance import service
from workers.celery_app import celery_app


@celery_app.task(name="provenance.anchor_pending")
def anchor_pending() -> dict[str, int]:
    """Cut due batches and anchor built ones. Beat runs it every few seconds; a run that
    finds the chain down leaves its batches built for the next run."""
    with Session(get_engine()) as session:
        return service.anchor_pending(
            session=session, chain=get_chain(), storage=get_storage(), settings=get_settings()
        )
