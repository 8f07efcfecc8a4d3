"""answer salts and set-aside items

``answer.salt``: the fresh random 32 bytes each answer is committed with, ``answerHash =
keccak256(salt || RFC 8785 JSON of the answer)`` (docs/provenance.md). Answers stored before
salting have none, and their hash stays the unsalted one they were anchored with.

``item.set_aside_reason``: why the quality run could not process an item (a too-large or
malformed set of answers, say); such an item is left out of aggregation and decisions, its
reason shown to the project's requester, and the rest of the project goes on.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("answer", sa.Column("salt", sa.String(length=66), nullable=True))
    op.add_column("item", sa.Column("set_aside_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column("item", "set_aside_reason")
    op.drop_column("answer", "salt")
