"""Database upkeep: a thin wrapper over backend/core/maintenance.py."""

from backend.core import maintenance
from backend.core.db import get_engine
from workers.celery_app import celery_app


@celery_app.task(name="db.vacuum_hot_tables")
def vacuum_hot_tables() -> dict[str, int]:
    """Vacuum the tables leases rewrite once enough of them is dead (Celery beat runs this
    every PROVENANT_VACUUM_INTERVAL_S on PostgreSQL)."""
    return maintenance.vacuum_hot_tables(get_engine())
