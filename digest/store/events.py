"""Questions about the event log that are not one subscriber's standing: how many events of
a kind came lately from one IP address or for one subscriber (the sign-up form's limits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.store.tables import Event


def count_since(
    session: Session,
    kind: str,
    since: datetime,
    *,
    ip: str | None = None,
    subscriber_id: int | None = None,
) -> int:
    """Events of `kind` created at or after `since`, from `ip` and/or for `subscriber_id`."""
    query = select(func.count()).select_from(Event).where(Event.kind == kind)
    if ip is not None:
        query = query.where(Event.ip == ip)
    if subscriber_id is not None:
        query = query.where(Event.subscriber_id == subscriber_id)
    return int(session.scalar(query.where(Event.created_at >= since)) or 0)
