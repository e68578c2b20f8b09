"""What counts as new (DESIGN.md section 4): drafts, opt-outs, future, lookback, already sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.issues.select import newest_first, select_new, status_of
from digest.models import Post

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def post(id: str, days_ago: float | None, **kwargs: object) -> Post:
    date = NOW - timedelta(days=days_ago) if days_ago is not None else None
    return Post(id=id, title=id, url=f"https://x/{id}/", date=date, body="b", **kwargs)  # type: ignore[arg-type]


def test_statuses() -> None:
    def status(p: Post, sent: frozenset[str] = frozenset()) -> str:
        return status_of(p, sent=sent, now=NOW, lookback_days=30)

    assert status(post("a", 1)) == "new"
    assert status(post("a", 1), frozenset({"a"})) == "sent"
    assert status(post("a", 1, draft=True)) == "draft"
    assert status(post("a", 1, newsletter=False)) == "opted-out"
    assert status(post("a", -0.01)) == "future"
    assert status(post("a", 31)) == "too-old"
    assert status(post("a", 29.9)) == "new"
    assert status(post("a", None)) == "new"
    assert status_of(post("a", 400), sent=(), now=NOW, lookback_days=0) == "new"
    # Hugo: a future publishDate is not published yet; a past expiryDate is no longer shown
    assert status(post("a", 1, publish_date=NOW + timedelta(hours=1))) == "future"
    assert status(post("a", 1, publish_date=NOW - timedelta(hours=1))) == "new"
    assert status(post("a", 1, expiry_date=NOW)) == "expired"
    assert status(post("a", 1, expiry_date=NOW + timedelta(days=1))) == "new"
    assert status(post("a", None, publish_date=NOW + timedelta(days=1))) == "future"
    assert status(post("a", 60, publish_date=NOW - timedelta(days=2))) == "new"
    assert status(post("a", 60, publish_date=NOW - timedelta(days=40))) == "too-old"


def test_backdated_post_that_appears_later_is_still_new_and_edit_is_not() -> None:
    sent = frozenset({"old-but-sent"})
    edited = post("old-but-sent", 2, updated=NOW)
    backdated = post("backdated", 20)
    assert select_new([edited, backdated], sent=sent, now=NOW, lookback_days=30) == [backdated]


def test_newest_first_then_undated() -> None:
    posts = [post("b", 3), post("undated-z", None), post("a", 1), post("undated-a", None)]
    assert [p.id for p in newest_first(posts)] == ["a", "b", "undated-a", "undated-z"]
