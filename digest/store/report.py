"""Per-issue figures: recipients, deliveries by outcome, unsubscribes by method, what came
back (hard and soft bounces, complaints: `returned_mail` rows tied to the issue), messages
sent per worker, the bounce and complaint rates; and the workers sending right now.

The rates are defined here once: `digest report`, the desk, the Prometheus metrics and the
alerts to the owner all read them through `bounce_rate`, `complaint_rate` and
`unsubscribe_rate`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store import clicks
from digest.store.lease import is_running
from digest.store.tables import (
    Delivery,
    DeliveryStatus,
    Event,
    Issue,
    ReturnedMail,
    Worker,
    utcnow,
)


@dataclass(slots=True)
class IssueReport:
    key: str
    status: str
    created_at: datetime
    posts: int
    recipients: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)
    unsubscribes: dict[str, int] = field(default_factory=dict)
    returned: dict[str, int] = field(default_factory=dict)  # hard, soft, complaint...
    paused_reason: str | None = None
    workers: dict[str, int] = field(default_factory=dict)  # `host:pid` -> messages it sent
    # per post: {link, title, url, human, robot} (digest.store.clicks); empty without clicks
    clicks: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return self.deliveries.get(status, 0)

    @property
    def bounce_rate(self) -> float | None:
        return bounce_rate(self.deliveries, self.returned)

    @property
    def complaint_rate(self) -> float | None:
        return complaint_rate(self.deliveries, self.returned)

    @property
    def unsubscribe_rate(self) -> float | None:
        return unsubscribe_rate(self.deliveries, self.unsubscribes)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["unsubscribes_total"] = sum(self.unsubscribes.values())
        data["bounce_rate"] = self.bounce_rate
        data["complaint_rate"] = self.complaint_rate
        data["unsubscribe_rate"] = self.unsubscribe_rate
        return data


def bounce_rate(deliveries: Mapping[str, int], returned: Mapping[str, int]) -> float | None:
    """An issue's bounces over what reached an end at the receiving servers: hard and soft
    bounces (those that came back later, `returned` hard and soft, and the addresses refused
    at send time, `bounced`) over its delivered and failed deliveries (`sent`, `failed`,
    `bounced`). None before anything reached an end. Gmail and Yahoo watch it: above 2 %
    a sender's reputation suffers (the owner is alerted, digest.ops.alerts)."""
    ended = sum(
        deliveries.get(s, 0)
        for s in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.BOUNCED)
    )
    if not ended:
        return None
    bounces = (
        returned.get("hard", 0)
        + returned.get("soft", 0)
        + deliveries.get(DeliveryStatus.BOUNCED, 0)
    )
    return bounces / ended


def complaint_rate(deliveries: Mapping[str, int], returned: Mapping[str, int]) -> float | None:
    """An issue's complaints (spam reports that came back) over its delivered messages
    (`sent`); None when none was delivered. Gmail's limit is 0.3 %, its advice below 0.1 %."""
    delivered = deliveries.get(DeliveryStatus.SENT, 0)
    return returned.get("complaint", 0) / delivered if delivered else None


def unsubscribe_rate(
    deliveries: Mapping[str, int], unsubscribes: Mapping[str, int]
) -> float | None:
    """An issue's unsubscribes (every method, counted by the issue their link came from) over
    its delivered messages (`sent`); None when none was delivered."""
    delivered = deliveries.get(DeliveryStatus.SENT, 0)
    return sum(unsubscribes.values()) / delivered if delivered else None


def issue_report(session: Session, issue: Issue) -> IssueReport:
    report = IssueReport(
        key=issue.key,
        status=issue.status,
        created_at=issue.created_at,
        posts=len(issue.posts),
        paused_reason=issue.paused_reason,
    )
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue.id)
        .group_by(Delivery.status)
        .order_by(Delivery.status)
    )
    report.deliveries = {status: count for status, count in rows}
    report.recipients = sum(report.deliveries.values())
    events = session.execute(
        select(Event.method, func.count())
        .where(Event.issue_id == issue.id, Event.kind == "unsubscribe")
        .group_by(Event.method)
        .order_by(Event.method)
    )
    report.unsubscribes = {method: count for method, count in events}
    sent_by = session.execute(
        select(Delivery.worker, func.count())
        .where(
            Delivery.issue_id == issue.id,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.worker.is_not(None),
        )
        .group_by(Delivery.worker)
        .order_by(Delivery.worker)
    )
    report.workers = {str(worker): int(count) for worker, count in sent_by}
    returned = session.execute(
        select(ReturnedMail.kind, func.count())
        .where(ReturnedMail.issue_id == issue.id)
        .group_by(ReturnedMail.kind)
        .order_by(ReturnedMail.kind)
    )
    report.returned = {kind: count for kind, count in returned}
    per_post = clicks.per_post(session, issue)
    if any(post.human or post.robot for post in per_post):
        report.clicks = [asdict(post) for post in per_post]
    return report


def reports(session: Session, key: str | None = None, limit: int = 20) -> list[IssueReport]:
    """The report of issue `key`, or of the latest `limit` issues, newest first."""
    query = select(Issue).order_by(Issue.created_at.desc(), Issue.id.desc())
    query = query.where(Issue.key == key) if key is not None else query.limit(limit)
    return [issue_report(session, issue) for issue in session.scalars(query)]


def recent_issues(session: Session, *, before: int | None = None, limit: int = 20) -> list[Issue]:
    """Up to `limit` issues, newest first (by id: issues are made in order), older than the
    issue with id `before` when given: a keyset page."""
    query = select(Issue).order_by(Issue.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Issue.id < before)
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class LiveWorker:
    name: str
    started_at: datetime
    expires_at: datetime


def live_workers(session: Session) -> list[LiveWorker]:
    """Sending processes whose heartbeat is current (an expired one is presumed dead) and,
    for one of this host, whose process still runs (one killed leaves its row until the next
    send takes its deliveries back)."""
    rows = session.scalars(
        select(Worker).where(Worker.expires_at > utcnow()).order_by(Worker.started_at)
    )
    return [
        LiveWorker(row.name, row.started_at, row.expires_at) for row in rows if is_running(row.name)
    ]
