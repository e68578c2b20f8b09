"""What the next issue would hold: the posts read, judged against what was sent and when.

`posts`, `render`, `preview`, `status` and the planning of a send all read the next issue
here, so they agree: a post an issue already covered is not new (DESIGN.md section 4).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from digest.config.schema import Config
from digest.config.stages import source_settings
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
    config: Config,
    *,
    sent: Collection[str] = frozenset(),
    now: datetime | None = None,
    lookback_days: int | None = None,
    excerpts: Excerpts = "shown",
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time;
    `lookback_days` (default: digest.lookback_days) bounds how old a new post may be, and
    `digest.first_issue` where the first issue starts (select.with_start): every command that
    reads the next issue comes here, so `posts`, `preview`, `render`, `status`, the scheduler
    and `send` agree on what it holds.

    Every post's front matter is read; excerpts are made only for the candidates `excerpts`
    names (by default those the next issue gives a block: `Gathered.shown(max_posts)`), the
    others' `excerpt` is None. The post cache keeps
    each excerpt made, so a post's excerpt is made once, however many commands show it."""
    now = now or datetime.now(UTC)
    lookback = config.digest.lookback_days if lookback_days is None else lookback_days
    reading = read_sources(source_settings(config))
    source = reading.result
    posts = newest_first(source.posts)
    statuses = with_start(
        posts,
        [status_of(post, sent=sent, now=now, lookback_days=lookback) for post in posts],
        start=config.digest.first_issue,
        first=not sent,
        tz=config.site.tz,
    )
    judged = list(zip(posts, statuses, strict=True))
    made = reading.excerpts(_wanted(judged, excerpts, config.digest.max_posts))
    reading.save()
    candidates = [
        Candidate(post=post, status=status, excerpt=made.get(post)) for post, status in judged
    ]
    return Gathered(candidates=candidates, source=source, first=not sent, lookback_days=lookback)


def _wanted(judged: Sequence[tuple[Post, str]], excerpts: Excerpts, max_posts: int) -> list[Post]:
    """The posts whose excerpt `excerpts` asks for, `judged` being newest first (as
    `Gathered.shown` counts them)."""
    if excerpts == "all":
        return [post for post, _ in judged]
    new = [post for post, status in judged if status == "new"]
    if excerpts == "shown":
        return new[:max_posts]
    return new if excerpts == "new" else []


def nothing_new(gathered: Gathered, config: Config) -> str:
    """Why the next issue would hold no post, in one sentence. Before the first digest, a blog
    whose posts are all older than the lookback is no mystery: the sentence names the newest
    post's date, the lookback and `digest.first_issue`, the key that starts with older posts."""
    if not gathered.first:
        return "Nothing new since the last digest."
    start = config.digest.first_issue
    older = [c.post for c in gathered.candidates if c.status == "too-old"]
    early = [c.post for c in gathered.candidates if c.status == "before-start"]
    if early and not older:
        return (
            f"Nothing new: no post is dated on or after digest.first_issue ({start}); the "
            f"newest is dated {_day(early[0], config)}."
        )
    if older:
        newest = _day(older[0], config)
        return (
            "Nothing new: no digest was sent yet, and every post is older than "
            f"digest.lookback_days ({gathered.lookback_days} days), the newest being dated "
            f"{newest}; to start with older posts, set digest.first_issue in the configuration "
            f"to a date (such as {newest}) or a number of posts (such as 5)."
        )
    return "Nothing new: no post is published yet (digest posts --all says why)."


def first_wait(gathered: Gathered, config: Config) -> dict[str, object] | None:
    """For the preview page: the lookback and the newest post's date, when no digest was sent
    yet and every post is older than the lookback (None otherwise)."""
    older = [c.post for c in gathered.candidates if c.status == "too-old"]
    if gathered.new or not gathered.first or not older:
        return None
    return {"days": gathered.lookback_days, "date": _day(older[0], config)}


def _day(post: Post, config: Config) -> str:
    assert post.date is not None  # only dated posts are too old or before the start
    return post.date.astimezone(config.site.tz).strftime("%Y-%m-%d")


def lookback_for(config: Config, frequency: str) -> int:
    """A monthly issue looks back at least a month and a week, whatever lookback_days says."""
    lookback = config.digest.lookback_days
    return max(lookback, PERIOD_DAYS[frequency] + 7) if lookback else 0


def next_issue(
    config: Config,
    database: Database | None,
    *,
    frequency: str | None = None,
    now: datetime | None = None,
    sent: Collection[str] | None = None,
    excerpts: Excerpts = "shown",
) -> Gathered:
    """What the next issue of `frequency` would hold: posts already covered are not new.
    They are read from `database`, unless `sent` gives them (digest.store.peek read them);
    with neither, no post was covered."""
    frequency = frequency or config.schedule.frequency
    if sent is None:
        sent = set()
    elif database is not None:
        raise ValueError("next_issue takes the posts sent or a database to read them from")
    if database is not None:
        from digest.store import ledger

        with database.session() as session:
            sent = ledger.sent_post_ids(session, frequency)
    return gather(
        config,
        sent=sent,
        now=now,
        lookback_days=lookback_for(config, frequency),
        excerpts=excerpts,
    )


def next_edition(
    gathered: Gathered, config: Config, now: datetime | None = None, frequency: str | None = None
) -> Edition:
    """The edition the next send would make from what `gather` found."""
    now = now or datetime.now(UTC)
    return Edition(
        key=period_key(now, frequency or config.schedule.frequency, config.schedule_tz),
        date=now,
        posts=tuple(c.post for c in gathered.new),
    )
