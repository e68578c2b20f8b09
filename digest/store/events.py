"""The event log: writing an event, reading it as a feed in commit order, counting recent ones.

Every event is one `Event` row added by `append` to the session of the change it records, so
both commit or neither does. The feed's guarantee: a reader paging with `feed(after=N)` sees
every committed event exactly once, in positions that only grow. Ids cannot give that on
PostgreSQL: transaction A takes id 9, B takes id 10 and commits first; a reader then sees 10,
moves its cursor past 9, and never sees A's row. So rows are written without a position, and
`feed` first gives positions to every committed row that has none (`_assign`), then reads by
position:

- On PostgreSQL the assignment takes an advisory lock held until its transaction ends, and
  the positions come from a sequence, so each assignment's positions are above every earlier
  one's, and an assignment is committed before the next begins. A row still uncommitted is
  invisible to the assignment and gets a later position once it is committed: no reader can
  have passed it. Writers never take that lock: a sign-up never waits for a reader.
- On SQLite writers take turns (BEGIN IMMEDIATE), so ids already follow commit order and a
  row's position is its id.

`count_since` answers the sign-up limits: how many events of a kind came lately from one IP
address or for one subscriber.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from digest.store.tables import Event, Issue, Subscriber, utcnow

POSITIONS = "event_log_position_seq"  # PostgreSQL only (migration 0008)
_FEED_LOCK = 0x6469_6766  # "digf": the PostgreSQL advisory lock of position assignment

# What the log records (the `kind` column). Subscriber events:
SUBSCRIBER_KINDS = (
    "subscribe",  # added active: by the operator, an import, or an API token that vouches
    "confirm-mail",  # a confirmation mail was sent (the sign-up limits count these)
    "confirm",  # the person confirmed a sign-up (double opt-in)
    "import",  # imported with a status that receives nothing (no consent given here)
    "preferences",  # locale, frequency or categories changed (detail: what changed)
    "pause",
    "resume",
    "unsubscribe",  # method: one-click, link, preferences, mailto, cli, import, api
    "resubscribe",  # the person came back through their own link
    "bounce",
    "soft-bounce",
    "complaint",
    "reactivate",  # the operator restored a wrongly bounced or complained address
    "erase",
)
ISSUE_KINDS = ("issue-created", "issue-finished")
KINDS = SUBSCRIBER_KINDS + ISSUE_KINDS
# An administrative action (digest.access.admins.audit): `method` names it (login,
# login-failed, note-set, subscriber-unsubscribe...), `actor` who, `ip` from where. Not in the
# API's feed, which is about the audience and the issues (`feed(kinds=KINDS)`).
AUDIT_KINDS = ("audit",)
# A reader's own history, on the desk's subscriber page only (not in the API's feed, nor
# carried to webhooks): `welcome` (digest.store.welcomes) and `click`, a post link they
# followed with `tracking.clicks: personal` (digest.store.clicks; detail: the post's URL).
READER_KINDS = ("welcome", "click")


def append(
    session: Session,
    kind: str,
    method: str,
    *,
    subscriber_id: int | None = None,
    issue_id: int | None = None,
    delivery_id: int | None = None,
    actor: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    detail: str | None = None,
    created_at: datetime | None = None,
) -> Event:
    """Add an event to the session's transaction (written with it, or not at all)."""
    event = Event(
        kind=kind,
        method=method[:30],
        subscriber_id=subscriber_id,
        issue_id=issue_id,
        delivery_id=delivery_id,
        actor=actor[:100] if actor else None,
        ip=ip[:64] if ip else None,
        user_agent=(user_agent or "")[:500] or None,
        detail=detail,
        created_at=created_at or utcnow(),
    )
    session.add(event)
    return event


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One event as the feed shows it: no IP address or user agent (they stay in the log for
    the owner's eyes, and go when the person is erased)."""

    position: int
    event_id: int  # the row's id: stable, but not in commit order
    kind: str
    method: str
    created_at: datetime
    subscriber_id: int | None
    email: str | None  # None once the person is erased
    issue: str | None  # the issue's key
    delivery_id: int | None
    actor: str | None
    detail: str | None


def feed(
    session: Session, after: int = 0, limit: int = 100, kinds: Collection[str] | None = None
) -> list[LoggedEvent]:
    """Up to `limit` events after position `after`, in position order (see the module's
    docstring for why no committed event is ever skipped or shown twice); only those of
    `kinds` when given."""
    _assign(session)
    query = (
        select(Event, Subscriber.email, Subscriber.email_key, Issue.key)
        .outerjoin(Subscriber, Subscriber.id == Event.subscriber_id)
        .outerjoin(Issue, Issue.id == Event.issue_id)
        .where(Event.position > after)
    )
    if kinds is not None:
        query = query.where(Event.kind.in_(list(kinds)))
    rows = session.execute(query.order_by(Event.position).limit(limit)).all()
    return [
        LoggedEvent(
            position=int(event.position or 0),  # every row read has one
            event_id=event.id,
            kind=event.kind,
            method=event.method,
            created_at=event.created_at,
            subscriber_id=event.subscriber_id,
            email=email if key is not None else None,  # a tombstone has no key
            issue=issue,
            delivery_id=event.delivery_id,
            actor=event.actor,
            detail=event.detail,
        )
        for event, email, key, issue in rows
    ]


def _assign(session: Session) -> None:
    """Give every committed event without a position the next positions."""
    position: ColumnElement[int] = Event.__table__.c.id
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _FEED_LOCK})
        position = func.nextval(POSITIONS)
    session.execute(
        update(Event)
        .where(Event.position.is_(None))
        .values(position=position)
        .execution_options(synchronize_session=False)
    )


def last_position(session: Session) -> int:
    """The highest position given so far (0 for none)."""
    return int(session.scalar(select(func.max(Event.position))) or 0)


def count_since(
    session: Session,
    kind: str,
    since: datetime,
    *,
    ip: str | None = None,
    subscriber_id: int | None = None,
) -> int:
    """Events of `kind` created at or after `since`, from `ip` and/or for `subscriber_id`."""
    query = select(func.count()).select_from(Event).where(Event.kind == kind)
    if ip is not None:
        query = query.where(Event.ip == ip)
    if subscriber_id is not None:
        query = query.where(Event.subscriber_id == subscriber_id)
    return int(session.scalar(query.where(Event.created_at >= since)) or 0)


def earliest_since(session: Session, kind: str, since: datetime, *, ip: str) -> datetime | None:
    """The first event of `kind` from `ip` at or after `since`: when a limit counted over a
    window frees a place again (that moment plus the window)."""
    return session.scalar(
        select(func.min(Event.created_at)).where(
            Event.kind == kind, Event.ip == ip, Event.created_at >= since
        )
    )


def latest(session: Session, kind: str, subscriber_id: int) -> datetime | None:
    """When the subscriber's latest event of `kind` was written (None: never)."""
    return session.scalar(
        select(func.max(Event.created_at)).where(
            Event.kind == kind, Event.subscriber_id == subscriber_id
        )
    )


def ips_since(session: Session, kind: str, since: datetime, limit: int = 5000) -> list[str]:
    """The IP addresses of the latest `limit` events of `kind` at or after `since` (the
    sign-up challenge counts them by network)."""
    rows = session.scalars(
        select(Event.ip)
        .where(Event.kind == kind, Event.created_at >= since, Event.ip.is_not(None))
        .order_by(Event.id.desc())
        .limit(limit)
    )
    return [ip for ip in rows if ip]
