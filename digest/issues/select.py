"""Which posts the next issue holds (DESIGN.md section 4).

Selection is a pure function of the posts, the identities already sent and the current time, so
the database, the scheduler and the tests can each supply their own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.models import Post, PostStatus, own_status


def status_of(
    post: Post, *, sent: Collection[str], now: datetime, lookback_days: int
) -> PostStatus:
    """Why a post is, or is not, new. `lookback_days == 0` means no age limit.

    A draft or an opted-out post is that first; then one already sent; then what the post
    itself says (`own_status`: expired, future); then its age."""
    own = own_status(post, now)
    if own in ("draft", "opted-out"):
        return own
    if post.id in sent:
        return "sent"
    if own != "new":
        return own
    if post.date is not None:
        # a post scheduled by publishDate appeared then, however old its date
        appeared = max(post.date, post.publish_date or post.date)
        if lookback_days and appeared < now - timedelta(days=lookback_days):
            return "too-old"
    return "new"


def with_start(
    posts: Sequence[Post],
    statuses: Sequence[PostStatus],
    *,
    start: date | int | None,
    first: bool,
    tz: ZoneInfo,
) -> list[PostStatus]:
    """The statuses once `digest.first_issue` (`start`) is applied; `posts` newest first,
    `first` when no issue of this frequency covered a post yet.

    - a date: a post that appeared before that day (in `tz`) is never new ("before-start"),
      and the first issue holds every post since that day however old ("too-old" -> "new");
    - a number N: the first issue also holds the newest N posts, however old (those within the
      lookback are in it anyway); later issues go by the lookback alone.
    """
    result = list(statuses)
    if isinstance(start, date):
        for index, post in enumerate(posts):
            if result[index] not in ("new", "too-old") or post.date is None:
                continue
            appeared = max(post.date, post.publish_date or post.date)
            if appeared.astimezone(tz).date() < start:
                result[index] = "before-start"
            elif first:
                result[index] = "new"
    elif isinstance(start, int) and first:
        eligible = [i for i, status in enumerate(result) if status in ("new", "too-old")]
        for index in eligible[:start]:
            result[index] = "new"
    return result


def newest_first(posts: Iterable[Post]) -> list[Post]:
    """Dated posts newest first, then undated ones by title; ties broken by identity."""
    dated = sorted(
        (p for p in posts if p.date is not None),
        key=lambda p: (-p.date.timestamp() if p.date else 0.0, p.id),
    )
    undated = sorted((p for p in posts if p.date is None), key=lambda p: (p.title, p.id))
    return dated + undated


def select_new(
    posts: Iterable[Post], *, sent: Collection[str], now: datetime, lookback_days: int
) -> list[Post]:
    """The new posts, newest first: everything the next issue covers (shown or overflow)."""
    return newest_first(
        p for p in posts if status_of(p, sent=sent, now=now, lookback_days=lookback_days) == "new"
    )


def period_key(moment: datetime, frequency: str, tz: ZoneInfo) -> str:
    """The unique key of the period `moment` falls in: 2026-W47, 2026-11-22 or 2026-11."""
    local = moment.astimezone(tz)
    if frequency == "daily":
        return local.strftime("%Y-%m-%d")
    if frequency == "monthly":
        return local.strftime("%Y-%m")
    year, week, _ = local.isocalendar()
    return f"{year:04d}-W{week:02d}"
