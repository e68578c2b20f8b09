"""Per-issue figures: recipients, deliveries by outcome, unsubscribes by method, and what came
back (hard and soft bounces, complaints: `returned_mail` rows tied to the issue)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.tables import Delivery, Event, Issue, ReturnedMail


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

    def count(self, status: str) -> int:
        return self.deliveries.get(status, 0)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["unsubscribes_total"] = sum(self.unsubscribes.values())
        return data


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
    )
    report.deliveries = {status: count for status, count in rows}
    report.recipients = sum(report.deliveries.values())
    events = session.execute(
        select(Event.method, func.count())
        .where(Event.issue_id == issue.id, Event.kind == "unsubscribe")
        .group_by(Event.method)
    )
    report.unsubscribes = {method: count for method, count in events}
    returned = session.execute(
        select(ReturnedMail.kind, func.count())
        .where(ReturnedMail.issue_id == issue.id)
        .group_by(ReturnedMail.kind)
    )
    report.returned = {kind: count for kind, count in returned}
    return report


def reports(session: Session, key: str | None = None, limit: int = 20) -> list[IssueReport]:
    """The report of issue `key`, or of the latest `limit` issues, newest first."""
    query = select(Issue).order_by(Issue.created_at.desc(), Issue.id.desc())
    query = query.where(Issue.key == key) if key is not None else query.limit(limit)
    return [issue_report(session, issue) for issue in session.scalars(query)]
