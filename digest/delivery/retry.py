"""When to try again: a temporary failure is retried within the run, then deferred.

Within one run a message is retried `retries` times, `retry_delay` seconds doubling (at most
five minutes). Then it is *deferred* to a later run (a later `digest send`, the scheduler's
retry job) with a delay that keeps doubling (at most an hour), until `retry_hours` after its
first temporary failure: then it fails, as an MTA bounces what it could not deliver in time.
"""

from __future__ import annotations

from datetime import timedelta

from digest.delivery.settings import Policy
from digest.models import Recipient
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus, utcnow


def backoff(policy: Policy, attempt: int) -> float:
    """Seconds before retry `attempt` within a run."""
    return float(min(policy.retry_delay * (2 ** max(0, attempt - 1)), 300.0))


def defer(policy: Policy, recipient: Recipient, attempts: int, error: str) -> Result:
    """Deferred to a later run with backoff, or failed once `retry_hours` have passed."""
    now = utcnow()
    deadline = (recipient.deferred_since or now) + timedelta(hours=policy.retry_hours)
    if now >= deadline:
        return Result(
            recipient,
            DeliveryStatus.FAILED,
            attempts,
            error=f"temporary failures for {policy.retry_hours:g} h; the last: {error}",
        )
    total = recipient.attempts + attempts
    wait = max(1.0, min(policy.retry_delay * 2 ** (total - 1), 3600.0))
    due = min(now + timedelta(seconds=wait), deadline)
    return Result(recipient, DeliveryStatus.DEFERRED, attempts, error=error, next_attempt_at=due)
