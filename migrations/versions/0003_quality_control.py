"""quality control

Existing rows get the same defaults new ones do (server defaults on the added columns).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 02:58:25.408676
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contributor_quality',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('gold_answered', sa.Integer(), nullable=False),
    sa.Column('gold_correct', sa.Integer(), nullable=False),
    sa.Column('gold_accuracy', sa.Float(), nullable=True),
    sa.Column('skill', sa.Float(), nullable=True),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('blocked_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'contributor')
    )
    with op.batch_alter_table('contributor_quality', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contributor_quality_contributor'), ['contributor'], unique=False)
        batch_op.create_index(batch_op.f('ix_contributor_quality_project_id'), ['project_id'], unique=False)

    op.create_table('fraud_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('answers_held', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'contributor', 'kind')
    )
    with op.batch_alter_table('fraud_flag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_flag_contributor'), ['contributor'], unique=False)
        batch_op.create_index(batch_op.f('ix_fraud_flag_project_id'), ['project_id'], unique=False)

    op.create_table('item_result',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('consensus', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('n_answers', sa.Integer(), nullable=False),
    sa.Column('low_confidence', sa.Boolean(), nullable=False),
    sa.Column('finalized_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_result_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('status_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.create_index(batch_op.f('ix_answer_status'), ['status'], unique=False)

    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('extra_answers', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('finalized', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_item_finalized'), ['finalized'], unique=False)

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_confidence', sa.Float(), nullable=False, server_default='0.7'))
        batch_op.add_column(sa.Column('max_extra_answers', sa.Integer(), nullable=False, server_default='2'))
        batch_op.add_column(sa.Column('min_gold_accuracy', sa.Float(), nullable=False, server_default='0.6'))
        batch_op.add_column(sa.Column('min_gold_answers', sa.Integer(), nullable=False, server_default='3'))
        batch_op.add_column(sa.Column('min_skill', sa.Float(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('min_skill_answers', sa.Integer(), nullable=False, server_default='10'))
        batch_op.add_column(sa.Column('min_ms_per_task', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_answers_per_minute', sa.Integer(), nullable=False, server_default='60'))
        batch_op.add_column(sa.Column('aggregated_through', sa.Integer(), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('aggregated_through')
        batch_op.drop_column('max_answers_per_minute')
        batch_op.drop_column('min_ms_per_task')
        batch_op.drop_column('min_skill_answers')
        batch_op.drop_column('min_skill')
        batch_op.drop_column('min_gold_answers')
        batch_op.drop_column('min_gold_accuracy')
        batch_op.drop_column('max_extra_answers')
        batch_op.drop_column('min_confidence')

    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_finalized'))
        batch_op.drop_column('finalized')
        batch_op.drop_column('extra_answers')

    with op.batch_alter_table('answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_answer_status'))
        batch_op.drop_column('status_reason')
        batch_op.drop_column('score')
        batch_op.drop_column('status')

    with op.batch_alter_table('item_result', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_result_project_id'))

    op.drop_table('item_result')
    with op.batch_alter_table('fraud_flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fraud_flag_project_id'))
        batch_op.drop_index(batch_op.f('ix_fraud_flag_contributor'))

    op.drop_table('fraud_flag')
    with op.batch_alter_table('contributor_quality', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contributor_quality_project_id'))
        batch_op.drop_index(batch_op.f('ix_contributor_quality_contributor'))

    op.drop_table('contributor_quality')
