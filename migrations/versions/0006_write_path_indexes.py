"""write path: drop indexes that cost every insert and update and serve no query; room for HOT

Every answer, lease and count writes into each index of its table, and an update that changes
an indexed column (or finds no room on its page) writes into all of them. These indexes were
either a prefix of another index (answer.contributor, task.contributor, task.item_id,
item.project_id: the composite index serves the same lookups) or on a column no query filters
by alone (answer.status, item.is_gold, item.finalized: the project's index is the better path,
and the open-items index covers assignment). The gold draw gets a partial index of its own,
(project, id) over gold items, which are never slot-counted, so it costs the write path nothing.

On PostgreSQL, item and answer pages keep free space, so the updates that touch no indexed
column (an item's answer count; an answer's status once quality control decides it) can stay
on their page as heap-only tuples, with no index writes at all.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 11:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = [
    ('ix_answer_contributor', 'answer', ['contributor']),
    ('ix_answer_status', 'answer', ['status']),
    ('ix_task_contributor', 'task', ['contributor']),
    ('ix_task_item_id', 'task', ['item_id']),
    ('ix_item_project_id', 'item', ['project_id']),
    ('ix_item_is_gold', 'item', ['is_gold']),
    ('ix_item_finalized', 'item', ['finalized']),
]
# Percent of each page filled by inserts; the rest is left for updated row versions. Pages
# written before this migration keep theirs until the table is rewritten (VACUUM FULL).
FILLFACTOR = {'item': 70, 'answer': 80}
GOLD = sa.text("is_gold IS true")


def upgrade() -> None:
    for name, table, _ in DROPPED:
        op.drop_index(name, table_name=table)
    op.create_index(
        'ix_item_gold', 'item', ['project_id', 'id'], postgresql_where=GOLD, sqlite_where=GOLD
    )
    if op.get_bind().dialect.name == 'postgresql':
        for table, percent in FILLFACTOR.items():
            op.execute(f'ALTER TABLE {table} SET (fillfactor = {percent})')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in FILLFACTOR:
            op.execute(f'ALTER TABLE {table} RESET (fillfactor)')
    op.drop_index('ix_item_gold', table_name='item')
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns)
