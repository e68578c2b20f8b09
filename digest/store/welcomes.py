"""The welcome mail's ledger: one row per confirmed reader, never sent twice.

`queue` adds the row in the confirmation's transaction (a second confirmation finds it and
adds nothing). `claim` moves a row from `queued` or a due `failed` to `sending` in one
conditional UPDATE, so of two processes trying at once only one sends; `settle` records the
outcome. A row left `sending` (the process died mid-send) is never claimed again: the mail
may have arrived, and a second welcome is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from digest.store.events import append
from digest.store.tables import Status, Subscriber, Welcome

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class WelcomeMail:
    """What the welcome mail to one reader is built from."""

    welcome_id: int
    subscriber_id: int
    binding: str | None
    email: str
    name: str
    locale: str | None


def queue(session: Session, subscriber_id: int, now: datetime) -> bool:
    """Queue the welcome of `subscriber_id` unless they have one already (True: queued)."""
    if session.scalar(select(Welcome.id).where(Welcome.subscriber_id == subscriber_id)):
        return False
    session.add(Welcome(subscriber_id=subscriber_id, created_at=now, next_attempt_at=now))
    return True


def due(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Ids of welcomes that may be claimed now: queued, or failed and due again."""
    return list(
        session.scalars(
            select(Welcome.id)
            .where(
                or_(
                    Welcome.status == QUEUED,
                    (Welcome.status == FAILED) & (Welcome.next_attempt_at <= now),
                )
            )
            .order_by(Welcome.id)
            .limit(limit)
        )
    )


def claim(session: Session, welcome_id: int, now: datetime) -> WelcomeMail | None:
    """Take the welcome for sending (None: another process has it, it was sent, or its
    reader is no longer active — then it is dropped as `failed` for good)."""
    claimed = session.execute(
        update(Welcome)
        .where(
            Welcome.id == welcome_id,
            or_(
                Welcome.status == QUEUED,
                (Welcome.status == FAILED) & (Welcome.next_attempt_at <= now),
            ),
        )
        .values(status=SENDING, attempts=Welcome.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    row = session.get(Welcome, welcome_id)
    assert row is not None
    session.refresh(row)
    person = session.get(Subscriber, row.subscriber_id)
    if person is None or person.status != Status.ACTIVE:
        row.status, row.error, row.next_attempt_at = FAILED, "no longer subscribed", None
        return None
    return WelcomeMail(
        welcome_id=row.id,
        subscriber_id=person.id,
        binding=person.token_key,
        email=person.email,
        name=person.name,
        locale=person.locale,
    )


def settle(
    session: Session,
    welcome_id: int,
    now: datetime,
    *,
    message_id: str | None = None,
    error: str | None = None,
) -> None:
    """Record the outcome: sent (an event in the reader's history), or failed and retried
    after RETRY_AFTER until MAX_ATTEMPTS."""
    row = session.get(Welcome, welcome_id)
    if row is None:
        return
    if error is None:
        row.status, row.sent_at, row.message_id, row.error = SENT, now, message_id, None
        row.next_attempt_at = None
        append(session, "welcome", "mail", subscriber_id=row.subscriber_id, created_at=now)
        return
    row.status, row.error = FAILED, error[:1000]
    row.next_attempt_at = now + RETRY_AFTER * row.attempts if row.attempts < MAX_ATTEMPTS else None


def of(session: Session, subscriber_id: int) -> Welcome | None:
    return session.scalar(select(Welcome).where(Welcome.subscriber_id == subscriber_id))
