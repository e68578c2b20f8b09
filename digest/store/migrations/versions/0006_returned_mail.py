"""What comes back: processed bounces, complaints and mailed unsubscribes; events name deliveries

`returned_mail` holds one row per returned message or provider event that was processed,
keyed on its Message-ID (or the provider's event id): its unique key makes processing the
same mailbox twice change nothing. `events.delivery_id` ties a bounce or complaint event to
the delivery its VERP address named (a plain column: events outlive the ledger).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.store.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = digest.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "returned_mail",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", ID, nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("returned_mail") as batch:
        batch.create_index("ix_returned_mail_issue_kind", ["issue_id", "kind"], unique=False)
        batch.create_index(
            batch.f("ix_returned_mail_subscriber_id"), ["subscriber_id"], unique=False
        )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("delivery_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("delivery_id")
    op.drop_table("returned_mail")
