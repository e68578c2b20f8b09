"""What the sources read from the configuration: each source, resolved, and where caches go.

Built by the entry points from `Config` (digest.config.stages.source_settings); the sources
never see the `Config` itself. Paths are absolute already (resolved against the
configuration's folder) and each folder source carries the site settings its posts depend
on, so a `FolderSource` plus the `ExcerptSettings` is everything a cached post depends on
besides its file and the code (digest.sources.cache keys on exactly these). Standard
library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from digest.excerpt.settings import ExcerptSettings

# The blog's generator: its rules for slugs, dates, drafts and URL fields (docs/blogs.md).
Generator = Literal["hexo", "hugo", "jekyll"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderSource:
    """A folder of Markdown posts: `folder` (absolute, normalised), the site's `base_url`,
    the `permalink` pattern (the source's own, else `site.permalink`), the site's
    `timezone` for naive dates, the `generator`, and Hugo's `languages` and `language`."""

    folder: Path
    base_url: str
    permalink: str = "/posts/{slug}/"
    timezone: str = "UTC"
    generator: Generator | None = None
    languages: tuple[str, ...] = ()
    language: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSource:
    """An RSS or Atom feed: its `url` (a `file://` path is relative to `SourceSettings.root`)
    and the `timeout` of fetching it."""

    url: str
    timeout: float = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    """Every configured source in order, the configuration's folder (`root`), the cache
    folder (`cache_dir`, absolute) and how excerpts are made (cached with the posts)."""

    sources: tuple[FolderSource | FeedSource, ...]
    root: Path
    cache_dir: Path
    excerpt: ExcerptSettings = field(default_factory=ExcerptSettings)
