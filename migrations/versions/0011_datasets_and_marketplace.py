"""dataset versions and the marketplace mirror

A version freezes a project's decided items (dataset_item), the answers each label was made
of (dataset_answer), the contributors' weights (dataset_contributor) and its export archives
(dataset_export). The marketplace's events (marketplace_event) are mirrored into licences and
royalty claims. New tables only: nothing existing changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('licence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_version_id', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('buyer', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('price', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('pool', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chain_version_id', 'buyer')
    )
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licence_buyer'), ['buyer'], unique=False)
        batch_op.create_index(batch_op.f('ix_licence_chain_version_id'), ['chain_version_id'], unique=False)

    op.create_table('marketplace_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('version_id', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tx_hash', 'log_index')
    )
    with op.batch_alter_table('marketplace_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_marketplace_event_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_marketplace_event_version_id'), ['version_id'], unique=False)

    op.create_table('royalty_claim',
    sa.Column('chain_version_id', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('claimed', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.PrimaryKeyConstraint('chain_version_id', 'account')
    )
    op.create_table('dataset_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('scope_bit', sa.Integer(), nullable=False),
    sa.Column('license_spdx', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('license_terms_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('price', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('fee_bps', sa.Integer(), nullable=False),
    sa.Column('requester_bps', sa.Integer(), nullable=False),
    sa.Column('pool_bps', sa.Integer(), nullable=False),
    sa.Column('selection', sa.JSON(), nullable=True),
    sa.Column('min_answers', sa.Integer(), nullable=False),
    sa.Column('exclude_low_confidence', sa.Boolean(), nullable=False),
    sa.Column('formats', sa.JSON(), nullable=False),
    sa.Column('public_manifest', sa.Boolean(), nullable=False),
    sa.Column('supersedes', sa.Integer(), nullable=True),
    sa.Column('published_unix', sa.BigInteger(), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('answer_count', sa.Integer(), nullable=False),
    sa.Column('contributor_count', sa.Integer(), nullable=False),
    sa.Column('excluded', sa.JSON(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.Column('item_root', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('weight_root', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('total_weight', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=True),
    sa.Column('manifest_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('manifest_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('manifest_bytes', sa.BigInteger(), nullable=True),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('registered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('project_id', 'number')
    )
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dataset_version_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dataset_version_status'), ['status'], unique=False)

    op.create_table('dataset_contributor',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('weight', sqlmodel.sql.sqltypes.AutoString(length=78), nullable=False),
    sa.Column('consents', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['dataset_version.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'address')
    )
    op.create_table('dataset_export',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('format', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('archive_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('archive_bytes', sa.BigInteger(), nullable=False),
    sa.Column('file_count', sa.BigInteger(), nullable=False),
    sa.Column('checksums_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('checksums_bytes', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['dataset_version.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'format')
    )
    op.create_table('dataset_item',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('label_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('n_answers', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['dataset_version.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'index')
    )
    op.create_table('dataset_answer',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('answer_id', sa.Integer(), nullable=False),
    sa.Column('item_index', sa.Integer(), nullable=False),
    sa.Column('contributor', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['answer_id'], ['answer.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['dataset_version.id'], ),
    sa.PrimaryKeyConstraint('version_id', 'answer_id')
    )
    with op.batch_alter_table('dataset_answer', schema=None) as batch_op:
        batch_op.create_index('ix_dataset_answer_contributor', ['contributor', 'version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dataset_answer', schema=None) as batch_op:
        batch_op.drop_index('ix_dataset_answer_contributor')

    op.drop_table('dataset_answer')
    op.drop_table('dataset_item')
    op.drop_table('dataset_export')
    op.drop_table('dataset_contributor')
    with op.batch_alter_table('dataset_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dataset_version_status'))
        batch_op.drop_index(batch_op.f('ix_dataset_version_project_id'))

    op.drop_table('dataset_version')
    op.drop_table('royalty_claim')
    with op.batch_alter_table('marketplace_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_marketplace_event_version_id'))
        batch_op.drop_index(batch_op.f('ix_marketplace_event_block_number'))

    op.drop_table('marketplace_event')
    with op.batch_alter_table('licence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licence_chain_version_id'))
        batch_op.drop_index(batch_op.f('ix_licence_buyer'))

    op.drop_table('licence')
