"""assignment indexes: open items by fill, a contributor's tasks per project

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 06:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("is_gold IS false AND finalized IS false")


def upgrade() -> None:
    op.create_index(
        'ix_item_open_by_fill',
        'item',
        ['project_id', sa.text('(extra_answers - slots_taken)'), 'id'],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
    op.create_index('ix_task_contributor_project', 'task', ['contributor', 'project_id'])


def downgrade() -> None:
    op.drop_index('ix_task_contributor_project', table_name='task')
    op.drop_index('ix_item_open_by_fill', table_name='item')
