"""The ledger of issues: which editions exist, what each covered, how far each got.

An issue is created once per period (the key is unique in the database) with one queued
delivery per active subscriber (unique per issue and subscriber), after which
`digest.store.deliveries` moves each delivery along. An issue counts as having *covered* its
posts once it delivered at least one message or was finished; an issue that delivered
nothing keeps its posts new and stays open (`paused`, with its reason) for the next send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.models import Edition, Post, Rendered
from digest.store.events import append
from digest.store.recipients import audience
from digest.store.tables import (
    PENDING,
    Delivery,
    DeliveryStatus,
    Issue,
    IssuePost,
    IssueStatus,
    Subscriber,
    UTCDateTime,
    Variant,
    utcnow,
)

UNFINISHED = (IssueStatus.SENDING, IssueStatus.STOPPED, IssueStatus.PAUSED)


def delivered(issue_id: Any) -> ColumnElement[bool]:
    """True for an issue with at least one `sent` delivery (an index range check)."""
    return exists().where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.SENT)


def sent_post_ids(session: Session, frequency: str) -> set[str]:
    """Post identities an issue of this frequency covered: one that delivered at least one
    message, or was finished. An issue that delivered nothing leaves its posts new."""
    rows = session.scalars(
        select(IssuePost.post_id)
        .join(Issue)
        .where(
            Issue.frequency == frequency,
            or_(Issue.status == IssueStatus.FINISHED, delivered(Issue.id)),
        )
    )
    return set(rows)


def issue_by_key(session: Session, key: str) -> Issue | None:
    return session.scalar(select(Issue).where(Issue.key == key))


def unfinished_issues(session: Session, frequency: str | None = None) -> list[Issue]:
    """Issues not finished (sending, stopped or paused), oldest first."""
    query = select(Issue).where(Issue.status.in_(UNFINISHED)).order_by(Issue.id)
    if frequency is not None:
        query = query.where(Issue.frequency == frequency)
    return list(session.scalars(query))


def unfinished_issue(session: Session, frequency: str | None = None) -> Issue | None:
    """The oldest issue not finished (a crash, a kill, a stop, a pause)."""
    found = unfinished_issues(session, frequency)
    return found[0] if found else None


def has_delivered(session: Session, issue_id: int) -> bool:
    return bool(session.scalar(select(delivered(issue_id))))


def edition_of(issue: Issue) -> Edition:
    return Edition(
        key=issue.key,
        date=issue.created_at,
        posts=tuple(Post.from_json(p) for p in issue.posts),
    )


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
    count = sum(counts(session, issue.id).values())
    append(session, "issue-created", "send", issue_id=issue.id, detail=f"{count} recipients")
    return issue


def counts(session: Session, issue_id: int) -> dict[str, int]:
    """Deliveries of the issue by status."""
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue_id)
        .group_by(Delivery.status)
        .order_by(Delivery.status)  # the same order on SQLite and PostgreSQL
    )
    return {status: int(count) for status, count in rows}


def pending(session: Session, issue_id: int) -> int:
    """Deliveries queued, claimed or in flight."""
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.issue_id == issue_id, Delivery.status.in_(PENDING))
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class Deferred:
    """An open issue's deferred deliveries: how many, and when the first is due again."""

    issue_id: int
    key: str
    count: int
    next_attempt_at: datetime


def deferred(session: Session, issue_ids: Sequence[int] | None = None) -> list[Deferred]:
    """Deferred deliveries of the issues still sending (or of `issue_ids`), per issue."""
    query = (
        select(Issue.id, Issue.key, func.count(), func.min(Delivery.next_attempt_at))
        .join(Delivery, Delivery.issue_id == Issue.id)
        .where(Delivery.status == DeliveryStatus.DEFERRED)
        .group_by(Issue.id, Issue.key)
        .order_by(Issue.id)
    )
    if issue_ids is None:  # the retries of sending issues (a stopped or paused one resumes)
        query = query.where(Issue.status == IssueStatus.SENDING)
    else:
        query = query.where(Issue.id.in_(issue_ids))
    return [
        Deferred(issue_id, key, int(count), due)
        for issue_id, key, count, due in session.execute(query)
        if due is not None
    ]


def due_count(session: Session, issue_id: int, now: datetime) -> int:
    """Deferred deliveries of the issue whose next attempt is due."""
    count = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.issue_id == issue_id,
            Delivery.status == DeliveryStatus.DEFERRED,
            Delivery.next_attempt_at <= now,
        )
    )
    return int(count or 0)


def last_error(session: Session, issue_id: int, status: DeliveryStatus) -> str | None:
    """The error of the most recent delivery in `status` (why an issue delivered nothing)."""
    return session.scalar(
        select(Delivery.error)
        .where(Delivery.issue_id == issue_id, Delivery.status == status)
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
        .limit(1)
    )


def set_status(session: Session, issue_id: int, status: IssueStatus, reason: str | None) -> None:
    """Move an issue to `status`; finishing it is an event in the log (once)."""
    issue = session.get(Issue, issue_id)
    assert issue is not None
    if status == IssueStatus.FINISHED and issue.status != IssueStatus.FINISHED:
        issue.finished_at = utcnow()
        append(
            session, "issue-finished", "send", issue_id=issue.id, detail=_finished(session, issue)
        )
    issue.status = status
    issue.paused_reason = reason


def _finished(session: Session, issue: Issue) -> str:
    """What an issue ended with, for its `issue-finished` event: `sent 120, failed 2`."""
    found = counts(session, issue.id)
    return ", ".join(f"{status} {n}" for status, n in sorted(found.items()) if n) or "no deliveries"


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


def recent_categories(session: Session, limit: int = 12) -> set[str]:
    """Every category of the posts in the latest `limit` issues (what the preferences page
    offers to choose from)."""
    issues = session.scalars(
        select(Issue.posts).order_by(Issue.created_at.desc(), Issue.id.desc()).limit(limit)
    )
    found: set[str] = set()
    for posts in issues:
        for post in posts or []:
            found.update(c for c in post.get("categories") or [] if isinstance(c, str) and c)
    return found


def unfiltered_variant(session: Session, issue: Issue, locale: str) -> Rendered | None:
    """The issue's variant without a category filter in `locale`, else the first such variant
    stored in another locale (what the archive shows), else None."""
    rendered = stored_variant(session, issue, locale, "")
    if rendered is not None:
        return rendered
    row = session.scalar(
        select(Variant)
        .where(Variant.issue_id == issue.id, Variant.filter_key == "")
        .order_by(Variant.id)
        .limit(1)
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


def keep_variant(session: Session, issue: Issue, key: str, rendered: Rendered) -> Rendered:
    """Store a variant unless another sender stored it first (several workers may render the
    same variant at once): the one stored is returned, so every worker sends the same."""
    try:
        with session.begin_nested():
            store_variant(session, issue, key, rendered)
    except IntegrityError:
        stored = stored_variant(session, issue, rendered.locale, key)
        if stored is not None:
            return stored
        raise
    return rendered


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


def latest_finished(session: Session) -> Issue | None:
    """The newest finished issue (what a welcome mail links to), or None."""
    return session.scalar(
        select(Issue)
        .where(Issue.status == IssueStatus.FINISHED)
        .order_by(Issue.created_at.desc(), Issue.id.desc())
        .limit(1)
    )


def finished_issues(session: Session, limit: int = 50) -> list[Issue]:
    """The newest finished issues, newest first (the archive's feed)."""
    return list(
        session.scalars(
            select(Issue)
            .where(Issue.status == IssueStatus.FINISHED)
            .order_by(Issue.created_at.desc(), Issue.id.desc())
            .limit(limit)
        )
    )
