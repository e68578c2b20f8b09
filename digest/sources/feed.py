"""Read posts from an RSS 0.9x/1.0/2.0, Atom or JSON Feed, from a file or over HTTP.

feedparser reads the XML dialects; JSON Feed, which feedparser 6 does not read, is a small
documented format parsed here. Entry HTML is untrusted and is sanitised with nh3 (an
allow-list sanitiser) before it leaves this module. Downloads use a timeout and a conditional
GET (ETag / Last-Modified) so that an unchanged feed is not downloaded again.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import nh3

from digest import __version__
from digest.errors import SourceError
from digest.markup import html_to_text
from digest.models import Post, Problem, SourceResult

USER_AGENT = f"digest/{__version__} (+https://github.com/digest-newsletter/digest)"
MAX_BYTES = 20 * 1024 * 1024
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"class", "lang", "dir", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "math": {"display"},
}
_EXTRA_TAGS = {"math", "semantics", "annotation", "mrow", "mi", "mo", "mn", "msup", "msub", "mfrac"}


def sanitise(html: str) -> str:
    """Untrusted feed HTML reduced to an allow-list of tags and attributes (no script, no on*)."""
    return nh3.clean(
        html,
        tags=nh3.ALLOWED_TAGS | _EXTRA_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    content_type: str
    from_cache: bool


def read_feed(url: str, *, root: Path, cache_dir: Path, timeout: float, result: SourceResult) -> None:
    """Append the feed's entries to `result`; raises SourceError when the feed is unusable."""
    if url.startswith(("http://", "https://")):
        download = fetch(url, cache_dir=cache_dir, timeout=timeout)
        where = url
    else:
        path = root / url.removeprefix("file://")
        try:
            download = Download(path.read_bytes(), "", False)
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the feed: {exc.strerror}.") from None
        where = str(path)
    posts, problems = parse_feed(download.body, where=where, content_type=download.content_type)
    result.posts.extend(posts)
    result.problems.extend(problems)


def fetch(url: str, *, cache_dir: Path, timeout: float) -> Download:
    """GET with If-None-Match / If-Modified-Since from the last download; 304 reuses it."""
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    meta_file, body_file = cache_dir / f"{key}.json", cache_dir / f"{key}.body"
    meta: dict[str, str] = {}
    if meta_file.exists() and body_file.exists():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    if meta.get("etag"):
        request.add_header("If-None-Match", meta["etag"])
    if meta.get("last_modified"):
        request.add_header("If-Modified-Since", meta["last_modified"])
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and meta:
            return Download(body_file.read_bytes(), meta.get("content_type", ""), True)
        raise SourceError(f"{url}: the server answered {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{url}: cannot download the feed: {reason}.") from None
    if len(body) > MAX_BYTES:
        raise SourceError(f"{url}: the feed is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    content_type = headers.get("Content-Type", "")
    new_meta = {
        "etag": headers.get("ETag", ""),
        "last_modified": headers.get("Last-Modified", ""),
        "content_type": content_type,
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        body_file.write_bytes(body)
        meta_file.write_text(json.dumps(new_meta), encoding="utf-8")
    except OSError:
        pass  # a cache that cannot be written only costs a download next time
    return Download(body, content_type, False)


def parse_feed(data: bytes, *, where: str, content_type: str = "") -> tuple[list[Post], list[Problem]]:
    """Entries of an XML or JSON feed as posts, with a problem for each entry that was skipped."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if "json" in content_type or stripped.startswith(b"{"):
        return _parse_json_feed(stripped, where)
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        detail = f" ({_first_line(reason)})" if reason else ""
        raise SourceError(f"{where}: not an RSS, Atom or JSON feed{detail}.")
    base = str(parsed.feed.get("link") or (where if where.startswith("http") else ""))
    posts: list[Post] = []
    problems: list[Problem] = []
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            posts.append(_xml_entry(entry, base, where))
        except ValueError as exc:
            problems.append(Problem(f"{where}, entry {number}", str(exc)))
    return posts, problems


def _first_line(value: object) -> str:
    return str(value).strip().splitlines()[0] if str(value).strip() else type(value).__name__


def _xml_entry(entry: Any, base: str, where: str) -> Post:
    link = urljoin(base, str(entry.get("link") or "")) if entry.get("link") else ""
    identity = str(entry.get("id") or "") or link
    if not identity:
        raise ValueError("the entry has neither an id (guid) nor a link; skipped")
    title = _plain_title(str(entry.get("title") or "")) or link or identity
    contents = entry.get("content") or []
    content = str(contents[0].get("value", "")) if contents else ""
    summary = str(entry.get("summary") or "")
    body, author_summary = (content, summary if summary and summary != content else None)
    if not body:
        body, author_summary = summary, None
    date = _struct_time(entry.get("published_parsed") or entry.get("updated_parsed"))
    updated = _struct_time(entry.get("updated_parsed"))
    categories = tuple(
        dict.fromkeys(str(t.get("term")).strip() for t in entry.get("tags") or [] if t.get("term"))
    )
    return Post(
        id=identity,
        title=title,
        url=link or identity,
        date=date,
        updated=updated,
        body=sanitise(body),
        body_format="html",
        summary=sanitise(author_summary) if author_summary else None,
        categories=categories,
        cover=_xml_cover(entry, link or base),
        cover_alt=title,
        source=where,
    )


def _xml_cover(entry: Any, base: str) -> str | None:
    for key in ("media_thumbnail", "media_content"):
        for item in entry.get(key) or []:
            if item.get("url") and (key == "media_thumbnail" or "image" in str(item.get("type", "image"))):
                return urljoin(base, str(item["url"]))
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return urljoin(base, str(link.get("href")))
    return None


def _plain_title(title: str) -> str:
    """Titles are shown as text: markup in them is dropped, whitespace (CR/LF too) collapsed."""
    text = html_to_text(title, tex_in_text=False).text if "<" in title else title
    return " ".join(text.split())


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def _parse_json_feed(data: bytes, where: str) -> tuple[list[Post], list[Problem]]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{where}: not a valid JSON feed ({exc}).") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise SourceError(f"{where}: not an RSS, Atom or JSON feed (no JSON Feed version).")
    items = document.get("items")
    if not isinstance(items, list):
        raise SourceError(f"{where}: the JSON feed has no items list.")
    base = str(document.get("home_page_url") or document.get("feed_url") or "")
    posts: list[Post] = []
    problems: list[Problem] = []
    for number, item in enumerate(items, start=1):
        try:
            posts.append(_json_item(item, base, where))
        except ValueError as exc:
            problems.append(Problem(f"{where}, item {number}", str(exc)))
    return posts, problems


def _json_item(item: object, base: str, where: str) -> Post:
    if not isinstance(item, dict):
        raise ValueError("the item is not an object; skipped")
    link = urljoin(base, str(item["url"])) if item.get("url") else ""
    identity = str(item.get("id") or "") or link
    if not identity:
        raise ValueError("the item has neither an id nor a url; skipped")
    title = _plain_title(str(item.get("title") or "")) or link or identity
    html = str(item.get("content_html") or "")
    text = str(item.get("content_text") or "")
    summary = str(item.get("summary") or "") or None
    if html:
        body = sanitise(html)
    else:
        body = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
    tags = item.get("tags") or []
    return Post(
        id=identity,
        title=title,
        url=link or identity,
        date=_iso(item.get("date_published")),
        updated=_iso(item.get("date_modified")),
        body=body,
        body_format="html",
        summary=escape(summary) if summary else None,
        categories=tuple(str(t) for t in tags if str(t).strip()) if isinstance(tags, list) else (),
        cover=urljoin(base, str(item["image"])) if item.get("image") else None,
        cover_alt=title,
        source=where,
    )


def _iso(value: object) -> datetime | None:
    if not value:
        return None
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise ValueError(f"date {text!r} is not an RFC 3339 date; skipped") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
