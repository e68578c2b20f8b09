"""Read a folder of Markdown posts the way Hexo, Hugo and Jekyll read their own.

Knows nothing about email: it turns files into `Post` objects and reports, per file, anything it
had to skip, so one broken post never hides the others.

- Front matter: YAML, TOML or JSON (digest.sources.frontmatter); keys compare
  case-insensitively, as in Hugo.
- Which files are posts: Markdown files (`.md`, `.markdown`, `.mdown`) not hidden and not under a
  `_`-prefixed name (`_drafts/`, Hugo's `_index.md` section pages). A post in its own folder
  (`slug/index.md`: a Hugo page bundle, a folder-per-post Hexo or plain blog) is one post named
  after its folder; other Markdown files inside such a folder are the bundle's resources, not
  posts (except for Hexo, which renders every Markdown file under `_posts`). Jekyll only reads
  posts named `YYYY-MM-DD-title.md`; others are reported and skipped.
- Not new: `draft: true`, `published: false` (Jekyll, Hexo), a future `publishDate` and a past
  `expiryDate` (Hugo; honoured for every blog).
- Dates: front matter `date` (Hugo falls back to publishDate, lastmod), else the file name's date
  (not for Hugo, which does not read it); naive times are in the site's time zone.
- The URL: the post's own `url`/`permalink` front matter, else the permalink pattern filled with
  the generator's fields (digest.sources.fields).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from digest.errors import PostError, SourceError
from digest.excerpt.clean import clean
from digest.excerpt.markup import first_heading, summary_from, title_text
from digest.excerpt.tex import math_switch
from digest.links import is_safe_link, post_url
from digest.models import Post, Problem, SourceResult
from digest.sources.fields import (
    DATED_NAME,
    PostFacts,
    fields_for,
    jekyll_categories,
    plain_slug,
)
from digest.sources.frontmatter import FrontMatterError, split_front_matter
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

SUFFIXES = (".md", ".markdown", ".mdown")
# A long post with its code is 100-300 KB; beyond this a file is not a post to excerpt (and the
# Markdown parser's time grows with it). Files over the limit are reported and skipped.
MAX_POST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PostFile:
    """What one Markdown file gave: its post (None when it was skipped), the problems it
    produced (each a reason, reported against the file), and a digest of the text read (None
    when it could not be read), so that a cache can tell whether a file still holds it."""

    post: Post | None
    problems: tuple[str, ...] = ()
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class FileContext:
    """What decides a file's post besides its text and the folder's settings: its path
    (`relative`, its identity), the path its URL is made from (`content`: a translated Hugo
    file's name without the language) and the Hugo sections it sits in."""

    relative: str
    content: str
    sections: tuple[str, ...]


Parse = Callable[[str, FileContext], PostFile]
"""The folder's parser: a file's text (and context) to its PostFile; never raises."""

Reader = Callable[[Path, FileContext, Parse], PostFile]
"""Reads one file into a PostFile with the given parser (read_post_file, or a cache)."""


def read_folder(
    folder: Path,
    *,
    base_url: str,
    permalink: str,
    tz: ZoneInfo,
    result: SourceResult,
    generator: Generator | None = None,
    languages: tuple[str, ...] = (),
    language: str | None = None,
    reader: Reader | None = None,
) -> None:
    """Append every readable post under `folder` to `result`; report the unreadable ones.

    `languages` (Hugo's, the default first) name the suffixes of translated files
    (`post.zh.md`, `slug/index.zh.md`): only the files of `language` (default: the first) are
    read, an unsuffixed file being in the default language, and their URLs use the name
    without the suffix, as Hugo's do.

    Each file goes through `reader` (default: read_post_file, which reads and parses it); a
    cache (digest.sources.cache) may answer instead. What needs more than one file (an id used
    twice) is decided here, from the PostFiles, so it is the same whoever read them.
    """
    if not folder.is_dir():
        raise SourceError(f"{folder}: the posts folder does not exist.")
    sections = _sections(folder) if generator == "hugo" else frozenset()
    codes = tuple(code.lower() for code in languages)
    reading = (language or (codes[0] if codes else "")).lower()
    read = reader or read_post_file

    def parse(text: str, context: FileContext) -> PostFile:
        return parse_post_file(
            text,
            context,
            base_url=base_url,
            permalink=permalink,
            tz=tz,
            generator=generator,
            folder=folder.name,
        )

    ids: dict[str, Path] = {}
    for file in sorted(_post_files(folder, generator, codes, reading)):
        relative = PurePosixPath(file.relative_to(folder).as_posix())
        content = relative.with_name(language_split(relative.name, codes)[0])
        if generator == "jekyll" and not DATED_NAME.match(relative.name):
            reason = "not a post: Jekyll reads only posts named YYYY-MM-DD-title.md; skipped"
            result.problems.append(Problem(str(file), reason))
            continue
        context = FileContext(
            relative.as_posix(), content.as_posix(), _sections_of(relative, sections)
        )
        outcome = read(file, context, parse)
        post = outcome.post
        if post is None:
            result.problems.extend(Problem(str(file), reason) for reason in outcome.problems)
            continue
        if post.id in ids:
            result.problems.append(
                Problem(str(file), f"id {post.id!r} is already used by {ids[post.id]}; skipped")
            )
            continue
        ids[post.id] = file
        result.posts.append(post)
        result.problems.extend(Problem(str(file), reason) for reason in outcome.problems)


def read_post_file(file: Path, context: FileContext, parse: Parse) -> PostFile:
    """Read one file and parse it: the uncached Reader."""
    try:
        text = read_text(file)
    except PostError as exc:
        return PostFile(None, (exc.message,))
    return parse(text, context)


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


def text_digest(text: str) -> str:
    """A short digest of a post's text (BLAKE2b, 128 bits): equal digests, equal text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def language_split(name: str, languages: tuple[str, ...]) -> tuple[str, str | None]:
    """(`post.md`, `zh`) for `post.zh.md` when `zh` is one of `languages`; else (name, None)."""
    parts = name.rsplit(".", 2)
    if len(parts) == 3 and parts[0] and parts[1].lower() in languages:
        return f"{parts[0]}.{parts[2]}", parts[1].lower()
    return name, None


def _post_files(
    folder: Path, generator: Generator | None, languages: tuple[str, ...], reading: str
) -> list[Path]:
    files = [
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and (path.is_file() or (path.is_symlink() and not path.exists()))  # dangling: reported
        and not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    ]
    if generator == "hexo":
        return files
    default = languages[0] if languages else ""

    def stem(path: Path) -> str:
        return Path(language_split(path.name, languages)[0]).stem

    def mine(path: Path) -> bool:
        return (language_split(path.name, languages)[1] or default) == reading

    bundles = {f.parent for f in files if stem(f) == "index" and f.parent != folder}
    if not bundles and not languages and not reading:  # every file is `mine`, none bundled
        return files
    return [
        f
        for f in files
        if mine(f) and (stem(f) == "index" or not any(b in f.parents for b in bundles))
    ]


def _sections(folder: Path) -> frozenset[PurePosixPath]:
    """Hugo's nested sections: folders below the posts folder that hold an `_index.md`."""
    return frozenset(
        PurePosixPath(index.parent.relative_to(folder).as_posix())
        for index in folder.rglob("_index.*")
        if index.parent != folder and index.suffix.lower() in SUFFIXES
    )


def _sections_of(relative: PurePosixPath, sections: frozenset[PurePosixPath]) -> tuple[str, ...]:
    if not sections:  # every blog but a Hugo one with nested sections: no path work per post
        return ()
    parents = reversed(relative.parents[:-1])  # outermost first, without "."
    return tuple(p.name for p in parents if p in sections)


def read_text(file: Path) -> str:
    """A post file's text, control characters removed; PostError when it cannot be read.
    Never more than MAX_POST_BYTES are read, whatever the file (or a device a symlink points
    at) holds."""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_POST_BYTES + 1)
        if len(data) > MAX_POST_BYTES:
            size = MAX_POST_BYTES // (1024 * 1024)
            raise PostError(f"the file is larger than {size} MB; skipped")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PostError("the file is not valid UTF-8") from None
    except OSError as exc:
        raise PostError(f"cannot read the file: {exc.strerror}") from None
    return clean(text)  # a pasted U+0008 must not fail the front matter or the render


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
