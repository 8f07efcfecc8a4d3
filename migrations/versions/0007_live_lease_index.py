"""live leases: a partial index of the tasks still leased, for the caller's live-lease lookup

Every loop asks whether the caller holds another live lease in the project. Through the
(contributor, project_id) index that read every task the contributor ever had there, each from
the heap to check its status: about 1,250 per contributor 40,000 answers into a run, and the
reads of the task heap per answer grew from 95 to 302 blocks while PostgreSQL's CPU per answer
rose by half at a steady 500 answers/s (bench/README, "A partial index of live leases"). This index holds the live
leases only, a few per contributor; an answered task leaves it at the next vacuum (the worker
vacuums task, backend/core/maintenance.py).

The price: PostgreSQL counts a column in an index's predicate as indexed, so marking a task
answered is no longer a heap-only update, and writes an entry into each of task's indexes.
Measured with it, over the same 40,000 answers at 500/s: PostgreSQL 1.17-1.26 ms of CPU per
answer, against 1.74-1.89 without. An index on (contributor, project_id, expires_at) instead
would keep the update heap-only but still read every task leased in the last lease_seconds
(answered tasks keep their expiry). Built without CONCURRENTLY, as `provenant up` migrates
before the API starts (a plain build blocks writes to task while it runs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEASED = sa.text("status = 'leased'")


def upgrade() -> None:
    op.create_index(
        'ix_task_live_lease',
        'task',
        ['contributor', 'project_id'],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index('ix_task_live_lease', table_name='task')
