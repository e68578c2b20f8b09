"""Why a subscriber is suppressed, and the operator's repair: `reactivate`.

`digest subscribers list --status bounced|complained|unsubscribed` shows each one's reason,
read from their latest event of that kind (method, detail, issue). `reactivate` restores a
wrongly bounced or complained address, recorded as an event, and restarts soft-bounce counting
(`bounces.soft_streak` counts only what came after it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.store.events import append
from digest.store.tables import Event, Issue, Status, Subscriber


def reactivate(session: Session, subscriber: Subscriber, detail: str = "") -> bool:
    """The operator restores a wrongly bounced or complained address (an event records it);
    soft-bounce counting starts afresh. Unsubscribed people are not reactivated: only they
    can come back."""
    if subscriber.status not in (Status.BOUNCED, Status.COMPLAINED):
        return False
    before = subscriber.status
    subscriber.status = Status.ACTIVE
    append(
        session, "reactivate", "cli", subscriber_id=subscriber.id, detail=detail or f"was {before}"
    )
    return True


REASON_EVENTS: dict[str, tuple[str, ...]] = {
    Status.BOUNCED: ("bounce",),
    Status.COMPLAINED: ("complaint",),
    Status.UNSUBSCRIBED: ("unsubscribe",),
}


@dataclass(frozen=True, slots=True)
class Reason:
    kind: str
    method: str
    detail: str | None
    issue: str | None
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "detail": self.detail,
            "issue": self.issue,
            "at": self.at.isoformat(),
        }


def reasons(session: Session, subscribers: Iterable[Subscriber]) -> dict[int, Reason]:
    """Why each suppressed subscriber is suppressed: their latest event of the matching kind."""
    found: dict[int, Reason] = {}
    for subscriber in subscribers:
        kinds = REASON_EVENTS.get(subscriber.status)
        if not kinds:
            continue
        row = session.execute(
            select(Event.kind, Event.method, Event.detail, Issue.key, Event.created_at)
            .outerjoin(Issue, Issue.id == Event.issue_id)
            .where(Event.subscriber_id == subscriber.id, Event.kind.in_(kinds))
            .order_by(Event.created_at.desc(), Event.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            found[subscriber.id] = Reason(row[0], row[1], row[2], row[3], row[4])
    return found
