"""The owner's alerts sent: a claim per cause and day (digest.ops.alerts decides and mails)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from digest.store.database import Database
from digest.store.tables import OwnerAlert


def claim(database: Database, cause: str, day: str, summary: str, now: datetime) -> bool:
    """Record that the alert for `cause` goes out on `day`; False when one already did (or
    another process claimed it first: the unique cause and day decides, not a read)."""
    try:
        with database.session() as session:
            session.add(OwnerAlert(cause=cause, day=day, summary=summary, sent_at=now))
    except IntegrityError:
        return False
    return True


def release(database: Database, cause: str, day: str) -> None:
    """Forget a claim whose mail could not be sent, so that the next occurrence tries again."""
    with database.session() as session:
        session.execute(delete(OwnerAlert).where(OwnerAlert.cause == cause, OwnerAlert.day == day))


def sent(database: Database) -> list[tuple[str, str]]:
    """(cause, day) of every alert sent, oldest first."""
    with database.session() as session:
        rows = session.execute(select(OwnerAlert.cause, OwnerAlert.day).order_by(OwnerAlert.id))
        return [(str(cause), str(day)) for cause, day in rows]
