"""The soft limit: `soft_limit` consecutive issues with a soft bounce suppress; a delivery sent
without a bounce resets the count; a delivery that ended `failed` after deferral counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.store.bounces import Returned, apply, soft_streak, sweep_soft
from digest.store.database import Database
from digest.store.suppressed import reactivate
from digest.store.tables import Delivery, Issue, Subscriber

LIMIT = 3


def history(database: Database, statuses: list[str]) -> tuple[int, list[tuple[int, int]]]:
    """A subscriber with one delivery per issue, oldest first; (issue id, delivery id)s."""
    start = datetime.now(UTC) - timedelta(days=30)
    with database.session() as session:
        subscriber = Subscriber(email="reader@example.net", status="active")
        session.add(subscriber)
        session.flush()
        ids = []
        for n, status in enumerate(statuses):
            issue = Issue(key=f"2026-W{10 + n}", posts=[], created_at=start + timedelta(days=7 * n))
            session.add(issue)
            session.flush()
            delivery = Delivery(
                issue_id=issue.id,
                subscriber_id=subscriber.id,
                status=status,
                sent_at=issue.created_at if status == "sent" else None,
                deferred_since=issue.created_at if status == "failed" else None,
            )
            session.add(delivery)
            session.flush()
            ids.append((issue.id, delivery.id))
        return subscriber.id, ids


def soft(database: Database, key: str, subscriber: int, ids: tuple[int, int] | None) -> str:
    returned = Returned(
        key=key,
        kind="soft",
        source="dsn",
        reason="452 4.2.2 mailbox full",
        subscriber_id=subscriber if ids else None,
        issue_id=ids[0] if ids else None,
        delivery_id=ids[1] if ids else None,
        addresses=("reader@example.net",),
    )
    with database.session() as session:
        return apply(session, returned, LIMIT).action


def status(database: Database, subscriber: int) -> str:
    with database.session() as session:
        found = session.get(Subscriber, subscriber)
        assert found is not None
        return found.status


def test_three_issues_in_a_row_suppress(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "sent", "sent"])
    assert soft(database, "<a@x>", subscriber, ids[0]) == "soft"
    assert soft(database, "<b@x>", subscriber, ids[1]) == "soft"
    assert soft(database, "<b2@x>", subscriber, ids[1]) == "soft"  # same issue: still two
    assert status(database, subscriber) == "active"
    assert soft(database, "<c@x>", subscriber, ids[2]) == "bounced"
    assert status(database, subscriber) == "bounced"


def test_a_delivery_without_bounce_resets_the_count(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "sent", "sent", "sent"])
    soft(database, "<a@x>", subscriber, ids[0])
    soft(database, "<b@x>", subscriber, ids[1])
    # issue 3 arrived without a bounce
    assert soft(database, "<d@x>", subscriber, ids[3]) == "soft"
    with database.session() as session:
        assert soft_streak(session, subscriber) == 1
    assert status(database, subscriber) == "active"


def test_a_failure_after_deferral_counts(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "failed", "sent"])
    soft(database, "<a@x>", subscriber, ids[0])
    assert soft(database, "<c@x>", subscriber, ids[2]) == "bounced"


def test_the_sweep_applies_the_limit_to_failures_after_deferral(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "sent"])
    soft(database, "<a@x>", subscriber, ids[0])
    soft(database, "<b@x>", subscriber, ids[1])
    with database.session() as session:  # the next issue's delivery fails after deferral
        issue = Issue(key="2026-W30", posts=[])
        session.add(issue)
        session.flush()
        session.add(
            Delivery(
                issue_id=issue.id,
                subscriber_id=subscriber,
                status="failed",
                deferred_since=datetime.now(UTC) - timedelta(days=2),
            )
        )
    assert status(database, subscriber) == "active"  # the send path knows no soft limit
    with database.session() as session:
        assert sweep_soft(session, LIMIT) == ["reader@example.net"]
    assert status(database, subscriber) == "bounced"


def test_a_soft_bounce_without_issue_counts_for_the_latest_sent(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "sent", "sent"])
    soft(database, "<a@x>", subscriber, ids[0])
    soft(database, "<b@x>", subscriber, ids[1])
    assert soft(database, "<c@x>", subscriber, None) == "bounced"  # found by address


def test_reactivation_starts_the_count_afresh(database: Database) -> None:
    subscriber, ids = history(database, ["sent", "sent", "sent"])
    for n, pair in enumerate(ids):
        soft(database, f"<{n}@x>", subscriber, pair)
    with database.session() as session:
        found = session.get(Subscriber, subscriber)
        assert found is not None and reactivate(session, found)
        assert soft_streak(session, subscriber) == 0
        assert not reactivate(session, found)  # active already: nothing to restore
    assert status(database, subscriber) == "active"
