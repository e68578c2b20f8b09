"""Read a folder of Markdown posts with YAML front matter (Hexo, Hugo and Jekyll style).

Knows nothing about email: it turns files into `Post` objects and reports, per file, anything it
had to skip, so one broken post never hides the others.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from digest.clean import clean
from digest.errors import PostError, SourceError
from digest.markup import first_heading, split_front_matter, summary_from
from digest.models import Post, Problem, SourceResult
from digest.urls import post_url

SUFFIXES = (".md", ".markdown", ".mdown")
_DATED_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[-_]")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def read_folder(
    folder: Path,
    *,
    base_url: str,
    permalink: str,
    tz: ZoneInfo,
    result: SourceResult,
) -> None:
    """Append every readable post under `folder` to `result`; report the unreadable ones."""
    if not folder.is_dir():
        raise SourceError(f"{folder}: the posts folder does not exist.")
    ids: dict[str, Path] = {}
    for file in sorted(_post_files(folder)):
        relative = file.relative_to(folder).as_posix()
        try:
            post = read_post(file, relative, base_url=base_url, permalink=permalink, tz=tz)
        except PostError as exc:
            result.problems.append(Problem(str(file), exc.message))
            continue
        if post.id in ids:
            result.problems.append(
                Problem(str(file), f"id {post.id!r} is already used by {ids[post.id]}; skipped")
            )
            continue
        ids[post.id] = file
        result.posts.append(post)


def _post_files(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.is_file()
        and not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    ]


def read_post(file: Path, relative: str, *, base_url: str, permalink: str, tz: ZoneInfo) -> Post:
    """Read one post; raises PostError with the reason when the file cannot be used."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PostError("the file is not valid UTF-8") from None
    except OSError as exc:
        raise PostError(f"cannot read the file: {exc.strerror}") from None
    text = clean(text)  # a pasted U+0008 must not fail the front matter or the render
    try:
        meta, body = split_front_matter(text)
    except ValueError as exc:
        raise PostError(f"the front matter is not valid YAML: {exc}") from None
    return post_from_front_matter(
        meta, body, relative, base_url=base_url, permalink=permalink, tz=tz
    )


def post_from_front_matter(
    meta: dict[str, Any],
    body: str,
    relative: str,
    *,
    base_url: str,
    permalink: str,
    tz: ZoneInfo,
) -> Post:
    stem = PurePosixPath(relative).stem
    named = _DATED_NAME.match(stem)
    post_date = _as_datetime(meta.get("date"), "date", tz)
    if post_date is None and named is not None:
        year, month, day = (int(g) for g in named.groups())
        try:
            post_date = datetime(year, month, day, tzinfo=tz)
        except ValueError:
            raise PostError(f"the file name's date {named.group(0)[:10]} is not a date") from None
    slug = str(meta.get("slug") or (stem[named.end() :] if named else stem))
    title = _title(meta, body, slug)
    categories = _strings(meta.get("categories", meta.get("category")), "categories")
    url = post_url(
        base_url,
        str(meta["url"]) if meta.get("url") else permalink,
        slug=slug,
        date=post_date,
        category=categories[0] if categories else "",
        path=str(PurePosixPath(relative).with_suffix("")),
        id=str(meta.get("id") or slug),
    )
    cover = meta.get("cover") or meta.get("image")
    return Post(
        id=str(meta["id"]) if meta.get("id") not in (None, "") else relative,
        title=title,
        url=url,
        date=post_date,
        updated=_as_datetime(meta.get("updated"), "updated", tz),
        body=body,
        summary=summary_from(meta),
        categories=categories,
        tags=_strings(meta.get("tags"), "tags"),
        cover=str(cover) if cover else None,
        cover_alt=str(meta.get("cover_alt") or title),
        draft=_as_bool(meta.get("draft"), "draft", default=False),
        newsletter=_as_bool(meta.get("newsletter"), "newsletter", default=True),
        source=relative,
    )


def _title(meta: dict[str, Any], body: str, fallback: str) -> str:
    title = meta.get("title")
    if title is not None and str(title).strip():
        return " ".join(str(title).split())
    heading = first_heading(body)
    return heading or fallback.replace("-", " ").replace("_", " ").strip() or fallback


def _as_datetime(value: object, key: str, tz: ZoneInfo) -> datetime | None:
    """Front-matter dates: YAML dates, datetimes or ISO-like strings; naive ones are site-local."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("/", "-"))
        except ValueError:
            raise PostError(
                f"{key} {value!r} is not a date such as 2026-01-11 or 2026-01-11 09:30"
            ) from None
    else:
        raise PostError(f"{key} {value!r} is not a date such as 2026-01-11")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _strings(value: object, key: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str | int | float):
        return (str(value).strip(),)
    if isinstance(value, list):
        flat: list[str] = []
        for item in value:
            flat.extend(_strings(item, key))
        return tuple(dict.fromkeys(s for s in flat if s))
    raise PostError(f"{key} must be a name or a list of names")


def _as_bool(value: object, key: str, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PostError(f"{key} must be true or false, not {value!r}")
