"""Read posts from an RSS 0.9x/1.0/2.0, Atom or JSON Feed, from a file or over HTTP.

feedparser reads the XML dialects; JSON Feed, which feedparser 6 does not read, is a small
documented format parsed here. Entry HTML is untrusted and is sanitised with nh3 (an
allow-list sanitiser) before it leaves this module. Downloads use a timeout and a conditional
GET (ETag / Last-Modified) so that an unchanged feed is not downloaded again.
"""

from __future__ import annotations

import calendar
import hashlib
import http.client
import io
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import nh3

from digest import __version__
from digest.errors import SourceError
from digest.excerpt.markup import html_to_text
from digest.links import is_safe_link
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
_WEB_SCHEMES = frozenset({"http", "https"})
# What a post's URL may be: a web page, or (for an entry without a link) its id as a URN/tag URI.
_POST_URL_SCHEMES = _WEB_SCHEMES | {"", "urn", "tag"}
_TEXT_TYPES = frozenset({"text/plain", "text"})


def sanitise(html: str, base: str = "") -> str:
    """Untrusted feed HTML reduced to an allow-list of tags and attributes (no script, no on*).

    Relative links and image sources are made absolute against `base` when it is an http(s)
    URL (a newsletter is read far from the site, where a relative link leads nowhere).
    """
    options: dict[str, Any] = {
        "tags": nh3.ALLOWED_TAGS | _EXTRA_TAGS,
        "attributes": _ALLOWED_ATTRIBUTES,
        "url_schemes": {"http", "https", "mailto"},
        "link_rel": "noopener noreferrer",
    }
    if _is_web_url(base):
        try:
            return str(nh3.clean(html, url_relative=("rewrite_with_base", base), **options))
        except ValueError:
            pass  # a base nh3 cannot parse: relative links are kept as they are
    return str(nh3.clean(html, **options))


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in _WEB_SCHEMES and bool(parts.netloc)


def _scheme(url: str) -> str:
    """The URL's scheme as a browser sees it (urlsplit drops tabs/newlines, as browsers do)."""
    return urlsplit(url.strip()).scheme.lower()


def _text_to_html(text: str) -> str:
    """Plain text as HTML: escaped, one paragraph per blank-line-separated block."""
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{escape(block)}</p>" for block in blocks if block)


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    content_type: str
    from_cache: bool


def read_feed(
    url: str, *, root: Path, cache_dir: Path, timeout: float, result: SourceResult
) -> None:
    """Append the feed's entries to `result`; raises SourceError when the feed is unusable."""
    if url.lower().startswith(("http://", "https://")):
        download = fetch(url, cache_dir=cache_dir, timeout=timeout)
        where = url
    else:
        path = root / url.removeprefix("file://")
        download = Download(_read_local(path), "", False)
        where = str(path)
    posts, problems = parse_feed(download.body, where=where, content_type=download.content_type)
    result.posts.extend(posts)
    result.problems.extend(problems)


def _read_local(path: Path) -> bytes:
    """A local feed file, held to the same MAX_BYTES as a download (a FIFO or a device that
    never ends is cut there too)."""
    if path.exists() and not path.is_file():  # a FIFO would block, a device never end
        raise SourceError(f"{path}: cannot read the feed: not a regular file.")
    try:
        with path.open("rb") as handle:
            body = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError(f"{path}: cannot read the feed: {reason}.") from None
    if len(body) > MAX_BYTES:
        raise SourceError(f"{path}: the feed is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    return body


def fetch(url: str, *, cache_dir: Path, timeout: float) -> Download:
    """GET with If-None-Match / If-Modified-Since from the last download; 304 reuses it."""
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    meta_file, body_file = cache_dir / f"{key}.json", cache_dir / f"{key}.body"
    meta: dict[str, str] = {}
    if meta_file.exists() and body_file.exists():
        try:
            loaded = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = None  # a damaged cache only costs a full download
        if isinstance(loaded, dict):
            meta = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str)}
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    except ValueError as exc:  # e.g. an unclosed IPv6 literal
        raise SourceError(f"{url}: not a usable URL ({exc}).") from None
    if meta.get("etag"):
        request.add_header("If-None-Match", meta["etag"])
    if meta.get("last_modified"):
        request.add_header("If-Modified-Since", meta["last_modified"])
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            headers = response.headers
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and meta:
            try:
                return Download(body_file.read_bytes(), meta.get("content_type", ""), True)
            except OSError as cache_exc:
                why = cache_exc.strerror or type(cache_exc).__name__
                raise SourceError(f"{url}: the cached copy is unreadable: {why}.") from None
        raise SourceError(f"{url}: the server answered {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:  # TimeoutError is an OSError
        cause: object = getattr(exc, "reason", None) or exc
        text = str(cause) or type(cause).__name__
        raise SourceError(f"{url}: cannot download the feed: {text}.") from None
    except http.client.HTTPException as exc:  # not HTTP at all, or a truncated response
        text = _first_line(exc) if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{url}: the server's answer is not valid HTTP ({text}).") from None
    except ValueError as exc:  # a URL urllib cannot use, e.g. a bad port or IPv6 literal
        raise SourceError(f"{url}: not a usable URL ({exc}).") from None
    if len(body) > MAX_BYTES:
        raise SourceError(f"{url}: the feed is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    announced = headers.get("Content-Length", "").strip()
    if announced.isdigit() and len(body) < int(announced):
        # http.client returns a short read silently; caching it would keep a cut feed for good.
        raise SourceError(f"{url}: the download was cut short ({len(body)} of {announced} bytes).")
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


def parse_feed(
    data: bytes, *, where: str, content_type: str = ""
) -> tuple[list[Post], list[Problem]]:
    """Entries of an XML or JSON feed as posts, with a problem for each entry that was skipped."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{") or ("json" in content_type and not stripped.startswith(b"<")):
        return _parse_json_feed(stripped, where)
    # A stream, never the bytes themselves: feedparser opens bytes that name a file as that file
    # (a downloaded body of "/etc/passwd" would read it, "/dev/zero" would never end).
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception")
        detail = f" ({_first_line(reason)})" if reason else ""
        raise SourceError(f"{where}: not an RSS, Atom or JSON feed{detail}.")
    base = _base(where, str(parsed.feed.get("link") or "").strip())
    posts: list[Post] = []
    problems: list[Problem] = []
    for number, entry in enumerate(parsed.entries, start=1):
        try:
            post = _xml_entry(entry, base, where)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(Problem(f"{where}, entry {number}", _reason(exc, "entry")))
            continue
        posts.append(_safe_cover(post, f"{where}, entry {number}", problems))
    return posts, problems


def _safe_cover(post: Post, where: str, problems: list[Problem]) -> Post:
    """The post, without a cover that is not an http(s) URL (javascript:, data:), warned of."""
    if post.cover is None or is_safe_link(post.cover):
        return post
    reason = f"cover {post.cover[:80]!r} is not an http(s) URL; the post has no cover"
    problems.append(Problem(where, reason))
    return replace(post, cover=None)


def _base(where: str, site: str) -> str:
    """What relative links in a feed are relative to: its site link, itself read as relative
    to the feed's URL; a local file has no URL, so only an absolute site link helps there."""
    document = where if _is_web_url(where) else ""
    try:
        return urljoin(document, site) if site else document
    except ValueError:
        return document


def _reason(exc: Exception, noun: str) -> str:
    """A skipped entry's reason: our own ValueErrors say it; anything else is a malformed entry."""
    if type(exc) is ValueError and str(exc).endswith("skipped"):
        return str(exc)
    return f"the {noun} is malformed ({_first_line(exc)}); skipped"


def _first_line(value: object) -> str:
    return str(value).strip().splitlines()[0] if str(value).strip() else type(value).__name__


def _xml_entry(entry: Any, base: str, where: str) -> Post:
    link = _xml_link(entry, base)
    identity = str(entry.get("id") or "").strip() or link
    if not identity:
        raise ValueError("the entry has neither an id (guid) nor a link; skipped")
    url = link or identity
    if _scheme(url) not in _POST_URL_SCHEMES:
        raise ValueError(f"its link {url!r} is not an http(s) URL; skipped")
    title = _xml_title(entry) or link or identity
    contents = entry.get("content") or []
    content = contents[0] if contents else {}
    summary = entry.get("summary_detail") or {}
    # feedparser copies the content into an absent summary: that copy is not an author summary.
    if not content.get("value"):
        content, summary = summary, {}
    elif summary.get("value") == content.get("value"):
        summary = {}
    page = link if _is_web_url(link) else base
    author_summary = _detail_html(summary, page, base)
    published = entry.get("published_parsed")
    # feedparser answers `updated_parsed` with the published date when the feed has none.
    # So read the entry as the plain dict it is (FeedParserDict.get would apply that fallback).
    updated = dict.get(entry, "updated_parsed")
    return Post(
        id=identity,
        title=title,
        url=url,
        date=_struct_time(published or updated),
        updated=_struct_time(updated),
        body=_detail_html(content, page, base),
        body_format="html",
        summary=author_summary or None,
        categories=_xml_categories(entry),
        cover=_xml_cover(entry, page),
        cover_alt=title,
        source=where,
    )


def _xml_link(entry: Any, base: str) -> str:
    """The entry's link made absolute; a link feedparser took from the id must be a real URL."""
    link = str(entry.get("link") or "").strip()
    if not link:
        return ""
    if entry.get("guidislink") and link == str(entry.get("id") or "").strip():
        # A guid/id without a link element: only a permalink guid that is an absolute URL is a
        # link (an Atom id such as "post-1" is not an address relative to the site).
        return link if _is_web_url(link) else ""
    return urljoin(base, link)


def _xml_title(entry: Any) -> str:
    """Titles are shown as text: markup in an HTML title is dropped, a text title kept whole."""
    detail = entry.get("title_detail") or {}
    title = str(entry.get("title") or "")
    is_html = detail.get("type") in ("text/html", "application/xhtml+xml")
    return _plain_title(title, is_html=is_html)


def _detail_html(detail: Any, page: str, base: str) -> str:
    """Sanitised HTML of a feedparser content/summary; plain text (by its type) is escaped.

    Relative URLs are resolved against the xml:base in force, else the entry's own page.
    """
    value = str(detail.get("value") or "")
    if not value.strip():
        return ""
    if str(detail.get("type") or "") in _TEXT_TYPES:
        return _text_to_html(value)
    declared = str(detail.get("base") or "")
    try:
        html_base = urljoin(base, declared) if declared else page
    except ValueError:
        html_base = page
    return sanitise(value, html_base)


def _xml_categories(entry: Any) -> tuple[str, ...]:
    """Category names from the entry's tags: an Atom label (for display) wins over its term."""
    names = (
        str(tag.get("label") or tag.get("term") or "").strip() for tag in entry.get("tags") or []
    )
    return tuple(dict.fromkeys(name for name in names if name))


def _xml_cover(entry: Any, base: str) -> str | None:
    """media:thumbnail, else an image media:content, else an image enclosure (http(s) only)."""
    for item in entry.get("media_thumbnail") or []:
        if item.get("url"):
            return _cover_url(base, str(item["url"]))
    for item in entry.get("media_content") or []:
        kind = str(item.get("type") or "")
        medium = str(item.get("medium") or "")
        if item.get("url") and (
            kind.startswith("image/") or (not kind and medium in ("", "image"))
        ):
            return _cover_url(base, str(item["url"]))
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return _cover_url(base, str(link.get("href") or ""))
    return None


def _cover_url(base: str, url: str) -> str | None:
    """A cover image URL made absolute (one that is not http(s) is dropped by _safe_cover)."""
    if not url.strip():
        return None
    try:
        return urljoin(base, url.strip())
    except ValueError:  # e.g. a broken IPv6 literal: no cover, but the entry itself is fine
        return None


def _plain_title(title: str, *, is_html: bool) -> str:
    """A title as one line of text: HTML markup dropped, whitespace (CR/LF too) collapsed."""
    text = html_to_text(title, tex_in_text=False).text if is_html and "<" in title else title
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
    except RecursionError:
        raise SourceError(f"{where}: not a valid JSON feed (nested too deeply).") from None
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise SourceError(f"{where}: not an RSS, Atom or JSON feed (no JSON Feed version).")
    items = document.get("items")
    if not isinstance(items, list):
        raise SourceError(f"{where}: the JSON feed has no items list.")
    home = str(document.get("home_page_url") or document.get("feed_url") or "").strip()
    base = _base(where, home)
    posts: list[Post] = []
    problems: list[Problem] = []
    for number, item in enumerate(items, start=1):
        try:
            post = _json_item(item, base, where)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(Problem(f"{where}, item {number}", _reason(exc, "item")))
            continue
        posts.append(_safe_cover(post, f"{where}, item {number}", problems))
    return posts, problems


_JSON_STRING_FIELDS = (
    "url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
)


def _json_item(item: object, base: str, where: str) -> Post:
    if not isinstance(item, dict):
        raise ValueError("the item is not an object; skipped")
    for key in _JSON_STRING_FIELDS:
        if item.get(key) is not None and not isinstance(item[key], str):
            raise ValueError(f"its {key!r} is not a string; skipped")
    raw_id = item.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
        raise ValueError("its 'id' is not a string; skipped")
    link = urljoin(base, item["url"].strip()) if (item.get("url") or "").strip() else ""
    identity = str(raw_id if raw_id is not None else "").strip() or link
    if not identity:
        raise ValueError("the item has neither an id nor a url; skipped")
    url = link or identity
    if _scheme(url) not in _POST_URL_SCHEMES:
        raise ValueError(f"its url {url!r} is not an http(s) URL; skipped")
    title = _plain_title(item.get("title") or "", is_html=False) or link or identity
    html = item.get("content_html") or ""
    text = item.get("content_text") or ""
    summary = (item.get("summary") or "").strip()
    page = link if _is_web_url(link) else base
    body = sanitise(html, page) if html.strip() else _text_to_html(text)
    tags = item.get("tags") or []
    names = (t.strip() for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
    image = item.get("image") or item.get("banner_image") or ""
    return Post(
        id=identity,
        title=title,
        url=url,
        date=_iso(item.get("date_published")),
        updated=_iso(item.get("date_modified")),
        body=body,
        body_format="html",
        summary=escape(summary) if summary else None,  # JSON Feed summaries are plain text
        categories=tuple(dict.fromkeys(name for name in names if name)),
        cover=_cover_url(base, image),
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
