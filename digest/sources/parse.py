"""One Markdown post file's text -> its `Post`: front matter read as Hexo, Hugo and Jekyll read it.

The parsing half of digest.sources.markdown (which finds the files and reads them): loaded
only when a file is parsed, so a run answered from the post cache never loads the front-matter,
permalink and slug machinery. The rules are those of digest.sources.markdown's docstring.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from digest.errors import PostError
from digest.excerpt.markup import first_heading, summary_from, title_text
from digest.excerpt.mathmode import math_switch
from digest.links import is_safe_link, post_url
from digest.models import Post
from digest.sources.fields import (
    PostFacts,
    fields_for,
    jekyll_categories,
    plain_slug,
)
from digest.sources.frontmatter import FrontMatterError, split_front_matter
from digest.sources.markdown import DATED_NAME, FileContext, PostFile, read_text, text_digest
from digest.sources.permalinks import jekyll_pattern
from digest.sources.settings import Generator
from digest.sources.slugs import jekyll_titleize
from digest.sources.values import (
    EXPIRY,
    HUGO_DATE,
    PUBLISH,
    as_bool,
    as_datetime,
    first_date,
    is_flag,
    strings,
)


def parse_post_file(
    text: str,
    context: FileContext,
    *,
    base_url: str,
    permalink: str,
    tz: ZoneInfo,
    generator: Generator | None,
    folder: str,
) -> PostFile:
    """The PostFile of one file's text (from read_text): a post, or the reason it is skipped."""
    digest = text_digest(text)
    try:
        if not text.strip():
            raise PostError("the file is empty; skipped")
        meta, body = _split(text, hexo=generator == "hexo")
        warnings: list[str] = []
        post = post_from_front_matter(
            meta,
            body,
            context.relative,
            base_url=base_url,
            permalink=permalink,
            tz=tz,
            generator=generator,
            folder=folder,
            sections=context.sections,
            content=context.content,
            warnings=warnings,
        )
    except PostError as exc:
        return PostFile(None, (exc.message,), digest)
    return PostFile(post, tuple(warnings), digest)


def _split(text: str, *, hexo: bool = False) -> tuple[dict[str, Any], str]:
    try:
        return split_front_matter(text, hexo=hexo)
    except FrontMatterError as exc:
        raise PostError(str(exc)) from None


def read_post(file: Path, relative: str, *, base_url: str, permalink: str, tz: ZoneInfo) -> Post:
    """Read one post of a plain folder; raises PostError with the reason when it is unusable."""
    meta, body = _split(read_text(file))
    return post_from_front_matter(
        meta, body, relative, base_url=base_url, permalink=permalink, tz=tz
    )


def post_from_front_matter(
    front_matter: dict[str, Any],
    body: str,
    relative: str,
    *,
    base_url: str,
    permalink: str,
    tz: ZoneInfo,
    generator: Generator | None = None,
    folder: str = "",
    sections: tuple[str, ...] = (),
    content: str | None = None,
    warnings: list[str] | None = None,
) -> Post:
    """The post of one file; `content` is the path its URL is made from when it differs from
    `relative` (its identity): a translated Hugo file's name without the language.

    A front-matter `url`, `permalink`, `cover` or `image` whose scheme is not http(s) or
    mailto (`javascript:`, `data:`...) is not used: the permalink pattern gives the URL, the
    post has no cover, and `warnings` gets a sentence saying so."""
    warnings = [] if warnings is None else warnings
    meta: dict[str, Any] = {}
    for key, value in front_matter.items():
        meta.setdefault(key.lower(), value)
    path = PurePosixPath(content or relative)
    facts = PostFacts(path, meta, "", None, (), folder, sections)
    post_date = _post_date(meta, facts, tz, generator)
    title, body = _title(meta, body, facts, generator)
    categories = (
        tuple(jekyll_categories(meta))
        if generator == "jekyll"
        else strings(meta.get("categories", meta.get("category")), "categories")
    )
    # Hexo and Jekyll build URLs from the date in the site's time zone; Hugo keeps its offset.
    url_date = post_date if generator == "hugo" or post_date is None else post_date.astimezone(tz)
    facts = PostFacts(path, meta, title, url_date, categories, folder, sections)
    own_url = _own_url(meta, generator, warnings)
    url = post_url(base_url, own_url or permalink, fields_for(generator, facts), meta)
    cover = _cover(meta, warnings)
    published = meta.get("published")
    return Post(
        id=str(meta["id"]) if meta.get("id") not in (None, "") else relative,
        title=title,
        url=url,
        date=post_date,
        updated=as_datetime(meta.get("updated", meta.get("lastmod")), "updated", tz),
        body=body,
        summary=summary_from(meta),
        categories=categories,
        tags=_tags(meta.get("tags", meta.get("tag")), generator),
        cover=cover,
        cover_alt=str(meta.get("cover_alt") or title),
        draft=as_bool(meta.get("draft"), "draft", default=False)
        or (is_flag(published) and not as_bool(published, "published", default=True)),
        newsletter=as_bool(meta.get("newsletter"), "newsletter", default=True)
        and not _hidden(meta, generator),
        source=relative,
        publish_date=first_date(meta, PUBLISH, tz),
        expiry_date=first_date(meta, EXPIRY, tz),
        math=math_switch(meta),
    )


def _post_date(
    meta: dict[str, Any], facts: PostFacts, tz: ZoneInfo, generator: Generator | None
) -> datetime | None:
    if generator == "hugo":
        return first_date(meta, HUGO_DATE, tz)
    post_date = as_datetime(meta.get("date"), "date", tz)
    named = DATED_NAME.match(facts.stem)
    if post_date is None and named is not None:
        year, month, day = (int(g) for g in named.groups())
        try:
            post_date = datetime(year, month, day, tzinfo=tz)
        except ValueError:
            raise PostError(f"the file name's date {named.group(0)[:-1]} is not a date") from None
    return post_date


def _hidden(meta: dict[str, Any], generator: Generator | None) -> bool:
    """A post the blog itself keeps out of its lists and feed, so out of the digest too: in
    Hexo (and plain folders) `hidden: true` (hexo-hide-posts) and `hide: true` (Fluid), in Hugo
    `build: {list: never}` (or `_build: {list: false}`). Jekyll's `hidden: true` only keeps a
    post off the paginated home page (jekyll-paginate); its feed still lists it, so it stays."""
    for key in ("hidden", "hide") if generator in (None, "hexo") else ():
        value = meta.get(key)
        if is_flag(value) and as_bool(value, key, default=False):
            return True
    for key in ("build", "_build"):
        options = meta.get(key)
        if isinstance(options, dict):
            listed = {str(k).lower(): v for k, v in options.items()}.get("list")
            if listed is False or str(listed).strip().lower() in ("never", "false"):
                return True
    return False


def _cover(meta: dict[str, Any], warnings: list[str]) -> str | None:
    """`cover` or `image`; a theme's `cover: {image: …}` mapping (Hugo PaperMod) too."""
    key = "cover" if meta.get("cover") else "image"
    value = meta.get(key)
    if isinstance(value, dict):
        value = value.get("image") or value.get("src")
    cover = str(value).strip() or None if isinstance(value, str | int) else None
    if cover is not None and not is_safe_link(cover):
        warnings.append(f"{key} {cover[:80]!r} is not an http(s) URL; the post has no cover")
        return None
    return cover


def _own_url(meta: dict[str, Any], generator: Generator | None, warnings: list[str]) -> str | None:
    """A post's own URL: Hugo's `url`, Hexo's and Jekyll's `permalink`, either for others."""
    keys = {"hugo": ("url",), "hexo": ("permalink",), "jekyll": ("permalink",)}
    for key in keys.get(generator or "", ("url", "permalink")):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            link = value.strip()
            if not is_safe_link(link):
                warnings.append(
                    f"{key} {link[:80]!r} is not an http(s) URL; the permalink pattern is used"
                )
                continue
            if generator == "jekyll":
                return jekyll_pattern(link).pattern
            return link if link.startswith(("/", "http://", "https://")) else "/" + link
    return None


def _title(
    meta: dict[str, Any], body: str, facts: PostFacts, generator: Generator | None
) -> tuple[str, str]:
    """The post's title and the body the excerpt is made from (without a title heading)."""
    title = meta.get("title")
    if title is not None and str(title).strip():
        text = title_text(str(title))
        return text, _without_title_heading(body, text)
    heading = first_heading(body)
    if heading is not None:
        return heading.text, body if heading.rest is None else heading.rest
    slug = plain_slug(facts)
    if generator == "jekyll":
        return jekyll_titleize(slug), body
    return slug.replace("-", " ").replace("_", " ").strip() or slug, body


_OPENING_HEADING = re.compile(r"\A\s*(?:#{1,6}[ \t]|[^\n]+\n[ \t]*(?:=+|-+)[ \t]*(?:\n|\Z))")


def _without_title_heading(body: str, title: str) -> str:
    """The body without an opening heading that repeats the title (`# Title` written under a
    front-matter title, common in posts written in Typora or Obsidian): the digest shows the
    title already, and the excerpt should not start with it again."""
    if not _OPENING_HEADING.match(body):
        return body
    heading = first_heading(body)
    if heading is None or heading.rest is None:
        return body
    same = "".join(heading.text.split()).casefold() == "".join(title.split()).casefold()
    return heading.rest if same else body


def _tags(value: object, generator: Generator | None) -> tuple[str, ...]:
    if generator == "jekyll" and isinstance(value, str):
        return tuple(dict.fromkeys(value.split()))  # Jekyll splits a tag string on whitespace
    return strings(value, "tags")
