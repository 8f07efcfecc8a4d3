"""The Celery application: broker and result backend come from settings.

By default both are embedded SQLite files (kombu's SQLAlchemy transport), so a fresh machine
needs no Redis or RabbitMQ; PROVENANT_BROKER_URL / PROVENANT_RESULT_BACKEND select a real one.
"""

from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from kombu import Connection, Queue
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from backend.core.config import get_settings
from backend.core.maintenance import VacuumLoop
from backend.core.process import freeze_startup_objects, yield_cpu

settings = get_settings()

if settings.resolved_broker_url.startswith("sqla+"):
    # The transport's options go to create_engine, so its polling interval (1 s by default,
    # which would add a second to every relay) has to be set on the class.
    from kombu.transport import sqlalchemy as kombu_sqla

    kombu_sqla.Transport.polling_interval = 0.1

celery_app = Celery(
    "provenant",
    broker=settings.resolved_broker_url,
    backend=settings.resolved_result_backend,
    include=[
        "workers.consent_tasks",
        "workers.dataset_tasks",
        "workers.provenance_tasks",
        "workers.quality_tasks",
        "workers.reward_tasks",
    ],
)
# Quality runs go to a queue of their own, served by a worker process of their own (see
# backend/stack.py start_worker): a run takes seconds to minutes on a large project, and on
# the one queue it held up consent relays, anchoring and reward epochs for everyone. Dataset
# builds (freezing items, exports, the manifest) are batch work of the same kind and share it.
CHAIN_QUEUE, QUALITY_QUEUE = "celery", "quality"

celery_app.conf.update(
    task_queues=[Queue(CHAIN_QUEUE), Queue(QUALITY_QUEUE)],
    task_default_queue=CHAIN_QUEUE,
    task_routes={
        "quality.*": {"queue": QUALITY_QUEUE},
        "datasets.build": {"queue": QUALITY_QUEUE},
        "datasets.verify": {"queue": QUALITY_QUEUE},
    },
    task_acks_late=True,  # a task whose worker dies is redelivered, not dropped
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "consent-sweep-pending": {
            "task": "consent.sweep_pending",
            "schedule": settings.relay_sweep_interval_s,
        },
        "quality-aggregate-pending": {
            "task": "quality.aggregate_pending",
            "schedule": settings.aggregate_interval_s,
            "options": {"expires": max(settings.aggregate_interval_s * 5, 5)},
        },
        "quality-release-idle-gold": {
            "task": "quality.release_idle_gold",
            "schedule": 3600,
            "options": {"expires": 1800},
        },
        "provenance-anchor-pending": {
            "task": "provenance.anchor_pending",
            "schedule": settings.anchor_interval_s,
            # A run that waited longer than this is superseded by a newer one.
            "options": {"expires": max(settings.anchor_interval_s * 5, 5)},
        },
        "datasets-sync-marketplace": {
            "task": "datasets.sync_marketplace",
            "schedule": settings.marketplace_interval_s,
            "options": {"expires": max(settings.marketplace_interval_s * 5, 5)},
        },
        "datasets-verify-published": {
            "task": "datasets.verify_published",
            "schedule": settings.verify_interval_s,
            "options": {"expires": max(settings.verify_interval_s * 2, 5)},
        },
        "datasets-build-stalled": {
            "task": "datasets.build_stalled",
            "schedule": 60,
            "options": {"expires": 120},
        },
        "rewards-run-pending": {
            "task": "rewards.run_pending",
            "schedule": settings.reward_interval_s,
            "options": {"expires": max(settings.reward_interval_s * 5, 5)},
        },
    },
)


def create_queue_rows() -> None:
    """Create the queues up front. kombu's SQLAlchemy transport inserts a queue's row
    on first use, and a worker and a beat starting together race to insert it: the loser's
    session stays broken (IntegrityError, then PendingRollbackError on every publish), so
    nothing is ever scheduled. Call this in the process that starts them, not inside either.
    """
    if settings.resolved_broker_url.startswith("sqla+"):
        with Connection(settings.resolved_broker_url) as conn:
            for queue in (CHAIN_QUEUE, QUALITY_QUEUE):
                conn.default_channel.queue_declare(queue=queue)


_vacuum_loop: VacuumLoop | None = None  # started once the worker is ready


@worker_ready.connect
def _settle_worker(sender: Any = None, **_: Any) -> None:
    """Once the worker is up: yield the CPU to request handling on a shared host (its work is
    batch work: aggregation, anchoring, epochs), and leave the objects of startup out of
    garbage collection, as the API does. On PostgreSQL, start vacuuming the tables leases
    rewrite (backend/core/maintenance.py says why on a thread, not as a task)."""
    global _vacuum_loop
    if settings.worker_niceness:
        yield_cpu(settings.worker_niceness)
    url = make_url(settings.resolved_database_url)
    # One vacuum loop per system: the chain worker's (each worker process runs this).
    serves_chain = sender is None or CHAIN_QUEUE in sender.app.amqp.queues.consume_from
    if settings.vacuum_interval_s and url.get_backend_name() == "postgresql" and serves_chain:
        # An engine of its own, holding no connection between rounds: nothing shared with the
        # tasks' pool, and nothing for a forked pool process to inherit.
        engine = create_engine(url, poolclass=NullPool)
        _vacuum_loop = VacuumLoop(engine, settings.vacuum_interval_s).start()
    freeze_startup_objects()


@worker_shutdown.connect
def _stop_vacuuming(**_: Any) -> None:
    if _vacuum_loop is not None:
        _vacuum_loop.stop(timeout_s=5)  # a VACUUM under way is the server's to finish
