"""What counts as new (DESIGN.md section 4): drafts, opt-outs, future, lookback, already sent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.issues.select import newest_first, select_new, status_of, with_start
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


def _started(
    posts: list[Post], start: date | int | None, *, first: bool, sent: frozenset[str] = frozenset()
) -> dict[str, str]:
    ordered = newest_first(posts)
    statuses = [status_of(p, sent=sent, now=NOW, lookback_days=30) for p in ordered]
    tz = ZoneInfo("Asia/Shanghai")
    started = with_start(ordered, statuses, start=start, first=first, tz=tz)
    return {p.id: status for p, status in zip(ordered, started, strict=True)}


def test_first_issue_from_a_date() -> None:
    # digest.first_issue: 2026-09-01 (issue 21); days before NOW (2026-11-22 12:00 UTC)
    posts = [
        post("recent", 3),
        post("october", 40),
        # 2026-08-31 17:30 UTC is 2026-09-01 01:30 in Asia/Shanghai: on the day, in the site's zone
        post("edge", (NOW - datetime(2026, 8, 31, 17, 30, tzinfo=UTC)).total_seconds() / 86400),
        post("august", 100),
        post("draft", 50, draft=True),
        post("undated", None),
        # appeared (publishDate) after the start although dated before it
        post("scheduled", 120, publish_date=NOW - timedelta(days=10)),
    ]
    first = _started(posts, date(2026, 9, 1), first=True)
    assert first == {
        "recent": "new",
        "october": "new",
        "edge": "new",
        "august": "before-start",
        "draft": "draft",
        "undated": "new",
        "scheduled": "new",
    }
    # after the first issue: the lookback again, and still nothing before the start
    later = _started(posts, date(2026, 9, 1), first=False, sent=frozenset({"recent"}))
    assert later["october"] == "too-old" and later["august"] == "before-start"
    assert later["recent"] == "sent"
    # a start inside the lookback also bars what the lookback would let in
    assert _started([post("a", 10), post("b", 2)], date(2026, 11, 15), first=False) == {
        "b": "new",
        "a": "before-start",
    }


def test_first_issue_from_a_number_of_posts() -> None:
    posts = [
        post("p1", 40),
        post("p2", 50),
        post("p3", 60),
        post("p4", 70),
        post("x", 45, draft=True),
    ]
    assert _started(posts, 2, first=True) == {
        "p1": "new",
        "p2": "new",
        "x": "draft",
        "p3": "too-old",
        "p4": "too-old",
    }
    # posts within the lookback are in it anyway: at least N
    assert _started([post("a", 1), post("b", 2), post("c", 40)], 1, first=True) == {
        "a": "new",
        "b": "new",
        "c": "too-old",
    }
    # later issues: the lookback alone
    assert _started(posts, 2, first=False)["p1"] == "too-old"
    # unset: nothing changes
    assert _started(posts, None, first=True)["p1"] == "too-old"
