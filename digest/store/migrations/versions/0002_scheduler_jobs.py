"""APScheduler's job table, owned by our migrations

Two schedulers starting at once would otherwise both create it (APScheduler does so on start)
and one would fail on PostgreSQL. The definition matches APScheduler 3's SQLAlchemyJobStore.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("apscheduler_jobs")
