"""What the next issue would hold: the posts read, judged against what was sent and when.

`posts`, `render`, `preview`, `status` and the planning of a send all read the next issue
here, so they agree: a post an issue already covered is not new (DESIGN.md section 4).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from digest.config.issues import IssueSettings
from digest.issues.select import newest_first, period_key, status_of, with_start
from digest.models import Candidate, Edition, Post, SourceResult
from digest.sources.read import read_sources

if TYPE_CHECKING:
    from digest.store.database import Database

# Which candidates get an excerpt: the posts the next issue gives a block (the newest
# `max_posts` new ones: what `posts`, `render` and a send show), every new post (the preview
# page and the API list the overflow with its excerpts), every post read (`posts --all`), or
# none (`status` only counts them).
Excerpts = Literal["shown", "new", "all", "none"]

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}


@dataclass(slots=True)
class Gathered:
    """Every post read, with its verdict and excerpt, plus what the sources reported."""

    candidates: list[Candidate] = field(default_factory=list)
    source: SourceResult = field(default_factory=SourceResult)
    first: bool = False  # no issue of this frequency covered a post yet
    lookback_days: int = 0
    note: str = ""  # the editor's note waiting for this issue (digest.issues.editorial)

    @property
    def new(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "new"]

    def shown(self, max_posts: int) -> list[Candidate]:
        """The overflow rule: the newest `max_posts` new posts get a block in the digest (or
        fewer, when the HTML part would pass its budget: digest.render.edition decides that)..."""
        return self.new[:max_posts]

    def overflow(self, max_posts: int) -> list[Candidate]:
        """...and the other new posts are in its "N more posts" line."""
        return self.new[max_posts:]


def gather(
    settings: IssueSettings,
    *,
    sent: Collection[str] = frozenset(),
    now: datetime | None = None,
    lookback_days: int | None = None,
    held: Mapping[str, str] | None = None,
    note: str = "",
    excerpts: Excerpts = "shown",
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time;
    `lookback_days` (default: digest.lookback_days) bounds how old a new post may be, and
    `digest.first_issue` where the first issue starts (select.with_start): every command that
    reads the next issue comes here, so `posts`, `preview`, `render`, `status`, the scheduler
    and `send` agree on what it holds. `held` (post id -> `next` or `always`) are the posts
    the owner left out: a new one among them is `held` or `held-always` instead; `note` is
    the editor's note the issue would carry.

    Every post's front matter is read; excerpts are made only for the candidates `excerpts`
    names (by default those the next issue gives a block: `Gathered.shown(max_posts)`), the
    others' `excerpt` is None. The post cache keeps
    each excerpt made, so a post's excerpt is made once, however many commands show it."""
    now = now or datetime.now(UTC)
    lookback = settings.lookback_days if lookback_days is None else lookback_days
    reading = read_sources(settings.sources)
    source = reading.result
    posts = newest_first(source.posts)
    statuses = with_start(
        posts,
        [status_of(post, sent=sent, now=now, lookback_days=lookback) for post in posts],
        start=settings.first_issue,
        first=not sent,
        tz=settings.tz,
    )
    held = held or {}
    statuses = [
        ("held-always" if held[post.id] == "always" else "held")
        if status == "new" and post.id in held
        else status
        for post, status in zip(posts, statuses, strict=True)
    ]
    judged = list(zip(posts, statuses, strict=True))
    made = reading.excerpts(_wanted(judged, excerpts, settings.max_posts))
    reading.save()
    candidates = [
        Candidate(post=post, status=status, excerpt=made.get(post)) for post, status in judged
    ]
    return Gathered(
        candidates=candidates, source=source, first=not sent, lookback_days=lookback, note=note
    )


def _wanted(judged: Sequence[tuple[Post, str]], excerpts: Excerpts, max_posts: int) -> list[Post]:
    """The posts whose excerpt `excerpts` asks for, `judged` being newest first (as
    `Gathered.shown` counts them)."""
    if excerpts == "all":
        return [post for post, _ in judged]
    new = [post for post, status in judged if status == "new"]
    if excerpts == "shown":
        return new[:max_posts]
    return new if excerpts == "new" else []


def nothing_new(gathered: Gathered, settings: IssueSettings) -> str:
    """Why the next issue would hold no post, in one sentence. Before the first digest, a blog
    whose posts are all older than the lookback is no mystery: the sentence names the newest
    post's date, the lookback and `digest.first_issue`, the key that starts with older posts."""
    if not gathered.first:
        return "Nothing new since the last digest."
    start = settings.first_issue
    older = [c.post for c in gathered.candidates if c.status == "too-old"]
    early = [c.post for c in gathered.candidates if c.status == "before-start"]
    if early and not older:
        return (
            f"Nothing new: no post is dated on or after digest.first_issue ({start}); the "
            f"newest is dated {_day(early[0], settings)}."
        )
    if older:
        newest = _day(older[0], settings)
        return (
            "Nothing new: no digest was sent yet, and every post is older than "
            f"digest.lookback_days ({gathered.lookback_days} days), the newest being dated "
            f"{newest}; to start with older posts, set digest.first_issue in the configuration "
            f"to a date (such as {newest}) or a number of posts (such as 5)."
        )
    return "Nothing new: no post is published yet (digest posts --all says why)."


def first_wait(gathered: Gathered, settings: IssueSettings) -> dict[str, object] | None:
    """For the preview page: the lookback and the newest post's date, when no digest was sent
    yet and every post is older than the lookback (None otherwise)."""
    older = [c.post for c in gathered.candidates if c.status == "too-old"]
    if gathered.new or not gathered.first or not older:
        return None
    return {"days": gathered.lookback_days, "date": _day(older[0], settings)}


def _day(post: Post, settings: IssueSettings) -> str:
    assert post.date is not None  # only dated posts are too old or before the start
    return post.date.astimezone(settings.tz).strftime("%Y-%m-%d")


def lookback_for(settings: IssueSettings, frequency: str) -> int:
    """A monthly issue looks back at least a month and a week, whatever lookback_days says."""
    lookback = settings.lookback_days
    return max(lookback, PERIOD_DAYS[frequency] + 7) if lookback else 0


def next_issue(
    settings: IssueSettings,
    database: Database | None,
    *,
    frequency: str | None = None,
    now: datetime | None = None,
    sent: Collection[str] | None = None,
    held: Mapping[str, str] | None = None,
    note: str = "",
    excerpts: Excerpts = "shown",
) -> Gathered:
    """What the next issue of `frequency` would hold: posts already covered are not new, the
    posts the owner held are left out, the editor's note waiting is carried. They are read
    from `database`, unless `sent`, `held` and `note` give them (digest.store.peek read
    them); with neither, no post was covered, none held, no note."""
    frequency = frequency or settings.frequency
    if sent is None:
        sent = set()
    elif database is not None:
        raise ValueError("next_issue takes the posts sent or a database to read them from")
    if database is not None:
        from digest.store import editorial, ledger

        with database.session() as session:
            sent = ledger.sent_post_ids(session, frequency)
            held = editorial.held(session)
            waiting = editorial.note(session, frequency)
            note = waiting.text if waiting is not None else ""
    return gather(
        settings,
        sent=sent,
        now=now,
        lookback_days=lookback_for(settings, frequency),
        held=held,
        note=note,
        excerpts=excerpts,
    )


def next_edition(
    gathered: Gathered,
    settings: IssueSettings,
    now: datetime | None = None,
    frequency: str | None = None,
) -> Edition:
    """The edition the next send would make from what `gather` found."""
    now = now or datetime.now(UTC)
    return Edition(
        key=period_key(now, frequency or settings.frequency, settings.schedule_tz),
        date=now,
        posts=tuple(c.post for c in gathered.new),
        note=gathered.note,
    )
