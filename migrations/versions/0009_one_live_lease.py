"""one lease at a time: the partial index of leases (0007) becomes unique

A contributor holds at most one lease per project; the loop checked for a live lease and then
leased, so two of their requests racing (a duplicate answer-and-next) could both find none and
both lease, about one round in ten. Unique, the index the check already reads refuses the
second lease at insert, and the request that lost returns the one that won
(backend/tasks/service.py, _after_collision). It costs the loop nothing: the index is written
on every lease and answer already, and the uniqueness check is the same probe of it.

An expired lease keeps its 'leased' status until a reclaim flips it, so it now also stands in
the way of its contributor's next lease in the project; the service retires it then. Before
the unique build, every lease that could not stay is retired as a reclaim retires one (status
'expired', its item's slot given back): the expired ones, and all but the newest where racing
requests left several.

Built without CONCURRENTLY, as 0007 was: `provenant up` migrates before the API starts.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 04:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEASED = sa.text("status = 'leased'")

task = sa.table(
    "task",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("item_id", sa.Integer),
    sa.column("contributor", sa.String),
    sa.column("status", sa.String),
    sa.column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime()),
)
item = sa.table(
    "item",
    sa.column("id", sa.Integer),
    sa.column("is_gold", sa.Boolean),
    sa.column("slots_taken", sa.Integer),
)


def _retire_leases_that_cannot_stay() -> None:
    newer = task.alias("newer")
    doomed = sa.select(task.c.id, task.c.item_id).where(
        task.c.status == "leased",
        sa.or_(
            task.c.expires_at <= datetime.now(UTC),
            sa.exists().where(
                newer.c.contributor == task.c.contributor,
                newer.c.project_id == task.c.project_id,
                newer.c.status == "leased",
                newer.c.id > task.c.id,
            ),
        ),
    )
    conn = op.get_bind()
    rows = conn.execute(doomed).all()
    if not rows:
        return
    conn.execute(task.update().where(task.c.id.in_([r.id for r in rows])).values(status="expired"))
    for row in rows:
        conn.execute(
            item.update()
            .where(item.c.id == row.item_id, item.c.is_gold.is_(False))
            .values(slots_taken=item.c.slots_taken - 1)
        )


def upgrade() -> None:
    _retire_leases_that_cannot_stay()
    op.drop_index("ix_task_live_lease", table_name="task")
    op.create_index(
        "ix_task_live_lease",
        "task",
        ["contributor", "project_id"],
        unique=True,
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_task_live_lease", table_name="task")
    op.create_index(
        "ix_task_live_lease",
        "task",
        ["contributor", "project_id"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
