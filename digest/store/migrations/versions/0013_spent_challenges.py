"""Solved sign-up challenges, kept until they expire so that none is accepted twice

`spent_challenges` holds the SHA-256 of each ALTCHA challenge signature a sign-up was accepted
with, and when that challenge expires; a second post with the same solution is refused.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spent_challenges",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_spent_challenges_expires_at", "spent_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_spent_challenges_expires_at", table_name="spent_challenges")
    op.drop_table("spent_challenges")
