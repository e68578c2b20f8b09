"""Delivery states for exactly-once sending; the send lease remembers since when it is held

0.1.0 knew `queued -> sending -> sent | failed | bounced | unknown | skipped`, where a crash
left every claimed row `sending`. Now a row is `claimed` by a named worker (listed in
`workers`, with an expiry its heartbeat renews), `in_flight` once its SMTP transaction may
have begun, and a temporary failure is `deferred` with a next attempt time. A 0.1.0
`sending` row may have gone out, so it becomes `unknown` (never sent again unless the
operator asks with `digest send --resend-unknown`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.store.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = digest.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", WHEN, nullable=True))
        batch.add_column(sa.Column("deferred_since", WHEN, nullable=True))
    deliveries = sa.table("deliveries", sa.column("status", sa.String), sa.column("error", sa.Text))
    op.execute(
        deliveries.update()
        .where(deliveries.c.status == "sending")
        .values(
            status="unknown",
            error="in flight when a digest 0.1.0 send stopped; it may have arrived",
        )
    )
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("acquired_at", WHEN, nullable=True))
    leases = sa.table("leases", sa.column("acquired_at", WHEN), sa.column("expires_at", WHEN))
    op.execute(leases.update().values(acquired_at=leases.c.expires_at))
    with op.batch_alter_table("leases") as batch:
        batch.alter_column("acquired_at", existing_type=WHEN, nullable=False)


def downgrade() -> None:
    deliveries = sa.table("deliveries", sa.column("status", sa.String))
    op.execute(
        deliveries.update()
        .where(deliveries.c.status.in_(("claimed", "in_flight")))
        .values(status="sending")
    )
    op.execute(deliveries.update().where(deliveries.c.status == "deferred").values(status="queued"))
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("acquired_at")
    op.drop_table("workers")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("deferred_since")
        batch.drop_column("next_attempt_at")
        batch.drop_column("worker")
