"""Post sources: a folder of Markdown files, or a feed. They read posts and know nothing of email.

`read_posts` reads every configured source in order; a post reached twice (same identity or
same URL, for example a folder and the blog's own feed) is kept once, from the first source.
"""

from __future__ import annotations

from digest.config import Config, FeedSourceConfig, MarkdownSourceConfig
from digest.errors import SourceError
from digest.models import Post, SourceResult
from digest.sources.feed import read_feed
from digest.sources.markdown import read_folder


def read_posts(config: Config) -> SourceResult:
    """Posts from every source: unreadable posts go to `problems`, sources to `failures`."""
    result = SourceResult()
    for source in config.sources:
        try:
            if isinstance(source, MarkdownSourceConfig):
                read_folder(
                    config.path(source.path),
                    base_url=config.site.base_url,
                    permalink=source.permalink or config.site.permalink,
                    tz=config.site.tz,
                    result=result,
                )
            elif isinstance(source, FeedSourceConfig):
                read_feed(
                    source.url,
                    root=config.root,
                    cache_dir=config.path(config.cache_dir) / "feeds",
                    timeout=source.timeout,
                    result=result,
                )
        except SourceError as exc:
            result.failures.append(exc.message)
    result.posts = _unique(result)
    return result


def _unique(result: SourceResult) -> list[Post]:
    seen_ids: set[str] = set()
    seen_urls: set[str] = set()
    unique = []
    for post in result.posts:
        url = post.url.rstrip("/")
        if post.id in seen_ids or url in seen_urls:
            continue
        seen_ids.add(post.id)
        seen_urls.add(url)
        unique.append(post)
    return unique
