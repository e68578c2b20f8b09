"""Clicks on an issue's links (`tracking.clicks`): recording one, and counting them per post.

A click row names the issue and the link's index among the issue's posts, whether it looked
human, and — only with `tracking.clicks: personal` — the delivery. Nothing else: no address,
no IP, no user agent, so an aggregate count can never be turned back into a person.

With `personal`, a click that looked human is also a `click` event in the reader's history
(digest.store.events; the desk's subscriber page shows it), in the same transaction. A
reader who has been erased is not followed any further: their clicks are counted as
aggregate ones, naming no delivery and writing no event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.events import append
from digest.store.tables import Click, Delivery, Issue, Status, Subscriber


@dataclass(frozen=True, slots=True)
class PostClicks:
    """One post of an issue and how often its link was followed."""

    link: int
    title: str
    url: str
    human: int
    robot: int


@dataclass(frozen=True, slots=True)
class Reader:
    """The delivery a personal click link names: when it went out, and to whom (None once
    the subscriber has been erased)."""

    delivery_id: int
    sent_at: datetime | None
    subscriber_id: int | None


def reader(session: Session, issue_id: int, delivery_id: int) -> Reader | None:
    """The delivery `delivery_id` of issue `issue_id`, or None when the issue has no such
    delivery (a link naming another issue's delivery is refused like a changed one)."""
    row = session.execute(
        select(Delivery.sent_at, Delivery.subscriber_id, Subscriber.status)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id == delivery_id, Delivery.issue_id == issue_id)
    ).first()
    if row is None:
        return None
    sent_at, subscriber_id, status = row
    return Reader(delivery_id, sent_at, None if status == Status.ERASED else subscriber_id)


def record(
    session: Session,
    issue_id: int,
    link: int,
    *,
    human: bool,
    at: datetime,
    reader: Reader | None = None,
    url: str | None = None,
) -> None:
    """Count a click; with `reader` (only with `tracking.clicks: personal`) against their
    delivery, and a human one as a `click` event in their history, its detail the URL."""
    person = reader.subscriber_id if reader is not None else None
    delivery_id = reader.delivery_id if reader is not None and person is not None else None
    session.add(
        Click(issue_id=issue_id, link=link, human=human, delivery_id=delivery_id, created_at=at)
    )
    if person is not None and human:
        append(
            session,
            "click",
            "link",
            subscriber_id=person,
            issue_id=issue_id,
            delivery_id=delivery_id,
            detail=url,
            created_at=at,
        )


def target(session: Session, issue_id: int, link: int) -> str | None:
    """The URL recorded for link `link` of issue `issue_id` (its post's URL as the issue
    snapshot holds it), or None when there is no such issue or link."""
    issue = session.get(Issue, issue_id)
    if issue is None or not 0 <= link < len(issue.posts):
        return None
    url = issue.posts[link].get("url")
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def last_sent(session: Session, issue_id: int, now: datetime) -> datetime | None:
    """When the latest message of the issue sent before `now` went out: the delivery a
    scanner would be reacting to (an aggregate link names no delivery)."""
    return session.scalar(
        select(func.max(Delivery.sent_at)).where(
            Delivery.issue_id == issue_id, Delivery.sent_at <= now
        )
    )


def per_post(session: Session, issue: Issue) -> list[PostClicks]:
    """Every post of `issue` with its human and robot clicks, in the issue's order."""
    rows = session.execute(
        select(Click.link, Click.human, func.count())
        .where(Click.issue_id == issue.id)
        .group_by(Click.link, Click.human)
    )
    counts: dict[tuple[int, bool], int] = {(link, human): n for link, human, n in rows}
    return [
        PostClicks(
            link=index,
            title=str(post.get("title", "")),
            url=str(post.get("url", "")),
            human=counts.get((index, True), 0),
            robot=counts.get((index, False), 0),
        )
        for index, post in enumerate(issue.posts)
    ]
