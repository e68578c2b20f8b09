"""Readers: clicks per issue and link, welcome mails, the outgoing webhooks' outbox

`clicks` counts followed links without naming anyone (a delivery only with
`tracking.clicks: personal`); `welcomes` is the welcome mail's ledger, one row per reader;
`webhook_cursors` and `webhook_outbox` carry the event log to each webhook receiver.

Revision ID: 0012
Revises: 0010 (0011 was never released: the numbers of branches merged later moved past it)
Create Date: 2026-12-10 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clicks",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("human", sa.Boolean(), nullable=False),
        sa.Column("delivery_id", BIGID, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_clicks_issue_link", "clicks", ["issue_id", "link"])
    op.create_table(
        "welcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id"),
    )
    op.create_index("ix_welcomes_status", "welcomes", ["status", "next_attempt_at"])
    op.create_table(
        "webhook_cursors",
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("position", BIGID, nullable=False),
        sa.PrimaryKeyConstraint("endpoint"),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=30), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("gave_up_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("endpoint", "msg_id"),
    )
    op.create_index("ix_webhook_outbox_due", "webhook_outbox", ["delivered_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_outbox_due", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("webhook_cursors")
    op.drop_index("ix_welcomes_status", table_name="welcomes")
    op.drop_table("welcomes")
    op.drop_index("ix_clicks_issue_link", table_name="clicks")
    op.drop_table("clicks")
