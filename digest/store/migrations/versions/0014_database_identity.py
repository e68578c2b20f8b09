"""The database's identity: one random id, written once

A sender that loses its database keeps the SMTP replies it reads meanwhile in a journal on
its machine (digest.delivery.journal), tagged with this id, so that a journal is only ever
replayed into the database it belongs to — not into another one a second configuration on
the same machine points at.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "database_identity",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("database_identity")
