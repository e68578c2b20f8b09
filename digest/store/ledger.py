"""The delivery ledger: issues, their recipients, and what happened to every message.

The guarantees of `digest send` live here. An issue is created once per period (the key is
unique in the database) with one queued delivery per active subscriber (unique per issue and
subscriber). A sender *claims* a few deliveries (`queued` -> `sending`) in a transaction before
it transmits them and records each outcome after; so a crash leaves at most the claimed ones
in `sending`, which `recover` turns into `unknown` — never re-sent blindly, never forgotten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Text,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from digest.models import Edition, Post, Recipient, Rendered
from digest.store.subscribers import record
from digest.store.tables import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssuePost,
    IssueStatus,
    Status,
    Subscriber,
    UTCDateTime,
    Variant,
    utcnow,
)

UNFINISHED = (IssueStatus.SENDING, IssueStatus.PAUSED)


def sent_post_ids(session: Session, frequency: str) -> set[str]:
    """Post identities any issue of this frequency already covered."""
    rows = session.scalars(
        select(IssuePost.post_id).join(Issue).where(Issue.frequency == frequency)
    )
    return set(rows)


def issue_by_key(session: Session, key: str) -> Issue | None:
    return session.scalar(select(Issue).where(Issue.key == key))


def unfinished_issue(session: Session, frequency: str | None = None) -> Issue | None:
    """The oldest issue still sending or paused (a crash, a kill, a pause)."""
    query = select(Issue).where(Issue.status.in_(UNFINISHED)).order_by(Issue.id)
    if frequency is not None:
        query = query.where(Issue.frequency == frequency)
    return session.scalars(query.limit(1)).first()


def edition_of(issue: Issue) -> Edition:
    return Edition(
        key=issue.key,
        date=issue.created_at,
        posts=tuple(Post.from_json(p) for p in issue.posts),
    )


def audience(frequency: str, default_frequency: str) -> tuple[ColumnElement[bool], ...]:
    """WHERE clauses for the subscribers an issue of `frequency` goes to."""
    wanted = Subscriber.frequency == frequency
    if frequency == default_frequency:
        wanted = wanted | Subscriber.frequency.is_(None)
    return (*audience_status(), wanted)


def create_issue(
    session: Session, edition: Edition, *, frequency: str, default_frequency: str
) -> Issue:
    """The issue with its post snapshot and one queued delivery per active subscriber."""
    issue = Issue(
        key=edition.key,
        frequency=frequency,
        status=IssueStatus.SENDING,
        posts=[post.to_json() for post in edition.posts],
        created_at=edition.date,
    )
    session.add(issue)
    session.flush()
    session.execute(
        insert(IssuePost),
        [{"issue_id": issue.id, "post_id": post.id} for post in edition.posts],
    )
    recipients = select(
        literal(issue.id, Integer()),
        Subscriber.id,
        literal(DeliveryStatus.QUEUED.value, String()),
        literal(0, Integer()),
        literal(utcnow(), UTCDateTime()),
    ).where(*audience(frequency, default_frequency))
    session.execute(
        insert(Delivery).from_select(
            ["issue_id", "subscriber_id", "status", "attempts", "updated_at"], recipients
        )
    )
    return issue


def recover(session: Session, issue: Issue) -> int:
    """After a crash: deliveries left `sending` may or may not have gone out -> `unknown`."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.SENDING)
        .values(
            status=DeliveryStatus.UNKNOWN,
            updated_at=utcnow(),
            error="the sender stopped while this message was in flight",
        )
    )
    if issue.status == IssueStatus.PAUSED:
        issue.status = IssueStatus.SENDING
        issue.paused_reason = None
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# what the send path needs of a queued delivery and its subscriber (a `Recipient`)
_QUEUED_RECIPIENT = (
    Delivery.id,
    Subscriber.id,
    Subscriber.email,
    Subscriber.name,
    Subscriber.locale,
    Subscriber.categories,
)


def claim(session: Session, issue: Issue, limit: int) -> list[Recipient]:
    """Take up to `limit` queued deliveries for sending; the subscribers who left are skipped.

    On PostgreSQL rows are locked with SKIP LOCKED so that parallel senders never claim the
    same delivery; on SQLite the write transaction (BEGIN IMMEDIATE) serialises claims.
    """
    rows = session.execute(
        select(*_QUEUED_RECIPIENT, Subscriber.status, Subscriber.paused)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.QUEUED)
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    ).all()
    claimed: list[Recipient] = []
    gone: list[int] = []
    for delivery_id, subscriber_id, email, name, locale, categories, status, paused in rows:
        if status != Status.ACTIVE or paused:
            gone.append(delivery_id)
            continue
        claimed.append(
            Recipient(
                delivery_id,
                subscriber_id,
                email,
                name,
                locale,
                tuple(categories) if categories else None,
            )
        )
    now = utcnow()
    if gone:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(gone))
            .values(
                status=DeliveryStatus.SKIPPED,
                updated_at=now,
                error="the subscriber left before this issue reached them",
            )
        )
    if claimed:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.delivery_id for r in claimed]))
            .values(status=DeliveryStatus.SENDING, updated_at=now)
        )
    return claimed


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one delivery, as the sender reports it."""

    recipient: Recipient
    status: DeliveryStatus
    attempts: int
    message_id: str | None = None
    error: str | None = None


def record_results(session: Session, issue: Issue, results: Iterable[Result]) -> None:
    """Write outcomes in one statement; a 5.1.x bounce also suppresses the subscriber."""
    now = utcnow()
    rows = []
    for result in results:
        rows.append(
            {
                "id": result.recipient.delivery_id,
                "status": result.status.value,
                "attempts": result.attempts,
                "message_id": result.message_id,
                "error": result.error,
                "updated_at": now,
                "sent_at": now if result.status == DeliveryStatus.SENT else None,
            }
        )
        if result.status == DeliveryStatus.BOUNCED:
            subscriber = session.get(Subscriber, result.recipient.subscriber_id)
            if subscriber is not None and subscriber.status == Status.ACTIVE:
                subscriber.status = Status.BOUNCED
                record(
                    session, subscriber, "bounce", "smtp", issue_id=issue.id, detail=result.error
                )
    if rows:
        session.execute(update(Delivery), rows)


def release(session: Session, recipients: Iterable[Recipient]) -> None:
    """Claimed deliveries that were never attempted go back to the queue (a pause)."""
    ids = [r.delivery_id for r in recipients]
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.QUEUED, updated_at=utcnow())
        )


def remaining(session: Session, issue: Issue) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.issue_id == issue.id,
            Delivery.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.SENDING)),
        )
    )
    return int(count or 0)


def counts(session: Session, issue: Issue) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue.id)
        .group_by(Delivery.status)
    )
    return {status: int(count) for status, count in rows}


def finish(session: Session, issue: Issue) -> None:
    issue.status = IssueStatus.FINISHED
    issue.paused_reason = None
    issue.finished_at = utcnow()


def pause(session: Session, issue: Issue, reason: str) -> None:
    issue.status = IssueStatus.PAUSED
    issue.paused_reason = reason


# -- rendered variants --------------------------------------------------------------------------


def filter_key(categories: Sequence[str] | None) -> str:
    return ";".join(sorted(categories)) if categories else ""


def stored_variant(session: Session, issue: Issue, locale: str, key: str) -> Rendered | None:
    row = session.scalar(
        select(Variant).where(
            Variant.issue_id == issue.id, Variant.locale == locale, Variant.filter_key == key
        )
    )
    return None if row is None else _rendered(row)


def store_variant(session: Session, issue: Issue, key: str, rendered: Rendered) -> None:
    session.add(
        Variant(
            issue_id=issue.id,
            locale=rendered.locale,
            filter_key=key,
            subject=rendered.subject,
            preheader=rendered.preheader,
            html=rendered.html,
            text=rendered.text,
            greeting_named=rendered.greeting_named,
            greeting_anonymous=rendered.greeting_anonymous,
        )
    )


def _rendered(row: Variant) -> Rendered:
    return Rendered(
        locale=row.locale,
        subject=row.subject,
        preheader=row.preheader,
        html=row.html,
        text=row.text,
        mjml="",
        greeting_named=row.greeting_named,
        greeting_anonymous=row.greeting_anonymous,
    )


def issues_page(session: Session, page: int, size: int) -> tuple[int, list[Issue]]:
    """Issues newest first, one page of them, and how many there are in all."""
    total = int(session.scalar(select(func.count()).select_from(Issue)) or 0)
    rows = session.scalars(
        select(Issue)
        .order_by(Issue.created_at.desc(), Issue.id.desc())
        .offset(max(0, page - 1) * size)
        .limit(size)
    )
    return total, list(rows)


def pending_recipients(session: Session, issue: Issue) -> list[Recipient]:
    """The recipients still queued for an issue (what a dry run of a resumed issue writes)."""
    rows = session.execute(
        select(*_QUEUED_RECIPIENT)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(*_pending(issue))
        .order_by(Delivery.id)
    )
    return [_recipient(*row) for row in rows]


def count_pending(session: Session, issue: Issue) -> int:
    """How many `pending_recipients` there are, without loading them."""
    query = (
        select(func.count())
        .select_from(Delivery)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
    )
    return int(session.scalar(query.where(*_pending(issue))) or 0)


def count_audience(session: Session, frequency: str, default_frequency: str) -> int:
    """How many `audience_recipients` there are, without loading them."""
    query = select(func.count()).select_from(Subscriber)
    return int(session.scalar(query.where(*audience(frequency, default_frequency))) or 0)


def _pending(issue: Issue) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.issue_id == issue.id,
        Delivery.status == DeliveryStatus.QUEUED,
        *audience_status(),
    )


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
        )
        .where(*audience(frequency, default_frequency))
        .order_by(Subscriber.id)
    )
    return [_recipient(*row) for row in rows]


def audience_status() -> tuple[ColumnElement[bool], ...]:
    return (Subscriber.status == Status.ACTIVE, Subscriber.paused.is_(False))


def _recipient(
    delivery_id: int,
    subscriber_id: int,
    email: str,
    name: str,
    locale: str | None,
    categories: list[str] | None,
) -> Recipient:
    return Recipient(
        delivery_id, subscriber_id, email, name, locale, tuple(categories) if categories else None
    )


def queued_variants(
    session: Session, issue: Issue
) -> list[tuple[str | None, tuple[str, ...] | None]]:
    """The distinct (locale, categories) of the subscribers still queued for an issue."""
    as_text = cast(Subscriber.categories, Text)  # PostgreSQL cannot group by a json value
    rows = session.execute(
        select(Subscriber.locale, as_text)
        .join(Delivery, Delivery.subscriber_id == Subscriber.id)
        .where(Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.QUEUED)
        .group_by(Subscriber.locale, as_text)
    )
    seen: dict[tuple[str | None, tuple[str, ...] | None], None] = {}
    for locale, categories in rows:
        parsed = json.loads(categories) if categories else None
        seen[(locale, tuple(parsed) if parsed else None)] = None
    return list(seen)
