"""What the desk reads that no command did before: the audience's daily joins and leaves,
deliveries that did not settle, returned mail by kind, and one subscriber's timeline.
Everything here only reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from digest.store.tables import (
    Delivery,
    DeliveryStatus,
    Event,
    Issue,
    ReturnedMail,
    Subscriber,
)

JOINS = ("subscribe", "confirm", "resubscribe", "reactivate")
LEAVES = ("unsubscribe", "bounce", "complaint")
UNCLASSIFIED = "notice"  # returned mail that looked like a report but named no verdict


def _day(session: Session, column: Any) -> ColumnElement[date]:
    """The UTC date of a timestamp, in the database's own SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC text; date() reads its first ten characters


def daily_changes(session: Session, since: datetime) -> dict[str, tuple[int, int]]:
    """ISO day (UTC) -> (joins, leaves) of the audience since `since`: joins are subscribes,
    confirmations, returns and reactivations; leaves are unsubscribes, hard bounces and
    complaints."""
    day = _day(session, Event.created_at)
    joined = func.sum(case((Event.kind.in_(JOINS), 1), else_=0))
    left = func.sum(case((Event.kind.in_(LEAVES), 1), else_=0))
    rows = session.execute(
        select(day, joined, left)
        .where(Event.created_at >= since, Event.kind.in_(JOINS + LEAVES))
        .group_by(day)
        .order_by(day)
    )
    return {str(when)[:10]: (int(j or 0), int(lv or 0)) for when, j, lv in rows}


@dataclass(frozen=True, slots=True)
class Unsettled:
    """An issue's deliveries that need the owner: deferred (retried) and unknown (may have
    arrived; sent again only with `--resend-unknown`)."""

    issue_id: int
    key: str
    deferred: int
    unknown: int


def unsettled(session: Session) -> list[Unsettled]:
    statuses = (DeliveryStatus.DEFERRED, DeliveryStatus.UNKNOWN)
    deferred = func.sum(case((Delivery.status == DeliveryStatus.DEFERRED, 1), else_=0))
    unknown = func.sum(case((Delivery.status == DeliveryStatus.UNKNOWN, 1), else_=0))
    rows = session.execute(
        select(Issue.id, Issue.key, deferred, unknown)
        .join(Delivery, Delivery.issue_id == Issue.id)
        .where(Delivery.status.in_(statuses))
        .group_by(Issue.id, Issue.key)
        .order_by(Issue.id.desc())
    )
    return [Unsettled(i, k, int(d or 0), int(u or 0)) for i, k, d, u in rows]


@dataclass(frozen=True, slots=True)
class Returned:
    id: int
    kind: str
    source: str
    created_at: datetime
    address: str | None  # the subscriber's, or the one named when it is no subscriber's
    subscriber_id: int | None
    issue: str | None
    status: str | None
    reason: str


def returned_mail(
    session: Session,
    *,
    kind: str | None = None,
    issue_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Returned]:
    """Processed returned mail newest first (a keyset page: ids below `before`)."""
    query = (
        select(ReturnedMail, Subscriber.email, Subscriber.email_key, Issue.key)
        .outerjoin(Subscriber, Subscriber.id == ReturnedMail.subscriber_id)
        .outerjoin(Issue, Issue.id == ReturnedMail.issue_id)
        .order_by(ReturnedMail.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(ReturnedMail.kind == kind)
    if issue_id is not None:
        query = query.where(ReturnedMail.issue_id == issue_id)
    if before is not None:
        query = query.where(ReturnedMail.id < before)
    return [
        Returned(
            id=row.id,
            kind=row.kind,
            source=row.source,
            created_at=row.created_at,
            address=(email if key is not None else None) or row.address,
            subscriber_id=row.subscriber_id,
            issue=issue,
            status=row.status,
            reason=row.reason,
        )
        for row, email, key, issue in session.execute(query)
    ]


def returned_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(ReturnedMail.kind, func.count())
        .group_by(ReturnedMail.kind)
        .order_by(ReturnedMail.kind)
    )
    return {kind: int(count) for kind, count in rows}


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of a subscriber's timeline: an event of theirs or a delivery to them."""

    at: datetime
    kind: str  # an event kind, or `delivery`
    method: str  # how (an event's method) or where it stands (a delivery's status)
    issue: str | None
    detail: str | None
    actor: str | None


def timeline(session: Session, subscriber_id: int, limit: int = 200) -> list[Moment]:
    """The subscriber's events and deliveries, newest first (at most `limit` of each)."""
    events = session.execute(
        select(Event, Issue.key)
        .outerjoin(Issue, Issue.id == Event.issue_id)
        .where(Event.subscriber_id == subscriber_id)
        .order_by(Event.id.desc())
        .limit(limit)
    )
    moments = [Moment(e.created_at, e.kind, e.method, key, e.detail, e.actor) for e, key in events]
    deliveries = session.execute(
        select(Delivery, Issue.key)
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    moments += [
        Moment(d.sent_at or d.updated_at, "delivery", d.status, key, d.error, d.worker)
        for d, key in deliveries
    ]
    return sorted(moments, key=lambda m: m.at, reverse=True)


def returned_since(session: Session, kind: str, since: datetime) -> int:
    """Returned mail of `kind` processed at or after `since`."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(ReturnedMail)
            .where(ReturnedMail.kind == kind, ReturnedMail.created_at >= since)
        )
        or 0
    )
