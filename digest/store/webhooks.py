"""The outgoing webhooks' outbox: filled from the event log, drained by senders.

The event log is written in the transaction of each change (digest.store.events.append), so
every subscription, confirmation, unsubscribe, bounce, complaint and finished issue is durably
recorded the moment it happens. `fill` carries it to each receiver: it reads the log through
`events.feed` (commit order, nothing skipped) from the receiver's cursor, adds one outbox row
per event the receiver wants, and moves the cursor, all in one transaction — so an event
reaches each receiver's outbox exactly once, even with several processes filling at once (the
unique (endpoint, msg_id) refuses a second row). Events older than RETRY_WINDOW when first
read (a receiver configured later) are not sent.

`claim` moves a due row's `next_attempt_at` past the sender's timeout in one conditional
UPDATE before it posts, so two processes never post the same row at once; `settle` records
the answer: delivered, or the next attempt after exponential backoff (5 s, 20 s, 80 s, ...,
at most 6 h apart) until RETRY_WINDOW after the event, when it gives up. At least once: a
sender that dies mid-post leaves the row due again after its claim expires; the receiver
drops repeats by the stable `webhook-id`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.store.events import LoggedEvent, feed
from digest.store.tables import WebhookCursor, WebhookMessage

RETRY_WINDOW = timedelta(hours=24)
FIRST_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=6)

# event log kind -> webhook event type
TYPES = {
    "subscribe": "subscribed",
    "resubscribe": "subscribed",
    "confirm": "confirmed",
    "unsubscribe": "unsubscribed",
    "bounce": "bounced",
    "complaint": "complained",
    "issue-finished": "issue.finished",
}


@dataclass(frozen=True, slots=True)
class Receiver:
    url: str
    events: tuple[str, ...]  # empty: every type

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()

    def wants(self, kind: str) -> bool:
        return not self.events or kind in self.events


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    url: str
    msg_id: str
    payload: str


def payload(event: LoggedEvent, kind: str) -> str:
    """The body as Standard Webhooks shapes it: `type`, `timestamp` and `data`."""
    data = {
        "event_id": event.event_id,
        "method": event.method,
        "subscriber_id": event.subscriber_id,
        "email": event.email,
        "issue": event.issue,
    }
    body = {"type": kind, "timestamp": event.created_at.isoformat(), "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def fill(session: Session, receivers: Sequence[Receiver], now: datetime) -> int:
    """Add the events each receiver has not had yet to its outbox; how many rows were added."""
    added = 0
    for receiver in receivers:
        cursor = session.get(WebhookCursor, receiver.key)
        if cursor is None:
            cursor = WebhookCursor(endpoint=receiver.key, position=0)
            session.add(cursor)
            session.flush()
        while True:
            batch = feed(session, after=cursor.position, limit=500)
            if not batch:
                break
            for event in batch:
                kind = TYPES.get(event.kind)
                if kind is None or not receiver.wants(kind):
                    continue
                if event.created_at < now - RETRY_WINDOW:
                    continue
                session.add(
                    WebhookMessage(
                        endpoint=receiver.key,
                        url=receiver.url,
                        msg_id=f"msg_{event.event_id}",
                        event_type=kind,
                        payload=payload(event, kind),
                        created_at=event.created_at,
                        next_attempt_at=now,
                    )
                )
                added += 1
            cursor.position = batch[-1].position
    return added


def due(session: Session, receivers: Sequence[Receiver], now: datetime, limit: int) -> list[int]:
    keys = [r.key for r in receivers]
    return list(
        session.scalars(
            select(WebhookMessage.id)
            .where(
                WebhookMessage.delivered_at.is_(None),
                WebhookMessage.gave_up_at.is_(None),
                WebhookMessage.next_attempt_at <= now,
                WebhookMessage.endpoint.in_(keys),
            )
            .order_by(WebhookMessage.id)
            .limit(limit)
        )
    )


def claim(session: Session, message_id: int, now: datetime, hold: timedelta) -> Due | None:
    """Take a due row for one attempt, holding it for `hold` (None: someone else has it)."""
    taken = session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.id == message_id,
            WebhookMessage.delivered_at.is_(None),
            WebhookMessage.gave_up_at.is_(None),
            WebhookMessage.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + hold, attempts=WebhookMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        return None
    row = session.get(WebhookMessage, message_id)
    assert row is not None
    return Due(row.id, row.url, row.msg_id, row.payload)


def settle(session: Session, message_id: int, now: datetime, error: str | None) -> None:
    row = session.get(WebhookMessage, message_id)
    if row is None:
        return
    session.refresh(row)
    if error is None:
        row.delivered_at, row.last_error = now, None
        return
    row.last_error = error[:1000]
    delay = min(FIRST_DELAY * 4 ** max(row.attempts - 1, 0), MAX_DELAY)
    if now + delay > row.created_at + RETRY_WINDOW:
        row.gave_up_at = now
    else:
        row.next_attempt_at = now + delay


def retry_all(session: Session, receivers: Sequence[Receiver], now: datetime) -> int:
    """Make every undelivered row within the window due now (`digest webhooks retry`)."""
    result = session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.delivered_at.is_(None),
            WebhookMessage.gave_up_at.is_(None),
            WebhookMessage.endpoint.in_([r.key for r in receivers]),
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def listing(session: Session, limit: int = 50) -> list[WebhookMessage]:
    return list(
        session.scalars(select(WebhookMessage).order_by(WebhookMessage.id.desc()).limit(limit))
    )
