"""What rendering reads from the configuration: the site, the templates, the digest's shape.

Built by the entry points from `Config` (digest.config.stages.render_settings); rendering
never sees the `Config` itself. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.excerpt.settings import ExcerptSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """The `site` section as templates see it (`site.title`, `site.postal_address`, ...):
    every one of its settings, defaults filled in, so a user's template keeps working."""

    title: str
    base_url: str
    locale: str = "zh"
    timezone: str = "UTC"
    postal_address: str | None = None
    permalink: str = "/posts/{slug}/"
    posts_url: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderSettings:
    """One digest's rendering: the `site`, the user's template folder `templates` (absolute;
    used when it exists, over the built-in templates), `max_posts`, the `subject` template,
    the web app's `web_base_url` (the "view online" link) and how excerpts are made."""

    site: Site
    templates: Path
    web_base_url: str
    max_posts: int = 12
    subject: str = "{title} · {long_date}"
    excerpt: ExcerptSettings = field(default_factory=ExcerptSettings)
