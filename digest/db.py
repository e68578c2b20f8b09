"""The database: SQLAlchemy models, engine set-up and migrations. The only place with SQL.

SQLite (WAL mode) is the embedded default; PostgreSQL is the supported server database. The
schema is owned by Alembic migrations in `digest/migrations/`; `open_database` applies pending
ones under a lock, so two processes starting at once do not both try.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from digest.errors import DigestError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6469_6765  # "dige": the PostgreSQL advisory lock id for migrations


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back time-zone aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Status(enum.StrEnum):
    """A subscriber's standing. Only `active` ones receive digests."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a sender; a crash leaves it here, recovered as unknown
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    UNKNOWN = "unknown"  # the connection dropped after the final "." and before the reply
    SKIPPED = "skipped"  # the subscriber left (or was suppressed) before their turn came


class IssueStatus(enum.StrEnum):
    SENDING = "sending"
    PAUSED = "paused"
    FINISHED = "finished"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default=Status.PENDING, index=True)
    locale: Mapped[str | None] = mapped_column(String(10), default=None)
    categories: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    frequency: Mapped[str | None] = mapped_column(String(10), default=None)
    paused: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[datetime | None] = mapped_column(default=None)
    consent_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    consent_user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    consent_source: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(default=None)


class Issue(Base):
    """One edition, keyed by its period; snapshots its posts so a resumed send is identical."""

    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    frequency: Mapped[str] = mapped_column(String(10), default="weekly")
    status: Mapped[str] = mapped_column(String(20), default=IssueStatus.SENDING, index=True)
    paused_reason: Mapped[str | None] = mapped_column(Text, default=None)
    posts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class IssuePost(Base):
    """Which post identities an issue covered: what "already sent" is read from."""

    __tablename__ = "issue_posts"
    __table_args__ = (UniqueConstraint("issue_id", "post_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    post_id: Mapped[str] = mapped_column(String(500), index=True)


class Variant(Base):
    """An issue rendered for one locale and one category filter, stored once, reused on resume."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("issue_id", "locale", "filter_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(10))
    filter_key: Mapped[str] = mapped_column(String(500), default="")
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    greeting_named: Mapped[str] = mapped_column(Text)
    greeting_anonymous: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The ledger: one row per issue and subscriber, so nothing is sent twice or skipped."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        # the claim reads "queued rows of this issue in id order": one index range scan
        Index("ix_deliveries_issue_status_id", "issue_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(
        ForeignKey("variants.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """Subscribe, confirm, unsubscribe, resubscribe...: when, how, and from which issue."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_issue_kind", "issue_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(30))
    method: Mapped[str] = mapped_column(String(30))
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Lease(Base):
    """A named lock with an expiry, so only one scheduler runs a send at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()


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

    def dispose(self) -> None:
        self.engine.dispose()


def connect(url: str) -> Database:
    """An engine for `url` with our SQLite settings; does not touch the schema."""
    try:
        if url.startswith("sqlite"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:" and not url.startswith("sqlite:///:memory:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError, OSError) as exc:
        raise DigestError(f"database.url: cannot use {_redact(url)}: {exc}.") from None
    return Database(engine, sessionmaker(engine, expire_on_commit=False))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _redact(url: str) -> str:
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
    0002, not from our models."""
    table = getattr(obj, "table", None)
    owner = name if kind == "table" else getattr(table, "name", None)
    return owner != "apscheduler_jobs"


def alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    return revision


def upgrade(database: Database) -> tuple[str | None, str]:
    """Apply pending migrations under a lock; returns (revision before, revision after)."""
    from alembic import command

    url = database.engine.url.render_as_string(hide_password=False)
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
        config = alembic_config(url)
        config.attributes["connection"] = connection
        from alembic.runtime.migration import MigrationContext

        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
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
        raise DigestError(f"cannot open the database {_redact(url)}: {reason}.") from None
    return database
