"""Config -> the settings of the stages that read and render: sources, excerpts, rendering.

This module is where every such settings object is built from a `Config`; the entry points
(cli, web, issues) call it and hand the result down, so no stage below them holds the
`Config`. What a send and the inbound stage need (secrets included) is built by
digest.config.sending. Each builder resolves what the configuration leaves implicit (relative
paths against the configuration's folder, `excerpt.labels` defaulting to `site.locale`, a
source's permalink defaulting to the site's) so that the stages receive plain values.
"""

from __future__ import annotations

import os
from pathlib import Path

from digest.config.issues import IssueSettings
from digest.config.schema import Config, MarkdownSourceConfig
from digest.excerpt.settings import ExcerptSettings
from digest.render.settings import RenderSettings, Site
from digest.sources.settings import FeedSource, FolderSource, SourceSettings


def excerpt_settings(config: Config) -> ExcerptSettings:
    """`excerpt.*`, the labels in the posts' language (default `site.locale`)."""
    excerpt = config.excerpt
    return ExcerptSettings(
        length=excerpt.length, labels=excerpt.labels or config.site.locale, math=excerpt.math
    )


def source_settings(config: Config) -> SourceSettings:
    """Every source, its folder resolved against the configuration's folder."""
    site = config.site
    sources: list[FolderSource | FeedSource] = []
    for source in config.sources:
        if isinstance(source, MarkdownSourceConfig):
            sources.append(
                FolderSource(
                    folder=Path(os.path.normpath(config.path(source.path))),
                    base_url=site.base_url,
                    permalink=source.permalink or site.permalink,
                    timezone=site.timezone or "UTC",
                    generator=source.generator,
                    languages=tuple(source.languages),
                    language=source.language,
                )
            )
        else:
            sources.append(FeedSource(url=source.url, timeout=source.timeout))
    return SourceSettings(
        sources=tuple(sources),
        root=config.root,
        cache_dir=config.path(config.cache_dir),
        excerpt=excerpt_settings(config),
    )


def site(config: Config) -> Site:
    """The `site` section as templates see it."""
    site = config.site
    return Site(
        title=site.title,
        base_url=site.base_url,
        locale=site.locale,
        timezone=site.timezone or "UTC",
        postal_address=site.postal_address,
        permalink=site.permalink,
        posts_url=site.posts_url or "",
    )


def render_settings(config: Config) -> RenderSettings:
    """The site, the user's template folder (resolved), `digest.*` and the excerpts."""
    return RenderSettings(
        site=site(config),
        templates=config.path(config.templates_dir),
        web_base_url=config.web.base_url,
        max_posts=config.digest.max_posts,
        subject=config.digest.subject,
        excerpt=excerpt_settings(config),
    )


def issue_settings(config: Config) -> IssueSettings:
    """What reading the next issue takes: the sources and `digest.*`, the site's and the
    schedule's time zones, the main frequency."""
    return IssueSettings(
        sources=source_settings(config),
        max_posts=config.digest.max_posts,
        lookback_days=config.digest.lookback_days,
        first_issue=config.digest.first_issue,
        timezone=config.site.timezone or "UTC",
        frequency=config.schedule.frequency,
        schedule_timezone=config.schedule_timezone,
    )
