"""The schema as SQLAlchemy models: subscribers, issues, the delivery ledger, the event log,
leases.

The schema itself is owned by the Alembic migrations in `digest/store/migrations/`; a test
compares these models with what the migrations build, so the two never drift apart.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates


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
    ERASED = "erased"  # a tombstone: no address, no name; its deliveries keep the counts


class DeliveryStatus(enum.StrEnum):
    """Where one message stands (DESIGN.md section 5); `digest.store.deliveries` moves it.

    queued -> claimed (by a named worker, until an expiry it renews) -> in_flight (its SMTP
    transaction may have begun) -> sent | deferred | failed | bounced | skipped | unknown.
    Only `in_flight` rows of a worker that died become `unknown`; its `claimed` rows go back
    to `queued`, since no byte of them reached the server.
    """

    QUEUED = "queued"
    CLAIMED = "claimed"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    DEFERRED = "deferred"  # a temporary failure: tried again at next_attempt_at (retry_hours)
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"  # the subscriber left (or was suppressed) before their turn came
    UNKNOWN = "unknown"  # may have arrived: never sent again unless `--resend-unknown`


PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED, DeliveryStatus.IN_FLIGHT)
HELD = (DeliveryStatus.CLAIMED, DeliveryStatus.IN_FLIGHT)


class IssueStatus(enum.StrEnum):
    """`sending` until nothing is queued, claimed, in flight or deferred; `stopped` on request
    (a signal), `paused` by a failure that needs attention; `finished` when all is settled."""

    SENDING = "sending"
    STOPPED = "stopped"
    PAUSED = "paused"
    FINISHED = "finished"


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012


def address_key(email: str) -> str:
    """What two addresses are compared by: the whole address lower-cased (`Victim@`, `VICTIM@`
    and `vIctim@` are one inbox at every provider that matters, and one person here)."""
    return email.lower()


def new_token_key() -> str:
    """Six random bytes (8 characters) that a subscriber's links carry (digest.tokens)."""
    return secrets.token_urlsafe(6)


class Subscriber(Base):
    """A person. Ids only grow (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so a link
    made for one row can never reach another; erasure leaves a tombstone (`erased`) in place.
    `email` is kept as given, `email_key` (unique) is what comparisons use; `token_key` binds
    their links to this row (None: a row older than revision 0005, whose links already sent
    carry no key)."""

    __tablename__ = "subscribers"
    __table_args__ = (
        Index("ix_subscribers_email_key", "email_key", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_key: Mapped[str | None] = mapped_column(String(320), default=None)
    token_key: Mapped[str | None] = mapped_column(String(16), default=new_token_key)
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

    @validates("email")
    def _key(self, _: str, email: str) -> str:
        self.email_key = address_key(email)
        return email


class ErasedAddress(Base):
    """The SHA-256 of an erased address (`address_key` first), so that an import or a sign-up
    does not bring the person back. Plain SHA-256, not keyed with web.secret: it must survive a
    secret rotation and work in commands that never read the secret (see SECURITY.md)."""

    __tablename__ = "erased_addresses"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)


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
    # the editor's note (Markdown) shown above the posts, copied from `editor_notes` when the
    # issue was created, so a resumed send shows the same words
    note: Mapped[str | None] = mapped_column(Text, default=None)


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
    worker: Mapped[str | None] = mapped_column(String(200), default=None)  # "host:pid"
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    deferred_since: Mapped[datetime | None] = mapped_column(default=None)


class Event(Base):
    """The event log: one row per thing that happened to a subscriber (subscribed, confirmed,
    preferences changed, unsubscribed, bounced, complained, reactivated, erased...) or to an
    issue (created, finished): when, how (`method`), who did it (`actor`: an API token, an
    administrator) and from which issue. Written in the same transaction as the change it
    records (`digest.store.events.append`); never deleted.

    `id` is the order rows were written in. `position` is the order they became visible in:
    on PostgreSQL a later id can commit first, so the feed (`digest.store.events.feed`) hands
    out positions, under a lock, to committed rows that have none, and pages by position: a
    reader that has seen position N never later finds a row below N."""

    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_issue_kind", "issue_id", "kind"),
        Index("ix_event_log_position", "position", unique=True),
        # the few rows not yet given a position, found without reading the rest
        Index(
            "ix_event_log_unpositioned",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    position: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=None
    )
    kind: Mapped[str] = mapped_column(String(30))
    method: Mapped[str] = mapped_column(String(30))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True, default=None
    )
    issue_id: Mapped[int | None] = mapped_column(
        ForeignKey("issues.id", ondelete="SET NULL"), default=None
    )
    # the delivery a bounce or complaint is about; not a foreign key: events outlive the ledger
    delivery_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=None
    )
    actor: Mapped[str | None] = mapped_column(String(100), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ReturnedMail(Base):
    """One processed returned message or provider event (a bounce, complaint, mailed
    unsubscribe, auto-reply...), keyed on its Message-ID (or event id): a key seen before is
    never applied again, so reading the same mailbox twice changes nothing."""

    __tablename__ = "returned_mail"
    __table_args__ = (Index("ix_returned_mail_issue_kind", "issue_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), default=None
    )
    # the address named, only when it is no subscriber's (theirs lives on their row alone)
    address: Mapped[str | None] = mapped_column(String(320), default=None)
    status: Mapped[str | None] = mapped_column(String(20), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A sending process (`host:pid`): its claimed deliveries stay its own until `expires_at`,
    which its heartbeat renews — one row per worker, so renewing never touches (or waits for)
    the rows it is sending."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Lease(Base):
    """A named lock with an expiry its holder renews, so only one process sends at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column()
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class SendRate(Base):
    """The shared state of the sending limits (digest.delivery.rate): for each limit the
    theoretical arrival time (epoch seconds) of the next message, so every worker on every
    machine draws its sending slots from the same schedule."""

    __tablename__ = "send_rates"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    second_next: Mapped[float] = mapped_column(Double, default=0.0)
    hour_next: Mapped[float] = mapped_column(Double, default=0.0)


class ApiToken(Base):
    """A bearer token of the HTTP API (`digest admin token create`). Only the SHA-256 of the
    secret is kept: the token is shown once. `scope` is `read` or `write`; `allow_confirmed`
    lets it add people as already confirmed (the owner vouches for their consent); a revoked
    token stays listed, and its name is never given to another token, so consent recorded
    with it keeps naming one token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell it by
    scope: Mapped[str] = mapped_column(String(10))
    allow_confirmed: Mapped[bool] = mapped_column(default=False)
    per_minute: Mapped[int] = mapped_column(default=600)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class OwnerAlert(Base):
    """An alert mailed to `owner.email` (digest.ops.alerts): at most one per cause and day
    (`day` is the UTC date, YYYY-MM-DD), claimed here before the mail goes."""

    __tablename__ = "owner_alerts"
    __table_args__ = (UniqueConstraint("cause", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cause: Mapped[str] = mapped_column(String(200))
    day: Mapped[str] = mapped_column(String(10))
    summary: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class Admin(Base):
    """Someone who may log in to the desk (/admin/): `digest admin add-user NAME`. The password
    is kept only as an argon2id hash; `totp_secret` is set once a second factor is on
    (`totp_pending` while it is being enrolled: on only after a code proves the phone has
    it); `totp_last_step` is the last time step accepted, so a code is never used twice."""

    __tablename__ = "admins"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_pending: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdminSession(Base):
    """A desk session: the cookie carries a random secret, the row only its SHA-256 (a copy
    of the database logs nobody in). `csrf` is the session's own CSRF token. A session ends
    when revoked (log out, "log out everywhere"), after the idle lifetime since `seen_at`, or
    after the absolute lifetime since `created_at` (digest.access.desk)."""

    __tablename__ = "admin_sessions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    admin_id: Mapped[int] = mapped_column(ForeignKey("admins.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class EditorNote(Base):
    """The editor's note (Markdown) waiting for the next issue of one frequency; copied into
    `Issue.note` when that issue is created, and then gone from here."""

    __tablename__ = "editor_notes"

    frequency: Mapped[str] = mapped_column(String(10), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100), default=None)


class HeldPost(Base):
    """A post left out: of the next issue (`next`: it is new again for the one after) or of
    every issue (`always`, until the owner lets it go)."""

    __tablename__ = "held_posts"

    post_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100), default=None)


class DatabaseIdentity(Base):
    """One row: a random id written by migration 0014, which tells this database from any
    other (an outcome journal is replayed only into the database it was written for)."""

    __tablename__ = "database_identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)


class Click(Base):
    """One followed link of an issue's email (`tracking.clicks`): the issue, the link's index
    in the issue's posts, and whether it looked human. No address, no IP, no user agent;
    `delivery_id` only with `tracking.clicks: personal` (None in aggregate mode, always)."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_issue_link", "issue_id", "link"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    link: Mapped[int] = mapped_column(Integer)
    human: Mapped[bool] = mapped_column(default=True)
    delivery_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Welcome(Base):
    """The welcome mail of one confirmed reader: a delivery of its own kind, outside any
    issue. One row per subscriber (unique), claimed `queued`/`failed` -> `sending` before the
    mail goes, so it is never sent twice: a process that dies while sending leaves `sending`,
    which is never tried again (it may have arrived)."""

    __tablename__ = "welcomes"
    __table_args__ = (Index("ix_welcomes_status", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookCursor(Base):
    """How far in the event log (`event_log.position`) each receiver's outbox was filled."""

    __tablename__ = "webhook_cursors"

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)


class WebhookMessage(Base):
    """The outbox of outgoing webhooks: one row per event and receiver (`endpoint` is the
    SHA-256 of its URL), with the Standard Webhooks id `msg_id` (stable: a retry carries the
    same id) and the body as sent. `next_attempt_at` doubles as a claim: a sender moves it
    past its own timeout before posting, so two processes never post one row at once."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("endpoint", "msg_id"),
        Index("ix_webhook_outbox_due", "delivered_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    msg_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(30))
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    gave_up_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class SpentChallenge(Base):
    """A solved sign-up challenge (ALTCHA) a sign-up was accepted with: the SHA-256 of the
    challenge's signature, kept until the challenge expires, so no solution passes twice."""

    __tablename__ = "spent_challenges"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
