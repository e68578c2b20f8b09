"""The database: engine set-up, sessions and migrations (SQLite WAL, or PostgreSQL).

SQLite (WAL mode) is the embedded default; PostgreSQL is the supported server database. The
schema is owned by Alembic migrations in `digest/store/migrations/`; `open_database` applies
pending ones under a lock, so two processes starting at once do not both try.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Connection is re-exported: the send path types its units of work with it
from sqlalchemy import Connection as Connection
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:  # the dialects' INSERTs, imported when used (start-up: issue 22)
    from sqlalchemy import Table
    from sqlalchemy.dialects.postgresql import dml as postgresql_dml
    from sqlalchemy.dialects.sqlite import dml as sqlite_dml

from digest.errors import DigestError
from digest.store.outage import OUTAGE_SECONDS, DatabaseAway, Outage, is_outage
from digest.store.revisions import MIGRATIONS, head_from_files, known_revisions

T = TypeVar("T")

__all__ = ["MIGRATIONS", "known_revisions"]  # re-exported: backup and the tests read them here
_MIGRATION_LOCK = 0x6469_6765  # "dige": the PostgreSQL advisory lock id for migrations
IDLE_IN_TRANSACTION_MS = 60_000
SQLITE_BUSY_SECONDS = 30.0  # how long a SQLite statement waits for another process's lock
CONNECT_TIMEOUT = 10  # seconds: a server that does not answer at all counts as away


# -- engine and sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    outage: Outage = field(default_factory=Outage)
    facts: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write unit of work: committed on success, rolled back on error.

        On SQLite it starts with BEGIN IMMEDIATE, taking the write lock up front, so that two
        processes never fail half-way with "database is locked" when both decide to write.
        A database away when the unit begins is waited out (`outage`); one lost in the middle
        of it raises: only `run_session` can run the work again."""
        session = self.outage.wait_out(self._begin_session)
        with session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work on a bare connection (no ORM): the send path's hot writes, a few
        per group of messages, where a session's own cost outweighed SQLite's. A database away
        when it begins is waited out, as for `session`."""
        connection = self.outage.wait_out(self._begin_connection)
        with connection:
            transaction = connection.get_transaction()
            assert transaction is not None
            try:
                yield connection
                transaction.commit()
            except BaseException:
                transaction.rollback()
                raise

    def run_session(self, work: Callable[[Session], T]) -> T:
        """`work` in a session, run again from the start while the database is away (up to
        `database.outage_seconds`): it must be safe to run twice (its first run may have
        committed just before the connection was lost)."""

        def once() -> T:
            with self.sessions.begin() as session:
                return work(session)

        return self.outage.wait_out(once)

    def run_transaction(
        self,
        work: Callable[[Connection], T],
        *,
        on_away: Callable[[], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        gone: Callable[[], DatabaseAway] | None = None,
    ) -> T:
        """`work` in a transaction on a bare connection, run again from the start while the
        database is away, as `run_session`; see `Outage.wait_out` for the rest."""

        def once() -> T:
            with self.engine.begin() as connection:
                return work(connection)

        return self.outage.wait_out(once, on_away=on_away, cancelled=cancelled, gone=gone)

    def attempt(self, work: Callable[[Connection], T]) -> T:
        """`work` in a transaction, once, unless the database is known to be away: then it
        fails at once (the caller waits in a thread of its own, with `run_transaction`)."""
        if self.outage.away:
            raise _KnownAway()
        with self.engine.begin() as connection:
            result = work(connection)
        self.outage.succeeded()
        return result

    def _begin_session(self) -> Session:
        session = self.sessions()
        try:
            session.begin()
            session.connection()  # checks a connection out (pinged), begins
        except BaseException:
            session.close()
            raise
        self.outage.succeeded()
        return session

    def _begin_connection(self) -> Connection:
        connection = self.engine.connect()
        try:
            connection.begin()
        except BaseException:
            connection.close()
            raise
        self.outage.succeeded()
        return connection

    def dispose(self) -> None:
        self.engine.dispose()


class _KnownAway(OperationalError):
    """Raised by `Database.attempt` without trying while the database is known away."""

    def __init__(self) -> None:
        super().__init__("the database is away", None, Exception("away"))
        self.connection_invalidated = True


def quiet_drivers() -> None:
    """The drivers' and the pool's own log lines (psycopg's "error ignored terminating
    <Pipeline [BAD]>", SQLAlchemy's "Exception during reset") are raw text about a lost
    connection that digest already reports in its own words: kept for DIGEST_DEBUG=1."""
    if os.environ.get("DIGEST_DEBUG"):
        return
    for name in ("psycopg", "sqlalchemy.pool", "sqlalchemy.engine"):
        logger = logging.getLogger(name)
        logger.propagate = False
        logger.setLevel(logging.CRITICAL + 1)
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def connect(url: str, *, outage_seconds: float = OUTAGE_SECONDS) -> Database:
    """An engine for `url` with our SQLite settings; does not touch the schema. A database
    that goes away is waited out for up to `outage_seconds` (see digest.store.outage)."""
    quiet_drivers()
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
            engine = create_engine(
                url,
                pool_pre_ping=True,
                connect_args={"options": options, "connect_timeout": CONNECT_TIMEOUT},
            )
    except (SQLAlchemyError, ValueError, OSError) as exc:
        raise DigestError(f"database.url: cannot use {redact(url)}: {exc}.") from None
    outage = Outage(outage_seconds)
    sessions = sessionmaker(engine, expire_on_commit=False, info={"outage": outage})
    return Database(engine, sessions, outage)


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
    0002, not from our models; the PostgreSQL-only index of address prefixes (0015, on an
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


def conflict_insert(
    connection: Connection, table: Table
) -> postgresql_dml.Insert | sqlite_dml.Insert:
    """An INSERT into `table` that can take ON CONFLICT: PostgreSQL's or SQLite's, by the
    connection's dialect (both spell it alike; the core `insert` has no such clause)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def open_database(
    url: str, *, migrate: bool = True, outage_seconds: float = OUTAGE_SECONDS
) -> Database:
    """Connect and make sure the schema is current (applying migrations when `migrate`). A
    database out of reach is waited for, up to `outage_seconds`: a sender restarted during a
    database restart starts once it is back."""
    database = connect(url, outage_seconds=outage_seconds)
    try:
        revision = database.outage.wait_out(
            lambda: current_revision(database), gone=lambda: _unreachable(url, outage_seconds)
        )
        if revision != head_revision():
            if not migrate:
                raise DigestError(
                    "the database schema is not up to date: run `digest db upgrade` first."
                )
            upgrade(database)
    except OperationalError as exc:
        database.dispose()
        raise DigestError(f"cannot open the database {redact(url)}: {refusal(exc)}.") from None
    except DigestError:
        database.dispose()
        raise
    return database


def _unreachable(url: str, seconds: float) -> DatabaseAway:
    return DatabaseAway(
        f"cannot open the database {redact(url)}: it did not answer for {seconds:g} s "
        "(database.outage_seconds)."
    )


_REFUSALS = {
    "28P01": "it refused the login (user or password)",
    "28000": "it refused the login (not allowed for this user or host)",
    "3D000": "no database of that name exists on the server",
}


def database_failure(exc: BaseException) -> str | None:
    """`exc` in words of ours when it is the database's failure (SQLAlchemy's or a
    driver's), else None: for callers outside the store, which never name SQLAlchemy."""
    if isinstance(exc, SQLAlchemyError):
        return f"the database failed: {refusal(exc)}"
    return None


def log_failure(logger: logging.Logger, what: str, exc: Exception, then: str) -> None:
    """`what failed: <why, in words of ours>; <then>` at ERROR, for work that is tried again
    later and must not end its process: never a driver's text, the traceback only with
    DIGEST_DEBUG=1."""
    if isinstance(exc, DigestError):
        reason = exc.message.rstrip(".")
    else:
        reason = database_failure(exc) or f"unexpected {type(exc).__name__}"
    debug = bool(os.environ.get("DIGEST_DEBUG"))
    hint = "" if debug else " (set DIGEST_DEBUG=1 for details)"
    logger.error("%s failed: %s; %s%s", what, reason, then, hint, exc_info=debug)


def refusal(exc: BaseException) -> str:
    """Why the database refused, in our words (the driver's own text is for DIGEST_DEBUG)."""
    if is_outage(exc):
        return "it is out of reach"
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return _REFUSALS.get(state, f"the server refused (SQLSTATE {state})")
    if isinstance(orig, sqlite3.Error):
        return "SQLite cannot use the file (its folder, its permissions or its contents)"
    return "the server refused"


def identity(database: Database) -> str:
    """This database's id (migration 0014), read once per process: an outcome journal
    carries it, and is replayed only into the database of the same id."""
    cached = database.facts.get("identity")
    if cached is None:

        def read(session: Session) -> str:
            return str(session.scalar(text("SELECT id FROM database_identity LIMIT 1")) or "")

        cached = database.facts["identity"] = database.run_session(read)
    return cached


def server_started(connection: Session) -> datetime | None:
    """When the database server last started (PostgreSQL), else None: claims and leases do not
    expire sooner than a lease timeout after it, whatever their expiry says, since nobody could
    renew while it was down."""
    if connection.get_bind().dialect.name != "postgresql":
        return None
    started = connection.execute(text("SELECT pg_postmaster_start_time()")).scalar()
    return started if isinstance(started, datetime) else None
