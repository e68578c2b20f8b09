"""The one place that knows the order of the steps: sources -> posts -> issue -> ...

Commands, the web app and the scheduler call these functions; none of them re-implements a step.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from digest.config import Config
from digest.excerpt import excerpt_of
from digest.issue import newest_first, period_key, status_of
from digest.models import Candidate, Edition, Post, SourceResult
from digest.sources import read_posts


@dataclass(slots=True)
class Gathered:
    """Every post read, with its verdict and excerpt, plus what the sources reported."""

    candidates: list[Candidate] = field(default_factory=list)
    source: SourceResult = field(default_factory=SourceResult)

    @property
    def new(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "new"]


def excerpt_for(post: Post, config: Config, locale: str | None = None) -> str:
    return excerpt_of(
        post.body,
        summary=post.summary,
        body_format=post.body_format,
        length=config.excerpt.length,
        locale=locale or config.site.locale,
    )


def gather(
    config: Config, *, sent: Collection[str] = frozenset(), now: datetime | None = None
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time."""
    now = now or datetime.now(UTC)
    source = read_posts(config)
    candidates = [
        Candidate(
            post=post,
            status=status_of(post, sent=sent, now=now, lookback_days=config.digest.lookback_days),
            excerpt=excerpt_for(post, config),
        )
        for post in newest_first(source.posts)
    ]
    return Gathered(candidates=candidates, source=source)


def next_edition(gathered: Gathered, config: Config, now: datetime | None = None) -> Edition:
    """The edition the next send would make from what `gather` found."""
    now = now or datetime.now(UTC)
    return Edition(
        key=period_key(now, config.schedule.frequency, config.schedule_tz),
        date=now,
        posts=tuple(c.post for c in gathered.new),
    )
