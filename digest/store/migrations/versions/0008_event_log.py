"""One event log: `events` becomes `event_log`, with a position in commit order and issue events

Every subscriber event (and now every issue event: created, finished) is one row of
`event_log`, which the API's feed, the desk, webhooks and metrics read. Its new columns:

- `position`: the order rows became visible in. On PostgreSQL a transaction that took a later
  id can commit first, so a reader paging by id could pass over a row that commits later.
  Rows are written without a position; the feed gives positions, under a lock, to committed
  rows that have none, and pages by position (digest.store.events). On PostgreSQL the
  positions come from the sequence `event_log_position_seq`; on SQLite, whose writers take
  turns, a row's position is its id.
- `actor`: who did it, when that is not the subscriber (an API token, an administrator).

The existing rows are copied with their ids, and their ids as positions (no feed has read
them yet). An import that suppressed someone wrote its kind as the status (`unsubscribed`,
`bounced`, `complained`); those become the kinds every other path writes (`unsubscribe`,
`bounce`, `complaint`, method `import`), so that `subscribers list` finds their reason. Each
existing issue gets its `issue-created` event, and `issue-finished` when it finished.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = digest.store.tables.UTCDateTime(timezone=True)
POSITIONS = "event_log_position_seq"
COLUMNS = "id, subscriber_id, issue_id, delivery_id, kind, method, ip, user_agent, detail"
RENAMED = {"unsubscribed": "unsubscribe", "bounced": "bounce", "complained": "complaint"}


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        "event_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("position", ID, nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", ID, nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("event_log") as batch:
        batch.create_index("ix_event_log_created_at", ["created_at"], unique=False)
        batch.create_index("ix_event_log_issue_kind", ["issue_id", "kind"], unique=False)
        batch.create_index("ix_event_log_subscriber_id", ["subscriber_id"], unique=False)
        batch.create_index("ix_event_log_position", ["position"], unique=True)
        batch.create_index(
            "ix_event_log_unpositioned",
            ["id"],
            unique=False,
            postgresql_where=sa.text("position IS NULL"),
            sqlite_where=sa.text("position IS NULL"),
        )
    kind = "CASE kind " + " ".join(f"WHEN '{a}' THEN '{b}'" for a, b in RENAMED.items())
    bind.execute(
        sa.text(
            f"INSERT INTO event_log ({COLUMNS}, position, created_at) "
            f"SELECT {COLUMNS.replace('kind', kind + ' ELSE kind END')}, id, created_at "
            "FROM events ORDER BY id"
        )
    )
    if postgresql:  # the copied ids were explicit: the id sequence starts after them
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('event_log', 'id'), "
                "COALESCE((SELECT MAX(id) FROM event_log), 0) + 1, false)"
            )
        )
        bind.execute(sa.text(f"CREATE SEQUENCE {POSITIONS} AS bigint"))
        bind.execute(
            sa.text(
                f"SELECT setval('{POSITIONS}', "
                "COALESCE((SELECT MAX(position) FROM event_log), 0) + 1, false)"
            )
        )
    bind.execute(
        sa.text(
            "INSERT INTO event_log (kind, method, issue_id, detail, created_at) "
            "SELECT kind, 'send', issue_id, detail, moment FROM ("
            "  SELECT 'issue-created' AS kind, id AS issue_id, key AS detail, "
            "         created_at AS moment, id AS issue, 0 AS step FROM issues"
            "  UNION ALL"
            "  SELECT 'issue-finished', id, key, finished_at, id, 1 FROM issues"
            "  WHERE status = 'finished' AND finished_at IS NOT NULL"
            ") AS happened ORDER BY moment, issue, step"
        )
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_subscriber_id")
        batch.drop_index("ix_events_issue_kind")
        batch.drop_index("ix_events_created_at")
    op.drop_table("events")


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("delivery_id", ID, nullable=True),
        sa.ForeignKeyConstraint(["issue_id"], ["issues.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events") as batch:
        batch.create_index("ix_events_created_at", ["created_at"], unique=False)
        batch.create_index("ix_events_issue_kind", ["issue_id", "kind"], unique=False)
        batch.create_index("ix_events_subscriber_id", ["subscriber_id"], unique=False)
    bind.execute(
        sa.text(
            f"INSERT INTO events ({COLUMNS}, created_at) SELECT {COLUMNS}, created_at "
            "FROM event_log WHERE kind NOT LIKE 'issue-%' ORDER BY id"
        )
    )
    if bind.dialect.name == "postgresql":
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('events', 'id'), "
                "COALESCE((SELECT MAX(id) FROM events), 0) + 1, false)"
            )
        )
        bind.execute(sa.text(f"DROP SEQUENCE {POSITIONS}"))
    op.drop_table("event_log")
