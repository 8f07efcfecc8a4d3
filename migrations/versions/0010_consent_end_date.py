"""consent end date and typed-data version

``consent.valid_until``: unix seconds, the last second the consent may be used (ConsentV2's
``validUntil``); NULL or 0 for none. ``consent.typed_version``: which EIP-712 message the
contributor signed, 1 = ``Consent``, 2 = ``ConsentV2`` (docs/consent.md); the relay calls
``recordConsent`` or ``recordConsentV2`` by it. Every consent stored before is a version-1
consent without an end date, which the defaults say.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consent", sa.Column("valid_until", sa.BigInteger(), nullable=True))
    op.add_column(
        "consent",
        sa.Column("typed_version", sa.SmallInteger(), nullable=False, server_default="1"),
    )


def downgrade() -> None:
    op.drop_column("consent", "typed_version")
    op.drop_column("consent", "valid_until")
