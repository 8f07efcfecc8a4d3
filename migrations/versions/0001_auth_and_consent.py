"""auth and consent

Revision ID: 0001
Revises:
Create Date: 2026-11-23 02:03:43.575579
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_session",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_session_address"), ["address"], unique=False)

    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("contributor", sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=False),
        sa.Column("terms_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("scopes", sa.Integer(), nullable=False),
        sa.Column("royalty_bps", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("relay_attempts", sa.Integer(), nullable=False),
        sa.Column("revoke_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("revoke_nonce", sa.BigInteger(), nullable=True),
        sa.Column("revoke_deadline", sa.BigInteger(), nullable=True),
        sa.Column("revoke_signature", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("revoke_tx_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
        sa.Column("revoke_block_number", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoke_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consent_hash"),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_contributor"), ["contributor"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consent_revoke_status"), ["revoke_status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consent_status"), ["status"], unique=False)

    op.create_table(
        "siwe_nonce",
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce"),
    )


def downgrade() -> None:
    op.drop_table("siwe_nonce")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_status"))
        batch_op.drop_index(batch_op.f("ix_consent_revoke_status"))
        batch_op.drop_index(batch_op.f("ix_consent_contributor"))

    op.drop_table("consent")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_address"))

    op.drop_table("auth_session")
