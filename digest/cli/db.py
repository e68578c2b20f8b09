"""`digest db`: database maintenance: migrations, backup and restore, a copy to another
database (digest.ops does the work)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.base import first_line, get_config, main
from digest.cli.output import say
from digest.errors import DigestError

if TYPE_CHECKING:
    from digest.config.schema import Config
    from digest.ops.settings import BackupSettings


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply pending migrations."""
    from sqlalchemy.exc import SQLAlchemyError

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


def _backup_settings(config: Config) -> BackupSettings:
    """What `digest db backup` reads: the database, and where each secret it leaves out is."""
    from digest.config.presend import needed_files
    from digest.ops.settings import BackupSettings, Secret

    links = "the unsubscribe and preferences links of the mail already sent stop working"
    if config.web.secret is not None:
        web = Secret(key="web.secret", where="config.yaml or DIGEST_WEB__SECRET", why=links)
    else:
        web = Secret(
            key="web.secret_file", where=str(config.path(config.web.secret_file)), why=links
        )
    files = [
        Secret(key=key, where=str(path))
        for key, path in needed_files(config)
        if not key.endswith("ca_file")  # a CA bundle is no secret
    ]
    return BackupSettings(database_url=config.database_url, secrets=(web, *files))


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@db.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, file: Path) -> None:
    """Write a consistent copy of the database to FILE, while digest keeps running.

    SQLite: the online backup API (the database at one instant, checked). PostgreSQL:
    pg_dump. The backup holds no secrets; it names them and where they are."""
    from digest.ops.backup import backup as take_backup

    done = take_backup(_backup_settings(get_config(ctx)), file)
    held = ""
    if done.contents is not None:
        c = done.contents
        held = f": {c.subscribers:,} subscribers, {c.issues:,} issues, {c.deliveries:,} deliveries"
    if done.kind == "SQLite":
        say(
            f"Backed up the SQLite database to {done.path} ({_size(done.size)}, integrity check "
            f"ok){held}."
        )
    else:
        say(
            f"Backed up the PostgreSQL database to {done.path} with pg_dump (custom format, "
            f"{_size(done.size)})."
        )
    say("It holds no secrets; keep these with it, elsewhere:")
    for secret in done.secrets:
        why = f"; without it, {secret.why}" if secret.why else ""
        say(f"  {secret.key}: {secret.where}{why}")


@db.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already has issues.")
@click.pass_context
def restore(ctx: click.Context, file: Path, force: bool) -> None:
    """Replace the database with the backup FILE (`digest db backup` made it).

    Refused while a send runs, and for a database that has issues unless --force."""
    from digest.ops.backup import restore as restore_backup

    done = restore_backup(get_config(ctx).database_url, file, force=force)
    c = done.contents
    migrated = (
        f", migrated from revision {done.revision_before} to {done.revision_after}"
        if done.revision_before != done.revision_after
        else ""
    )
    say(
        f"Restored {file} into the {done.kind} database{migrated}: {c.subscribers:,} "
        f"subscribers, {c.issues:,} issues, {c.deliveries:,} deliveries."
    )


@db.command()
@click.option(
    "--to", "target", required=True, metavar="URL", help="The empty database to copy into."
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=2000,
    show_default=True,
    help="Rows per insert.",
)
@click.pass_context
def copy(ctx: click.Context, target: str, batch: int) -> None:
    """Copy every table, id and sequence into another database (SQLite to PostgreSQL or
    back), then check that the counts match. Stop `serve` and `schedule` first: what they
    write after the copy began stays behind."""
    from digest.ops.copy import copy as copy_database

    done = copy_database(get_config(ctx).database_url, target, batch=batch)
    for name, count in done.counts.items():
        say(f"  {name}: {count:,}")
    say(
        f"Copied {done.rows:,} rows in {len(done.counts)} tables to {done.target}; the counts "
        "match. Set database.url (or DIGEST_DATABASE__URL) to it to use it."
    )
