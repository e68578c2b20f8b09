"""Who an issue goes to: the active subscribers of its rhythm, and who it still owes a message.

A subscriber receives an issue of `frequency` when active, not paused, and on that rhythm
(no stated rhythm means the main one).
"""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, Integer, Text, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from digest.models import Recipient
from digest.store.deliveries import RECIPIENT_COLUMNS, to_recipient
from digest.store.tables import Delivery, DeliveryStatus, Issue, Status, Subscriber, UTCDateTime


def audience(frequency: str, default_frequency: str) -> tuple[ColumnElement[bool], ...]:
    """WHERE clauses for the subscribers an issue of `frequency` goes to."""
    wanted = Subscriber.frequency == frequency
    if frequency == default_frequency:
        wanted = wanted | Subscriber.frequency.is_(None)
    return (*audience_status(), wanted)


def waiting_recipients(session: Session, issue: Issue) -> list[Recipient]:
    """The active recipients an issue still owes a message (queued, or failed when it
    delivered nothing): what a dry run of a resumed issue writes."""
    rows = session.execute(
        select(*RECIPIENT_COLUMNS)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(*_waiting(session, issue))
        .order_by(Delivery.id)
    )
    return [to_recipient(row) for row in rows]


def count_waiting(session: Session, issue: Issue) -> int:
    """How many `waiting_recipients` there are, without loading them."""
    query = (
        select(func.count())
        .select_from(Delivery)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
    )
    return int(session.scalar(query.where(*_waiting(session, issue))) or 0)


def _waiting(session: Session, issue: Issue) -> tuple[ColumnElement[bool], ...]:
    owed = [DeliveryStatus.QUEUED, DeliveryStatus.CLAIMED]
    delivered = exists().where(
        Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.SENT
    )
    if not session.scalar(select(delivered)):
        owed.append(DeliveryStatus.FAILED)
    return (Delivery.issue_id == issue.id, Delivery.status.in_(owed), *audience_status())


def count_audience(session: Session, frequency: str, default_frequency: str) -> int:
    """How many `audience_recipients` there are, without loading them."""
    query = select(func.count()).select_from(Subscriber)
    return int(session.scalar(query.where(*audience(frequency, default_frequency))) or 0)


def audience_recipients(
    session: Session, frequency: str, default_frequency: str
) -> list[Recipient]:
    """Every subscriber a new issue of `frequency` would be queued for."""
    rows = session.execute(
        select(
            literal(0, Integer()),
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.locale,
            Subscriber.categories,
            literal(0, Integer()),
            literal(None, UTCDateTime()),
            Subscriber.token_key,
        )
        .where(*audience(frequency, default_frequency))
        .order_by(Subscriber.id)
    )
    return [to_recipient(row) for row in rows]


def audience_status() -> tuple[ColumnElement[bool], ...]:
    return (Subscriber.status == Status.ACTIVE, Subscriber.paused.is_(False))


def queued_variants(
    session: Session, issue: Issue
) -> list[tuple[str | None, tuple[str, ...] | None]]:
    """The distinct (locale, categories) of the subscribers an issue still owes a message."""
    as_text = cast(Subscriber.categories, Text)  # PostgreSQL cannot group by a json value
    rows = session.execute(
        select(Subscriber.locale, as_text)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(
            Delivery.issue_id == issue.id,
            Delivery.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)),
        )
        .group_by(Subscriber.locale, as_text)
    )
    seen: dict[tuple[str | None, tuple[str, ...] | None], None] = {}
    for locale, categories in rows:
        parsed = json.loads(categories) if categories else None
        seen[(locale, tuple(parsed) if parsed else None)] = None
    return list(seen)
