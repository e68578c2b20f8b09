"""Sign-ups never confirmed: removed after `signup.pending_days`.

A pending row is someone's address that they have not confirmed: keeping it for ever keeps
personal data without consent. Only rows still `pending` that were created before the
cut-off go, and only those that never received anything (a pending row has no deliveries);
their events stay, naming nobody (`subscriber_id` cleared, as when the row is deleted).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from digest.store.tables import Delivery, Event, Status, Subscriber


def purge(session: Session, before: datetime) -> int:
    """Delete pending sign-ups created before `before`; how many went."""
    stale = select(Subscriber.id).where(
        Subscriber.status == Status.PENDING,
        Subscriber.created_at < before,
        ~exists().where(Delivery.subscriber_id == Subscriber.id),
    )
    ids = list(session.scalars(stale))
    if not ids:
        return 0
    session.execute(
        update(Event)
        .where(Event.subscriber_id.in_(ids))
        .values(subscriber_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Subscriber)
        .where(Subscriber.id.in_(ids), Subscriber.status == Status.PENDING)
        .execution_options(synchronize_session=False)
    )
    return len(ids)
