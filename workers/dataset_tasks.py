"""Dataset tasks: building a version, and following the marketplace's events."""

import logging

from sqlmodel import Session

from backend.audit import service as audit
from backend.core.config import get_settings
from backend.core.db import get_engine
from backend.core.errors import ChainUnavailable
from backend.datasets import marketplace, publish
from backend.deps import get_chain, get_storage
from workers.celery_app import celery_app

log = logging.getLogger("provenant.workers.datasets")


@celery_app.task(name="datasets.build")
def build(version_id: int) -> dict[str, object]:
    """Freeze, export and write the manifest of a version (publish.build_version). A build
    the worker did not finish is redelivered and starts over."""
    engine = get_engine()
    with Session(engine) as session:
        version = publish.build_version(
            session=session,
            new_session=lambda: Session(engine),
            storage=get_storage(),
            chain=get_chain(),
            version_id=version_id,
        )
        return {"version_id": version_id, "status": version.status, "error": version.error}


@celery_app.task(name="datasets.sync_marketplace")
def sync_marketplace() -> int:
    """Mirror new DatasetMarketplace events (registrations, licences, royalty claims)."""
    with Session(get_engine()) as session:
        try:
            return marketplace.sync(session=session, chain=get_chain())
        except ChainUnavailable as exc:
            log.warning("marketplace sync postponed: %s", exc.detail)
            return 0


@celery_app.task(name="datasets.build_stalled")
def build_stalled() -> int:
    """Re-enqueue builds nobody is running: a message lost with a broker, or an API that
    stored the version and died before enqueueing it. A running build reports progress
    every few seconds (publish.STALLED_AFTER_S says how long counts as stalled)."""
    with Session(get_engine()) as session:
        stalled = publish.stalled_builds(session=session)
    for version_id in stalled:
        build.delay(version_id)
    return len(stalled)


@celery_app.task(name="datasets.verify")
def verify(version_id: int) -> dict[str, object]:
    """Run `provenant verify` on a published version's manifest against the chain and keep
    the report (backend/audit/service.py). A chain that does not answer leaves a report
    naming the call, and the next sweep runs it again."""
    with Session(get_engine()) as session:
        row = audit.verify_version(
            session=session,
            storage=get_storage(),
            rpc_url=get_settings().rpc_url,
            version_id=version_id,
        )
        return {"version_id": version_id, "ok": None if row is None else row.ok}


@celery_app.task(name="datasets.verify_published")
def verify_published() -> int:
    """Queue a verification of every published version without a report for its manifest."""
    with Session(get_engine()) as session:
        pending = audit.unverified_versions(session)
    for version_id in pending:
        verify.delay(version_id)
    return len(pending)


def enqueue_build(version_id: int) -> None:
    """Queue a version's build; if the broker is down, ``build_stalled`` finds it later."""
    try:
        build.delay(version_id)
    except Exception:
        log.warning("could not enqueue the build of version %s; it will be retried", version_id)
