"""Posting the outgoing webhooks (`webhooks:`), signed per the Standard Webhooks
specification with `standardwebhooks`: `webhook-id` (stable across retries), `webhook-timestamp`
and `webhook-signature` (HMAC-SHA256 over id, timestamp and body).

`deliver` fills the outbox from the event log and posts what is due (digest.store.webhooks
holds the guarantees: each event once per receiver's outbox, at least once to the receiver,
backoff for 24 hours). Every post has a short timeout, and the callers run `deliver` off their
main path (`start_background`): a receiver that hangs or answers 500 never holds up a send or
a sign-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import httpx
from standardwebhooks import Webhook

from digest.delivery.settings import WebhookSettings
from digest.store import webhooks as outbox
from digest.store.database import Database, log_failure

log = logging.getLogger("digest.delivery")

TIMEOUT = 10.0  # seconds for one post, connect to last byte
HOLD = timedelta(seconds=TIMEOUT * 3)  # a claimed row is not posted by another process meanwhile


def receivers(hooks: Sequence[WebhookSettings]) -> list[outbox.Receiver]:
    return [outbox.Receiver(hook.url, hook.events) for hook in hooks]


def deliver(
    database: Database,
    hooks: Sequence[WebhookSettings],
    clock: Callable[[], datetime],
    *,
    timeout: float = TIMEOUT,
    limit: int = 200,
) -> tuple[int, int]:
    """Fill the outbox and post what is due now; (delivered, failed) this round."""
    if not hooks:
        return 0, 0
    targets = receivers(hooks)
    secrets = {hook.url: hook.secret for hook in hooks}
    with database.session() as session:
        outbox.fill(session, targets, clock())
    with database.session() as session:
        due = outbox.due(session, targets, clock(), limit)
    delivered = failed = 0
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for message_id in due:
            with database.session() as session:
                item = outbox.claim(session, message_id, clock(), HOLD)
            if item is None or item.url not in secrets:
                continue
            error = post(client, item, secrets[item.url], clock())
            with database.session() as session:
                outbox.settle(session, item.id, clock(), error)
            delivered += error is None
            failed += error is not None
    return delivered, failed


def post(client: httpx.Client, item: outbox.Due, secret: str, now: datetime) -> str | None:
    """One attempt; None when the receiver answered 2xx, else what went wrong."""
    signature = Webhook(secret).sign(item.msg_id, now, item.payload)
    headers = {
        "content-type": "application/json",
        "webhook-id": item.msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "user-agent": "digest-webhooks",
    }
    try:
        answer = client.post(item.url, content=item.payload.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"


def start_background(
    database: Database, hooks: Sequence[WebhookSettings], clock: Callable[[], datetime]
) -> threading.Thread | None:
    """Run one `deliver` round in a daemon thread: the caller never waits for a receiver
    (what it does not finish is posted by the next round, of any process)."""
    if not hooks:
        return None

    def run() -> None:
        try:
            deliver(database, hooks, clock)
        except Exception as exc:
            log_failure(log, "outgoing webhooks", exc, "they are tried again later")

    thread = threading.Thread(target=run, name="digest-webhooks", daemon=True)
    thread.start()
    return thread
