"""The parsed-post cache: a folder of Markdown posts is parsed once, not on every command.

Parsing (front matter, then the excerpt through markdown-it) is nearly all the time `digest
posts` spends on a big blog; a warm run parses nothing. Per Markdown source, one JSON file
`<cache_dir>/posts/<key>.json` holds, for every post file, what reading it gave (the Post, the
problems it produced, which are reported again exactly as on a cold run) and its excerpt once
one was made: a read parses every post's front matter, but excerpts are made only for the
posts a command shows (digest.sources.read.Reading.excerpts), and each one made is kept here.

When an entry is used:
- Only while the file's path, size, mtime_ns, ctime_ns and inode are those it was made with,
  and so is what else decides the post (its URL path, its Hugo sections): any change is a
  miss and the file is read again. A deleted file's entry is dropped; an added file is read.
- The file's name, `<key>`, hashes the settings and the code: exactly the settings a post
  and its excerpt depend on, the source's `FolderSource` (its folder, the site's base URL
  and time zone, the permalink, the generator, the languages) and the `ExcerptSettings`
  (length, labels, math), and the code (digest's version, the size and mtime of each of its
  modules, and of the parsers' own modules: PyYAML, markdown-it-py, mdit-py-plugins, regex,
  found without importing them, so that a warm run loads none of them). Changing any of them
  starts another cache file; changing any other setting (the subject, SMTP, the web, ...) does
  not. A new setting that decides a post is a new field of one of those two frozen
  dataclasses, so it cannot be left out.
- Other content with the same size and times does not come from editing (a write moves the
  ctime, which no tool can set back) except within a file system's timestamp granularity.
  As in Git's racy-index check, an entry made less than RACY_NS after its file's mtime is
  trusted only after reading the file again and comparing a digest of its text. What remains
  (a clock set back, a file system without a real ctime) is the known limit of a cache that
  goes by file times: `digest posts --refresh` parses everything again.

Why a JSON file and not the database or pickle: the cache must not depend on the database's
schema, JSON cannot run code however it was planted (every value is type-checked on load,
anything unexpected is a miss), and one file per source written to a temporary name and then
renamed (`os.replace`, atomic) means a reader sees a whole old or a whole new file, never a
mixture: two processes at once cost at worst one's entries, never a crash. A damaged file is
rebuilt with one warning; a cache folder that cannot be written leaves the cache read-only
(with one warning when there was something to write).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.codestamp import code_stamp
from digest.errors import DigestError, PostError
from digest.excerpt.settings import ExcerptSettings
from digest.models import Post
from digest.sources.markdown import (
    FileContext,
    Parse,
    PostFile,
    read_post_file,
    read_text,
    text_digest,
)
from digest.sources.settings import FolderSource, SourceSettings

log = logging.getLogger("digest.sources.cache")

FORMAT = 1  # of the file; a file of another format is rebuilt silently
RACY_NS = 2_000_000_000  # coarser than any common file system's timestamps (FAT: 2 s)
UNUSED_DAYS = 30  # cache files of settings not used for this long are removed
Stamp = list[int]  # size, mtime_ns, ctime_ns, inode


def cache_key(source: FolderSource, excerpt: ExcerptSettings) -> str:
    """The name of the source's cache file: a hash of what decides its posts (module doc)."""
    described = {
        "format": FORMAT,
        "code": code_version(),
        "source": asdict(source),
        "excerpt": asdict(excerpt),
    }
    text = json.dumps(described, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# The libraries whose behaviour decides a post or its excerpt.
PARSERS = ("yaml", "markdown_it", "mdit_py_plugins", "regex")


def code_version() -> str:
    """The stamp of digest's code and of the parsers' (digest.codestamp): a new release, an
    upgraded parser or an edited module (a development checkout) each make the old entries
    unusable."""
    return code_stamp(PARSERS)


def cache_file(settings: SourceSettings, source: FolderSource) -> Path:
    return settings.cache_dir / "posts" / f"{cache_key(source, settings.excerpt)}.json"


def forget(settings: SourceSettings) -> list[Path]:
    """Remove the cache files of the configuration's Markdown sources (`digest posts
    --refresh`), so that the next read parses every post; return the files removed.
    Raises DigestError when one cannot be removed: a refresh must not quietly use it."""
    removed = []
    for source in settings.sources:
        if isinstance(source, FolderSource):
            path = cache_file(settings, source)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise DigestError(
                    f"cannot remove the post cache {path}: {exc.strerror or exc}."
                ) from None
            removed.append(path)
    return removed


class PostCache:
    """One source's cache: `read` is the folder's Reader (digest.sources.markdown), `keep`
    adds a post's excerpt once one is made, `save` writes what changed. `excerpts` has the
    excerpt of every post read through it that has one, and `hits`/`misses` count the files
    answered from the cache and the files parsed."""

    def __init__(self, path: Path, excerpt: ExcerptSettings) -> None:
        self.path = path
        self.excerpt = excerpt
        self.excerpts: dict[Post, str] = {}
        self._files: dict[Post, str] = {}  # each post read: the file (its relative path)
        self.hits = 0
        self.misses = 0
        self._old = self._load()
        self._new: dict[str, dict[str, Any]] = {}
        self._changed = False

    @classmethod
    def open(cls, settings: SourceSettings, source: FolderSource) -> PostCache:
        return cls(cache_file(settings, source), settings.excerpt)

    def read(self, file: Path, context: FileContext, parse: Parse) -> PostFile:
        """The file's PostFile from the cache when it is unchanged, else read and parsed."""
        checked = time.time_ns()
        try:
            stat = os.stat(file)
        except OSError:
            self.misses += 1
            return read_post_file(file, context, parse)  # a dangling link: reported, not kept
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        entry = self._old.get(context.relative)
        cached = _cached(entry, stamp, context) if entry is not None else None
        text: str | None = None
        if entry is not None and cached is not None:
            if not _racy(entry["checked"], stat.st_mtime_ns):
                return self._hit(context, entry, cached)
            text = _text(file)
            if text is not None and text_digest(text) == cached.digest:
                if not _racy(checked, stat.st_mtime_ns):
                    entry = {**entry, "checked": checked}  # trusted from now on
                    self._changed = True
                return self._hit(context, entry, cached)
        self.misses += 1
        self._changed = True
        outcome = read_post_file(file, context, parse) if text is None else parse(text, context)
        self._new[context.relative] = _encode(outcome, stamp, checked, context)
        if outcome.post is not None:
            self._files[outcome.post] = context.relative
        return outcome

    def _hit(self, context: FileContext, entry: dict[str, Any], outcome: PostFile) -> PostFile:
        self.hits += 1
        self._new[context.relative] = entry
        if outcome.post is not None:
            self._files[outcome.post] = context.relative
            if entry["excerpt"] is not None:
                self.excerpts[outcome.post] = entry["excerpt"]
        return outcome

    def keep(self, post: Post, excerpt: str) -> None:
        """Keep `excerpt`, made from `post` (a post this cache read) with this cache's excerpt
        settings, with the post's entry: the next read has it without parsing the body."""
        relative = self._files.get(post)
        if relative is None or relative not in self._new:
            return
        entry = self._new[relative]
        if entry.get("excerpt") == excerpt:
            return
        self._new[relative] = {**entry, "excerpt": excerpt}
        self.excerpts[post] = excerpt
        self._changed = True

    def save(self) -> None:
        """Write the entries of this run (dropping files no longer there) when anything changed;
        a cache that cannot be written is only a slower next run."""
        log.debug("post cache %s: %d files unchanged, %d read", self.path, self.hits, self.misses)
        if not self._changed and self._new.keys() == self._old.keys():
            _mark_used(self.path)
            return
        data = {"format": FORMAT, "files": self._new}
        # surrogatepass: a front-matter escape ("\ud800") can put a lone surrogate in a post
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        temporary = self.path.with_name(
            f".{self.path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # a name of its own (O_EXCL), the umask's permissions, then renamed over the old
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(handle, "wb") as out:
                out.write(text.encode("utf-8", "surrogatepass"))
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            log.warning(
                "cannot write the post cache %s: %s; posts are parsed again next time",
                self.path,
                exc.strerror or exc,
            )
            return
        _prune(self.path.parent, keep=self.path)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("cannot read the post cache %s: %s", self.path, exc.strerror or exc)
            return {}
        try:
            data = json.loads(raw.decode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and data.get("format") != FORMAT:
            return {}  # written by another version: not damaged, just not ours
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict) or not all(isinstance(e, dict) for e in files.values()):
            log.warning("the post cache %s is damaged; it is rebuilt", self.path)
            return {}
        return files


def _text(file: Path) -> str | None:
    try:
        return read_text(file)
    except PostError:
        return None


def _racy(checked: int, mtime_ns: int) -> bool:
    """Whether the file may have changed again within its mtime's tick after it was read."""
    return checked - mtime_ns < RACY_NS


def _context(context: FileContext) -> list[Any]:
    return [context.content, list(context.sections)]


def _encode(outcome: PostFile, stamp: Stamp, checked: int, context: FileContext) -> dict[str, Any]:
    return {
        "stamp": stamp,
        "checked": checked,
        "context": _context(context),
        "digest": outcome.digest,
        "problems": list(outcome.problems),
        "post": None if outcome.post is None else _encode_post(outcome.post),
        "excerpt": None,  # made when a command shows the post (PostCache.keep)
    }


def _cached(entry: dict[str, Any], stamp: Stamp, context: FileContext) -> PostFile | None:
    """The entry's PostFile if it is for this very file, and well-formed; else None."""
    if entry.get("stamp") != stamp or entry.get("context") != _context(context):
        return None
    try:
        checked, digest, problems = entry["checked"], entry["digest"], entry["problems"]
        if type(checked) is not int or not (digest is None or isinstance(digest, str)):
            return None
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            return None
        post = None if entry["post"] is None else _decode_post(entry["post"])
        excerpt = entry["excerpt"]
        if not (excerpt is None or (post is not None and isinstance(excerpt, str))):
            return None
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return PostFile(post, tuple(problems), digest)


# -- Post <-> JSON, derived from the dataclass: a new field is cached without a change here ----

Decoder = Callable[[object], Any]


def _encode_post(post: Post) -> dict[str, Any]:
    return {name: _encode_value(getattr(post, name)) for name in _DECODERS}


def _encode_value(value: object) -> object:
    if isinstance(value, datetime):
        # A ZoneInfo by name, with the wall time and fold: the very same datetime comes back,
        # even a time in a DST gap (2:30 on a spring-forward night), which an instant would not
        if isinstance(value.tzinfo, ZoneInfo):
            return [value.replace(tzinfo=None).isoformat(), value.tzinfo.key, value.fold]
        return [value.isoformat(), None, value.fold]
    if isinstance(value, tuple):
        return list(value)
    return value


def _decode_post(data: object) -> Post:
    """The Post of `_encode_post`; ValueError, TypeError or KeyError for anything else."""
    if not isinstance(data, dict) or data.keys() != _DECODERS.keys():
        raise ValueError("not a post")
    return Post(**{name: decode(data[name]) for name, decode in _DECODERS.items()})


def _decoder(hint: Any) -> Decoder:
    """A checking decoder for a field of type `hint` (and None when it is optional)."""
    options = set(typing.get_args(hint)) if typing.get_origin(hint) is types.UnionType else {hint}
    optional = type(None) in options
    options.discard(type(None))
    (kind,) = options  # one type besides None: anything else needs a decoder written here
    if kind in (str, bool):
        plain: Decoder = lambda value: _checked(value, kind)  # noqa: E731
    elif kind is datetime:
        plain = _decode_datetime
    elif typing.get_origin(kind) is tuple and typing.get_args(kind) == (str, ...):
        plain = lambda value: tuple(_checked(item, str) for item in _checked(value, list))  # noqa: E731
    elif typing.get_origin(kind) is typing.Literal:
        plain = partial(_one_of, typing.get_args(kind))
    else:
        raise TypeError(f"no cache decoder for Post fields of type {hint}")
    return (lambda value: None if value is None else plain(value)) if optional else plain


def _decode_datetime(value: object) -> datetime:
    moment, zone, fold = _checked(value, list)
    if fold not in (0, 1) or type(fold) is not int:
        raise ValueError(f"{fold!r} is not a fold")
    decoded = datetime.fromisoformat(_checked(moment, str)).replace(fold=fold)
    if zone is None:
        return decoded
    if decoded.tzinfo is not None:
        raise ValueError(f"{moment!r} has an offset and a zone")
    return decoded.replace(tzinfo=ZoneInfo(_checked(zone, str)))


def _one_of(allowed: tuple[object, ...], value: object) -> object:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {allowed}")
    return value


def _checked(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


_DECODERS = {f.name: _decoder(typing.get_type_hints(Post)[f.name]) for f in fields(Post)}


def _mark_used(path: Path) -> None:
    """Keep an unchanged cache file's mtime within a day of its last use, so that _prune
    (which goes by mtime) removes only the files of settings no longer used."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > 86400:
            os.utime(path)


def _prune(folder: Path, keep: Path) -> None:
    """Remove other settings' cache files unused for UNUSED_DAYS, and temporary files left by
    a process that died while writing (older than an hour)."""
    now = time.time()
    try:
        candidates = list(folder.iterdir())
    except OSError:
        return
    for path in candidates:
        if path == keep:
            continue
        limit = 3600 if path.name.endswith(".tmp") else UNUSED_DAYS * 86400
        try:
            if path.suffix in (".json", ".tmp") and now - path.stat().st_mtime > limit:
                path.unlink()
        except OSError:
            pass
