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
'expired', its item's slot given back): the expired ones, and, where racing requests left a
contributor several unexpired leases in a project, all but the newest. Two set-based
statements do it whatever the number of leases (an idle project keeps its expired leases
until someone asks for work there, so there can be hundreds of thousands): one UPDATE of item
gives back each item's retired slots in one step, one UPDATE of task retires the leases. On
PostgreSQL the task table is locked against writes from the retiring to the build, so that an
API process still running cannot lease in between and fail the build.

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
# The literal, not a bound parameter, in the statements below too: the planner matches it with
# the partial index's predicate, and the newer-lease probe then reads ix_task_live_lease.
LEASED_LITERAL = sa.literal_column("'leased'")

# The tables as this revision knows them: a migration must not import the app's models, which
# describe the schema of the newest revision, not of this one.
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


def _cannot_stay(now: datetime) -> sa.ColumnElement[bool]:
    """Of the tasks, the leases that cannot stay once the index is unique: the expired ones,
    and every one with a newer unexpired lease of the same contributor in the same project (so
    the newest unexpired one stays, and stays alone). Retiring them changes no other lease's
    verdict: the lease that dooms the older ones, the newest unexpired, is never retired."""
    newer = task.alias("newer")
    return sa.and_(
        task.c.status == LEASED_LITERAL,
        sa.or_(
            task.c.expires_at <= now,
            sa.exists().where(
                newer.c.contributor == task.c.contributor,
                newer.c.project_id == task.c.project_id,
                newer.c.status == LEASED_LITERAL,
                newer.c.expires_at > now,
                newer.c.id > task.c.id,
            ),
        ),
    )


def _retire_leases_that_cannot_stay() -> None:
    """Retire them as the service retires an expired lease (backend/tasks/service.py,
    _expire_lease: status 'expired', and the item's slot given back unless it is gold, gold
    items not being slot-counted). Re-implemented here by hand rather than imported: a
    migration must keep doing what it did when it was written, whatever the app's code becomes.

    Two statements, whatever the number of leases: each item's slots are given back in one
    UPDATE, by the count of its leases to retire, counted before any of them changes; then the
    leases are retired in one UPDATE, by the same predicate with the same `now`, so over the
    same rows (on PostgreSQL nothing else can write task meanwhile, see upgrade). Both run on
    SQLite (3.33+ for UPDATE ... FROM) and PostgreSQL."""
    conn = op.get_bind()
    now = datetime.now(UTC)
    doomed = _cannot_stay(now)
    per_item = (
        sa.select(task.c.item_id, sa.func.count().label("retired"))
        .where(doomed)
        .group_by(task.c.item_id)
        .subquery("per_item")
    )
    conn.execute(
        item.update()
        .where(item.c.id == per_item.c.item_id, item.c.is_gold.is_(False))
        .values(slots_taken=item.c.slots_taken - per_item.c.retired)
    )
    conn.execute(task.update().where(doomed).values(status="expired"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # An API process still running during the deploy could otherwise lease between the
        # retiring and the unique build, leave a contributor two live leases and fail the
        # build. SHARE ROW EXCLUSIVE refuses every write of task (INSERT, UPDATE, DELETE take
        # ROW EXCLUSIVE) but not its reads, until this transaction ends; unlike SHARE, it also
        # excludes itself, so two migrators cannot both hold it and deadlock upgrading it.
        # (DROP INDEX below takes ACCESS EXCLUSIVE anyway, for the rest of the transaction.)
        # A request that took an item's slot and then waits here to insert its task holds that
        # item's row, which the retiring may need: PostgreSQL then fails one of the two as a
        # deadlock, and if it is the migration, nothing has changed and it can be run again.
        op.execute("LOCK TABLE task IN SHARE ROW EXCLUSIVE MODE")
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
