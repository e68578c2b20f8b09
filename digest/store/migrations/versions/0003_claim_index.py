"""Index deliveries by (issue, status, id) for the claim query

`claim` asks for the first queued deliveries of an issue in id order. With (issue, status)
alone, PostgreSQL sorted every queued row of a 100,000-subscriber issue for each claim of 20
and the send slowed down as it went; with the id in the index the claim is a range scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 09:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_issue_status")
        batch.create_index("ix_deliveries_issue_status_id", ["issue_id", "status", "id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_issue_status_id")
        batch.create_index("ix_deliveries_issue_status", ["issue_id", "status"])
