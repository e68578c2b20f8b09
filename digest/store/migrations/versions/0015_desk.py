"""The desk: administrators, their sessions, the editor's note and held posts

`admins` are the people who may log in to /admin/ (argon2id password hashes, an optional
TOTP secret); `admin_sessions` are their server-side sessions (only the SHA-256 of the cookie's
secret is kept, so a copy of the database logs nobody in; revoking a row ends the session);
`editor_notes` is the note waiting for the next issue of a frequency, copied into
`issues.note` when that issue is created; `held_posts` are posts left out of the next issue
(`next`) or of every issue (`always`). On PostgreSQL an index on `email_key COLLATE "C"`
lets a search by the start of an address read an index range whatever the database's own
collation (SQLite compares bytes already, and its `email_key` index serves).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digest.store.tables

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

WHEN = digest.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "admins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_pending", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["admin_id"], ["admins.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_admin_sessions_admin_id", "admin_sessions", ["admin_id"])
    op.create_table(
        "editor_notes",
        sa.Column("frequency", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("frequency"),
    )
    op.create_table(
        "held_posts",
        sa.Column("post_id", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("post_id"),
    )
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_subscribers_email_key_c ON subscribers (email_key COLLATE "C")')


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_subscribers_email_key_c")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("note")
    op.drop_table("held_posts")
    op.drop_table("editor_notes")
    op.drop_index("ix_admin_sessions_admin_id", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admins")
