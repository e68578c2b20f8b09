"""Subscribers: ids never reused, addresses compared case-insensitively, erasure remembered

- SQLite reused the id of a deleted row (an erased subscriber's), so an old link could reach
  the next newcomer: the table is rebuilt with AUTOINCREMENT, whose ids only grow
  (PostgreSQL's sequences never go back; nothing to do there).
- `email_key`, the address lower-cased in full, is what duplicates, rate limits and
  suppression compare (unique); `email` stays as the person typed it. Existing rows that
  differ only in case are merged first: the most restrictive status wins (unsubscribed,
  bounced and complained beat active, which beats pending; then the oldest row), and the
  others' events and deliveries move to it (where both had a delivery of one issue, the
  survivor's is kept: one inbox, one message counted).
- `token_key`: a few random bytes per subscriber that their links carry (digest.tokens);
  rows made before this revision have none and keep accepting the links already sent.
- `erased_addresses`: the SHA-256 of each erased address, so an import or a sign-up does
  not bring the person back.

On SQLite the rebuild needs foreign keys off (dropping the old table would otherwise delete
every delivery through ON DELETE CASCADE): `digest.store.database.upgrade` turns them off
around the migrations and checks them afterwards; this migration refuses to run otherwise.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

import digest.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WHEN = digest.store.tables.UTCDateTime(timezone=True)
# higher is more restrictive: the status a merged person keeps
RANK = {"pending": 0, "active": 1, "unsubscribed": 2, "bounced": 2, "complained": 2}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError(
                "migration 0005 rebuilds the subscribers table: run it through "
                "`digest db upgrade`, which turns SQLite's foreign keys off around it"
            )
        with op.batch_alter_table(
            "subscribers", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            batch.add_column(sa.Column("email_key", sa.String(length=320), nullable=True))
            batch.add_column(sa.Column("token_key", sa.String(length=16), nullable=True))
    else:
        op.add_column("subscribers", sa.Column("email_key", sa.String(length=320), nullable=True))
        op.add_column("subscribers", sa.Column("token_key", sa.String(length=16), nullable=True))
    _merge_case_duplicates(bind)
    op.create_index("ix_subscribers_email_key", "subscribers", ["email_key"], unique=True)
    op.create_table(
        "erased_addresses",
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("address_hash"),
    )


def _merge_case_duplicates(bind: sa.Connection) -> None:
    subscribers = sa.table(
        "subscribers",
        sa.column("id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("status", sa.String),
        sa.column("email_key", sa.String),
    )
    events = sa.table("events", sa.column("subscriber_id", sa.Integer))
    deliveries = sa.table(
        "deliveries", sa.column("subscriber_id", sa.Integer), sa.column("issue_id", sa.Integer)
    )
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in bind.execute(sa.select(subscribers.c.id, subscribers.c.email, subscribers.c.status)):
        groups[row.email.lower()].append((row.id, row.status))
    for key, people in groups.items():
        survivor = max(people, key=lambda p: (RANK.get(p[1], 2), -p[0]))[0]
        for other, _ in people:
            if other == survivor:
                continue
            bind.execute(
                events.update()
                .where(events.c.subscriber_id == other)
                .values(subscriber_id=survivor)
            )
            taken = sa.select(deliveries.c.issue_id).where(deliveries.c.subscriber_id == survivor)
            bind.execute(
                deliveries.delete().where(
                    deliveries.c.subscriber_id == other, deliveries.c.issue_id.in_(taken)
                )
            )
            bind.execute(
                deliveries.update()
                .where(deliveries.c.subscriber_id == other)
                .values(subscriber_id=survivor)
            )
            bind.execute(subscribers.delete().where(subscribers.c.id == other))
        bind.execute(subscribers.update().where(subscribers.c.id == survivor).values(email_key=key))


def downgrade() -> None:
    op.drop_table("erased_addresses")
    op.drop_index("ix_subscribers_email_key", table_name="subscribers")
    subscribers = sa.table("subscribers", sa.column("status", sa.String))
    # erased rows are tombstones without an address: 0004 has no place for them
    op.execute(subscribers.delete().where(subscribers.c.status == "erased"))
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("token_key")
        batch.drop_column("email_key")
