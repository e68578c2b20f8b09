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
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from digest.errors import PostError, SourceError
from digest.excerpt.clean import clean
from digest.models import Post, Problem, SourceResult
from digest.sources.settings import Generator

SUFFIXES = (".md", ".markdown", ".mdown")
# A file name that starts with its date (Jekyll's posts, and any blog's `2026-11-01-slug.md`)
DATED_NAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-")
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
        # loaded when a file is parsed: a run the post cache answers never loads it
        from digest.sources.parse import parse_post_file

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
