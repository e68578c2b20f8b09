"""What the next issue would hold: the posts read, judged against what was sent and when.

`posts`, `render`, `preview`, `status` and the planning of a send all read the next issue
here, so they agree: a post an issue already covered is not new (DESIGN.md section 4).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from digest.config.schema import Config
from digest.config.stages import excerpt_settings, source_settings
from digest.excerpt.rules import excerpt_for
from digest.issues.select import newest_first, period_key, status_of
from digest.models import Candidate, Edition, SourceResult
from digest.sources.read import read_posts
from digest.store import ledger
from digest.store.database import Database

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}


@dataclass(slots=True)
class Gathered:
    """Every post read, with its verdict and excerpt, plus what the sources reported."""

    candidates: list[Candidate] = field(default_factory=list)
    source: SourceResult = field(default_factory=SourceResult)

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
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time;
    `lookback_days` (default: digest.lookback_days) bounds how old a new post may be."""
    now = now or datetime.now(UTC)
    lookback = config.digest.lookback_days if lookback_days is None else lookback_days
    source = read_posts(source_settings(config))
    excerpts = excerpt_settings(config)
    candidates = [
        Candidate(
            post=post,
            status=status_of(post, sent=sent, now=now, lookback_days=lookback),
            excerpt=excerpt_for(post, excerpts),
        )
        for post in newest_first(source.posts)
    ]
    return Gathered(candidates=candidates, source=source)


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
) -> Gathered:
    """What the next issue of `frequency` would hold: posts already covered are not new."""
    frequency = frequency or config.schedule.frequency
    sent: set[str] = set()
    if database is not None:
        with database.session() as session:
            sent = ledger.sent_post_ids(session, frequency)
    return gather(config, sent=sent, now=now, lookback_days=lookback_for(config, frequency))


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
