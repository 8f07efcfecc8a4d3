"""Compensation task: follow the escrow's events, then build and post reward epochs."""

import logging

from sqlmodel import Session

from backend.core.db import get_engine
from backend.core.errors import ChainUnavailable
from backend.deps import get_chain, get_storage
from backend.rewards import epochs, escrow
from workers.celery_app import celery_app

log = logging.getLogger("provenant.workers.rewards")


@celery_app.task(name="rewards.run_pending")
def run_pending() -> dict[str, int]:
    """Mirror new escrow events (deposits, claims), post built epochs and build new ones.
    Beat runs it every few seconds; a run that finds the chain down leaves epochs built."""
    chain = get_chain()
    with Session(get_engine()) as session:
        try:
            synced = escrow.sync(session=session, chain=chain)
            result = epochs.post_pending(session=session, chain=chain, storage=get_storage())
            if result["posted"]:
                escrow.sync(session=session, chain=chain)
        except ChainUnavailable as exc:
            log.warning("rewards postponed: %s", exc.detail)
            return {"events": 0, "built": 0, "posted": 0, "postponed": 1}
    return {"events": synced, **result}
