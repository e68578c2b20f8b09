"""The database: engine set-up, sessions and migrations (SQLite WAL, or PostgreSQL).

SQLite (WAL mode) is the embedded default; PostgreSQL is the supported server database. The
schema is owned by Alembic migrations in `digest/store/migrations/`; `open_database` applies
pending ones under a lock, so two processes starting at once do not both try.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DigestError
from digest.store.revisions import MIGRATIONS, head_from_files, known_revisions

__all__ = ["MIGRATIONS", "known_revisions"]  # re-exported: backup and the tests read them here
_MIGRATION_LOCK = 0x6469_6765  # "dige": the PostgreSQL advisory lock id for migrations
IDLE_IN_TRANSACTION_MS = 60_000
SQLITE_BUSY_SECONDS = 30.0  # how long a SQLite statement waits for another process's lock


# -- engine and sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write unit of work: committed on success, rolled back on error.

        On SQLite it starts with BEGIN IMMEDIATE, taking the write lock up front, so that two
        processes never fail half-way with "database is locked" when both decide to write.
        """
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work on a bare connection (no ORM): the send path's hot writes, a few
        per group of messages, where a session's own cost outweighed SQLite's."""
        with self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def connect(url: str) -> Database:
    """An engine for `url` with our SQLite settings; does not touch the schema."""
    try:
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not url.startswith("sqlite:///:memory:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
            _configure_sqlite(engine)
        else:
            # a process stopped mid-transaction (SIGSTOP, a stalled disk) must not hold its
            # row locks forever: the server ends such a session after a minute, and its lease
            # and claims can then be taken over
            options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
            engine = create_engine(url, pool_pre_ping=True, connect_args={"options": options})
    except (SQLAlchemyError, ValueError, OSError) as exc:
        raise DigestError(f"database.url: cannot use {redact(url)}: {exc}.") from None
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _use_wal(cursor: Any, patience: float = SQLITE_BUSY_SECONDS) -> None:
    """Put the database in WAL mode, waiting out another process doing the same.

    Turning a new database to WAL takes an exclusive lock for which SQLite does not call the
    busy handler: two processes opening a fresh file at once (`digest serve` and `digest
    schedule` started together) got "database is locked" at once, whatever the timeout. So the
    wait is ours, as long as the busy timeout would have been. Once in WAL (the mode is kept in
    the file) the pragma takes no lock."""
    deadline = time.monotonic() + patience
    pause = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured URL"


# -- migrations ---------------------------------------------------------------------------------


def include_object(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    """For Alembic's comparisons: APScheduler's table (and its index) come from migration
    0002, not from our models; the PostgreSQL-only index of address prefixes (0014, on an
    expression SQLite has no collation for) is the migration's alone."""
    if kind == "index" and name == "ix_subscribers_email_key_c":
        return False
    table = getattr(obj, "table", None)
    owner = name if kind == "table" else getattr(table, "name", None)
    return owner != "apscheduler_jobs"


def alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# Every command opens the database and compares its revision with the newest migration,
# read from the migration files (digest.store.revisions); Alembic is loaded only to migrate,
# or when the files leave the head in doubt (tests/test_db.py checks both ways agree).
_head: str | None = None


def head_revision() -> str:
    """The newest revision of digest/store/migrations/versions/."""
    global _head
    if _head is None:
        _head = head_from_files() or alembic_head()
    return _head


def alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(database: Database) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with database.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        found = list(versions)
        connection.rollback()
    return str(found[0]) if len(found) == 1 else None


def upgrade(database: Database) -> tuple[str | None, str]:
    """Apply pending migrations under a lock; returns (revision before, revision after).

    On SQLite the foreign keys are off while migrations run (a table that others reference
    can only be rebuilt so: with them on, dropping the old copy would delete every row that
    references it through ON DELETE CASCADE), and checked before the transaction commits.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    url = database.engine.url.render_as_string(hide_password=False)
    with database.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.dbapi_connection
        if sqlite and raw is not None:  # outside any transaction: SQLite ignores it inside one
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK}
                    )
                config = alembic_config(url)
                config.attributes["connection"] = connection
                before = MigrationContext.configure(connection).get_current_revision()
                command.upgrade(config, "head")
                after = MigrationContext.configure(connection).get_current_revision()
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise DigestError("a migration left rows that reference missing rows.")
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
    return before, after or head_revision()


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Connect and make sure the schema is current (applying migrations when `migrate`)."""
    database = connect(url)
    try:
        if current_revision(database) != head_revision():
            if not migrate:
                raise DigestError(
                    "the database schema is not up to date: run `digest db upgrade` first."
                )
            upgrade(database)
    except OperationalError as exc:
        database.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DigestError(f"cannot open the database {redact(url)}: {reason}.") from None
    return database
