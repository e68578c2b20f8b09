"""The alerts mailed to the owner: one row per cause and day, so none goes twice a day

`owner.email` is told when a scheduled send fails or is missed, when an issue ends with
deferred or unknown deliveries, when a complaint or bounce rate passes its limit and when
`digest doctor` fails (digest.ops.alerts). A row is claimed (the unique cause and day) before
the mail goes, so two processes noticing the same cause send one mail between them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owner_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cause", "day"),
    )


def downgrade() -> None:
    op.drop_table("owner_alerts")
