"""`digest db`: database maintenance."""

from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from digest.cli.base import first_line, get_config, main
from digest.cli.output import say
from digest.errors import DigestError


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply pending migrations."""
    from digest.store.database import connect
    from digest.store.database import upgrade as apply_migrations

    database = connect(get_config(ctx).database_url)
    try:
        before, after = apply_migrations(database)
    except SQLAlchemyError as exc:
        raise DigestError(f"the migration failed: {first_line(exc)}.") from None
    finally:
        database.dispose()
    if before == after:
        say(f"The database is up to date (revision {after}).")
    else:
        say(f"Upgraded the database from revision {before or 'none'} to {after}.")
