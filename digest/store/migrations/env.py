"""Alembic environment: runs migrations on the connection `digest.db.upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from digest.store.database import include_object
from digest.store.tables import Base

config = context.config
target_metadata = Base.metadata


def migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    # `alembic` used from the command line (for `revision --autogenerate` during development)
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as fresh:
        migrate(fresh)


run()
