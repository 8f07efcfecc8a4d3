"""compensation: reward epochs and escrow mirror

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 05:00:27.075386
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('chain_cursor',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('next_block', sa.BigInteger(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('contract', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('block_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('escrow_claim',
    sa.Column('project_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('claimed', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'contributor')
    )
    op.create_table('escrow_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('project_id', sa.BigInteger(), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tx_hash', 'log_index')
    )
    with op.batch_alter_table('escrow_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escrow_event_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_escrow_event_project_id'), ['project_id'], unique=False)

    op.create_table('escrow_project',
    sa.Column('project_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('requester', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('deposited', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('committed', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('paid', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('withdrawn', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('root', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('reward_epoch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escrow', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('root', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('total', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('contributor_count', sa.Integer(), nullable=False),
    sa.Column('accepted_answers', sa.Integer(), nullable=False),
    sa.Column('tree_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('posted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('escrow', 'project_id', 'epoch')
    )
    with op.batch_alter_table('reward_epoch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reward_epoch_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reward_epoch_status'), ['status'], unique=False)

    op.create_table('reward_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('epoch_id', sa.Integer(), nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('cumulative', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('value_index', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['epoch_id'], ['reward_epoch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('epoch_id', 'contributor')
    )
    with op.batch_alter_table('reward_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reward_entry_contributor'), ['contributor'], unique=False)
        batch_op.create_index(batch_op.f('ix_reward_entry_epoch_id'), ['epoch_id'], unique=False)

    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reward_token', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=True))
        batch_op.add_column(sa.Column('gold_bonus', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('gold_bonus')
        batch_op.drop_column('reward_token')

    with op.batch_alter_table('reward_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reward_entry_epoch_id'))
        batch_op.drop_index(batch_op.f('ix_reward_entry_contributor'))

    op.drop_table('reward_entry')
    with op.batch_alter_table('reward_epoch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reward_epoch_status'))
        batch_op.drop_index(batch_op.f('ix_reward_epoch_project_id'))

    op.drop_table('reward_epoch')
    op.drop_table('escrow_project')
    with op.batch_alter_table('escrow_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escrow_event_project_id'))
        batch_op.drop_index(batch_op.f('ix_escrow_event_block_number'))

    op.drop_table('escrow_event')
    op.drop_table('escrow_claim')
    op.drop_table('chain_cursor')
