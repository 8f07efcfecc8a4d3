"""version verification reports

``version_verification``: the report of `provenant verify` the worker ran on a published
version's manifest against the chain, one row per version, for the manifest hash it checked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "version_verification",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("manifest_hash", sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("checked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["dataset_version.id"]),
        sa.PrimaryKeyConstraint("version_id"),
    )


def downgrade() -> None:
    op.drop_table("version_verification")
