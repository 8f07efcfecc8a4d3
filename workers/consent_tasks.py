"""Consent relay tasks: thin wrappers that open a session and call the consent service."""

import logging
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from backend.consent import service
from backend.consent.models import RelayAction
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import ChainUnavailable
from backend.core.time import utcnow
from backend.deps import get_chain
from workers.celery_app import celery_app

log = logging.getLogger("provenant.workers.consent")


@celery_app.task(
    name="consent.relay",
    autoretry_for=(ChainUnavailable, OperationalError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,  # the chain being down delays a relay; it never drops it
)
def relay(consent_id: int, action: str) -> str:
    with Session(get_engine()) as session:
        return service.relay(
            session=session, chain=get_chain(), consent_id=consent_id, action=RelayAction(action)
        )


@celery_app.task(name="consent.sweep_pending")
def sweep_pending() -> int:
    """Re-enqueue pending relays nobody is retrying: messages lost with a broker or an API crash."""
    cutoff = utcnow() - timedelta(seconds=get_settings().relay_stale_after_s)
    with Session(get_engine()) as session:
        pending = service.pending_relays(session=session, untouched_since=cutoff)
    for consent_id, action in pending:
        relay.delay(consent_id, action.value)
    return len(pending)


def enqueue_relay(consent_id: int | None, action: RelayAction) -> None:
    """Queue a relay after the row is committed; if the broker is down, the sweep finds it."""
    try:
        relay.delay(consent_id, action.value)
    except Exception:  # broker unreachable: the row stays pending and is swept later
        log.warning(
            "could not enqueue %s relay for consent %s; the sweep will retry",
            action.value,
            consent_id,
        )
