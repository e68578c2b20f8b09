"""What the Prometheus metrics read from the database, so that they agree with `digest
report` and `digest status` whichever process sent: the queue of the issues still open by
state, the deferred deliveries due, the sign-up events and the audience.

Each is a handful of index lookups per open issue, cheap enough for every scrape."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store import ledger
from digest.store.tables import PENDING, DeliveryStatus, Event

QUEUE_STATES = (*PENDING, DeliveryStatus.DEFERRED)
SIGNUP_KINDS = ("confirm-mail", "confirm", "subscribe", "unsubscribe")


def queue_depth(session: Session) -> dict[str, int]:
    """Deliveries of the issues still open, by state: queued, claimed, in flight, deferred
    (every state present, 0 when none)."""
    depth = {str(state): 0 for state in QUEUE_STATES}
    for issue in ledger.unfinished_issues(session):
        for state, count in ledger.counts(session, issue.id).items():
            if state in depth:
                depth[state] += count
    return depth


def deferred_due(session: Session, now: datetime) -> int:
    """Deferred deliveries of the open issues whose next attempt is due."""
    return sum(ledger.due_count(session, i.id, now) for i in ledger.unfinished_issues(session))


def signup_events(session: Session) -> dict[str, int]:
    """How many confirmation mails, confirmations, subscriptions and unsubscriptions were
    ever recorded (every kind present, 0 when none)."""
    rows = session.execute(
        select(Event.kind, func.count()).where(Event.kind.in_(SIGNUP_KINDS)).group_by(Event.kind)
    )
    found = {str(kind): int(count) for kind, count in rows}
    return {kind: found.get(kind, 0) for kind in SIGNUP_KINDS}
