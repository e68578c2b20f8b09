"""Sending limits shared by every worker: one row of slot-schedule state per limit set

`smtp.rate_per_second` and `rate_per_hour` were kept per process, so two processes sent
twice the limit. Now each message's sending slot is drawn, under a row lock, from this
table (digest.store.rate), whatever the number of workers and machines.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_rates",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("second_next", sa.Double(), nullable=False),
        sa.Column("hour_next", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("send_rates")
