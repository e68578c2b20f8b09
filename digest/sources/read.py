"""Post sources: a folder of Markdown files, or a feed. They read posts and know nothing of email.

`read_posts` reads every configured source in order; a post reached twice (same identity or
same URL, for example a folder and the blog's own feed) is kept once, from the first source.
Only http, https and mailto links leave here: a cover with any other scheme (`javascript:`,
`data:`, `file:`, however disguised) is dropped and a post whose own link has one is skipped,
each with a warning naming the post (digest.links.link_scheme reads schemes as browsers do).

Reading parses every post's front matter (its identity, date, draft status, title: what
deciding which posts are new needs); an excerpt, which needs the whole Markdown body, is made
only for the posts a command shows (`Reading.excerpts`), and kept in the post cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from digest.errors import SourceError
from digest.excerpt.clean import clean, clean_optional
from digest.links import SAFE_SCHEMES, is_safe_link, link_scheme
from digest.models import Post, Problem, SourceResult
from digest.sources.cache import PostCache
from digest.sources.markdown import read_folder
from digest.sources.settings import FolderSource, SourceSettings


class Reading:
    """What one read of the sources gave (`result`), and the excerpts of its posts on demand.

    `excerpts(posts)` returns the excerpt of each post asked for: the one the post cache kept
    for it, else made now (and kept, for the next read); `save` writes the post caches once,
    with every excerpt made. Excerpts handed out are also given to digest.excerpt.rules, so
    that a later `excerpt_for` of the same post and settings (the render) parses nothing."""

    def __init__(self, settings: SourceSettings) -> None:
        self.settings = settings
        self.result = SourceResult()
        self._caches: list[PostCache] = []
        self._raw: dict[Post, Post] = {}  # each post as cleaned -> as its source gave it
        self._known: dict[Post, str] = {}  # excerpts known, by the post as cleaned

    def _read(self) -> None:
        settings, result = self.settings, self.result
        for source in settings.sources:
            try:
                if isinstance(source, FolderSource):
                    cache = PostCache.open(settings, source)
                    self._caches.append(cache)
                    read_folder(
                        source.folder,
                        base_url=source.base_url,
                        permalink=source.permalink,
                        tz=source.tz,
                        result=result,
                        generator=source.generator,
                        languages=source.languages,
                        language=source.language,
                        reader=cache.read,
                    )
                else:
                    from digest.sources.feed import read_feed  # feedparser, nh3: feeds only

                    read_feed(
                        source.url,
                        root=settings.root,
                        cache_dir=settings.cache_dir / "feeds",
                        timeout=source.timeout,
                        result=result,
                    )
            except SourceError as exc:
                result.failures.append(exc.message)
        kept = {post: excerpt for cache in self._caches for post, excerpt in cache.excerpts.items()}
        cleaned = [clean_post(post) for post in result.posts]
        for raw, tidy in zip(result.posts, cleaned, strict=True):
            self._raw[tidy] = raw
            if raw in kept:
                self._known[tidy] = kept[raw]
        result.posts = _unique(result, [p for p in map(_safe_links(result), cleaned) if p])

    def excerpts(self, posts: Iterable[Post]) -> dict[Post, str]:
        """The excerpt of each of `posts` (posts of this read), made only when not known."""
        from digest.excerpt.memo import excerpt_inputs, remember_excerpts

        made: dict[Post, str] = {}
        for post in posts:
            excerpt = self._known.get(post)
            if excerpt is None:
                from digest.excerpt.rules import excerpt_for  # markdown-it: only to make one

                excerpt = excerpt_for(post, self.settings.excerpt)
                self._known[post] = excerpt
                self._keep(post, excerpt)
            made[post] = excerpt
        remember_excerpts(
            {excerpt_inputs(post, self.settings.excerpt): e for post, e in self._known.items()}
        )
        return made

    def _keep(self, post: Post, excerpt: str) -> None:
        raw = self._raw.get(post)
        if raw is not None:
            for cache in self._caches:  # only the cache that read it has an entry for it
                cache.keep(raw, excerpt)

    def save(self) -> None:
        """Write the post caches (what changed: entries of files read again, excerpts made)."""
        for cache in self._caches:
            cache.save()


def read_sources(settings: SourceSettings) -> Reading:
    """Posts from every source: unreadable posts go to `result.problems`, sources to
    `result.failures`. Markdown folders go through their post cache (digest.sources.cache):
    an unchanged file is not parsed again. Call `save` when done with its excerpts."""
    reading = Reading(settings)
    reading._read()
    return reading


def read_posts(settings: SourceSettings) -> SourceResult:
    """The posts of every source, no excerpt made (`read_sources` for those), the post
    caches saved."""
    reading = read_sources(settings)
    reading.save()
    return reading.result


# A feed entry without a link is known by its id: a URN or a tag URI, never shown as a link.
_IDENTITY_SCHEMES = frozenset({"urn", "tag"})


def _safe_links(result: SourceResult) -> Callable[[Post], Post | None]:
    def check(post: Post) -> Post | None:
        where = post.source if post.body_format == "markdown" else f"{post.source} ({post.title})"
        scheme = link_scheme(post.url)
        if scheme not in SAFE_SCHEMES | _IDENTITY_SCHEMES | {""}:
            reason = f"its link {post.url[:80]!r} is not an http(s) URL; skipped"
            result.problems.append(Problem(where, reason))
            return None
        if post.cover is not None and not is_safe_link(post.cover):
            reason = f"cover {post.cover[:80]!r} is not an http(s) URL; the post has no cover"
            result.problems.append(Problem(where, reason))
            return replace(post, cover=None)
        return post

    return check


def clean_post(post: Post) -> Post:
    """The post with control characters removed from every text field (see digest.excerpt.clean)."""
    return replace(
        post,
        title=clean(post.title),
        url=clean(post.url),
        body=clean(post.body),
        summary=clean_optional(post.summary),
        categories=tuple(clean(c) for c in post.categories),
        tags=tuple(clean(t) for t in post.tags),
        cover=clean_optional(post.cover),
        cover_alt=clean_optional(post.cover_alt),
    )


def _unique(result: SourceResult, posts: list[Post]) -> list[Post]:
    """Each post once: a later post with an identity or URL already seen is reported, not kept
    (a folder and the blog's own feed list the same posts; two files may claim one URL)."""
    seen_ids: dict[str, Post] = {}
    seen_urls: dict[str, Post] = {}
    unique = []
    for post in posts:
        url = post.url.rstrip("/")
        first = seen_ids.get(post.id) or seen_urls.get(url)
        if first is not None:
            if first.source != post.source and _same_kind(first, post):
                what = "id" if post.id in seen_ids else "URL"
                value = post.id if what == "id" else post.url
                reason = f"{what} {value} is already used by {first.source}; skipped"
                result.problems.append(Problem(post.source, reason))
            continue
        seen_ids[post.id] = post
        seen_urls[url] = post
        unique.append(post)
    return unique


def _same_kind(first: Post, second: Post) -> bool:
    # A feed repeating a folder's post is expected; two files of one folder colliding is not.
    return first.body_format == second.body_format == "markdown"
