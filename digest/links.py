"""Post URLs: the site's permalink pattern, and making feed links absolute.

A pattern is a path with fields in braces: `/posts/{slug}/`, `/{year}/{month}/{day}/{title}/`.
`{name:default}` uses `default` when the field is empty (Hexo's `default_category`), and
`{fm.KEY}` is the post's own front-matter value KEY (Hexo plugins such as hexo-abbrlink add
their own permalink keys). What each field holds for a Hexo, Hugo or Jekyll blog is that
generator's own rule (digest/sources/fields.py, docs/blogs.md).
"""

from __future__ import annotations

import html
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import quote, urljoin

# The only schemes a link in an email or a page may have; anything else (javascript:, data:,
# vbscript:, file:, blob:, a made-up one) is dropped where it is read, with a warning.
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# What browsers ignore in a URL: leading and trailing C0 controls and spaces, and every tab
# and newline inside it (WHATWG URL), so "java\tscript:" is "javascript:".
_IGNORED_EDGES = "".join(chr(c) for c in range(0x21))
_IGNORED_INSIDE = re.compile("[\t\n\r]")
_EMPTY_SEGMENTS = re.compile(r"(?<!:)/{2,}")
_FIELD = re.compile(r"\{(?P<name>[a-z][a-z0-9_]*|fm\.[A-Za-z0-9_.-]+)(?::(?P<default>[^{}]*))?\}")
# RFC 3986 path characters stay as they are; everything else (spaces, CJK) is percent-encoded.
_PATH_SAFE = "/!$&'()*+,;=:@~"

PERMALINK_FIELDS = frozenset(
    {
        # every blog
        "slug",
        "title",
        "name",
        "path",
        "dir",
        "id",
        "category",
        "categories",
        "year",
        "month",
        "day",
        "i_month",
        "i_day",
        "hour",
        "minute",
        "second",
        "short_year",
        "y_day",
        "monthname",
        "short_month",
        # Hexo
        "post_title",
        "hash",
        "abbrlink",
        "abbrlink_hex",
        "abbrlink32",
        "abbrlink32_hex",
        # Hugo
        "filename",
        "contentbasename",
        "slugorfilename",
        "slugorcontentbasename",
        "section",
        "sections",
        # Jekyll
        "slugified_categories",
    }
)


def check_permalink(pattern: str) -> str:
    """Reject a permalink pattern that names a field we cannot fill (a config error)."""
    rest = _FIELD.sub("", pattern)
    if "{" in rest or "}" in rest:
        raise ValueError(f"{pattern!r} is not a valid pattern: unmatched or malformed braces")
    for match in _FIELD.finditer(pattern):
        name = match.group("name")
        if not name.startswith("fm.") and name not in PERMALINK_FIELDS:
            known = ", ".join(f"{{{n}}}" for n in sorted(PERMALINK_FIELDS))
            raise ValueError(f"{pattern!r} uses {{{name}}}; known fields are {known}, {{fm.KEY}}")
    return pattern


def fill_permalink(pattern: str, fields: Mapping[str, str], meta: Mapping[str, object]) -> str:
    """The pattern with its fields filled in and percent-encoded; empty segments collapse."""

    def value(match: re.Match[str]) -> str:
        name = match.group("name")
        if name.startswith("fm."):
            raw = meta.get(name[3:])
            text = "" if raw is None else str(raw)
        else:
            text = fields.get(name, "")
        return quote(text or match.group("default") or "", safe=_PATH_SAFE)

    return _EMPTY_SEGMENTS.sub("/", _FIELD.sub(value, pattern))


def post_url(
    base_url: str, pattern: str, fields: Mapping[str, str], meta: Mapping[str, object]
) -> str:
    """Fill the permalink pattern and make it absolute against the site's base URL."""
    return site_url(base_url, fill_permalink(pattern, fields, meta))


def link_scheme(url: str) -> str:
    """The scheme of `url` as a browser reads it, lower-cased ("" for a relative link).

    Character references are decoded first (`javascript&#58;` in an attribute is a colon to
    the browser), then what browsers ignore is removed; so case, whitespace, tab and entity
    tricks all come out as the scheme they hide.
    """
    text = _IGNORED_INSIDE.sub("", html.unescape(url).strip(_IGNORED_EDGES))
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else ""


def is_safe_link(url: str) -> bool:
    """True for an http, https or mailto URL and for a relative link (made absolute against
    the site, whose base URL is http(s)); False for every other scheme."""
    return link_scheme(url) in SAFE_SCHEMES | {""}


def site_url(base_url: str, link: str) -> str:
    """A site link made absolute: `/x` is relative to the site's base URL, path included.

    Only an http(s) or mailto link is taken as absolute; anything else is a path below the
    site (`javascript:x` becomes `BASE/javascript:x`), so no other scheme can come out.
    """
    if _is_absolute(link):
        return link
    return urljoin(base_url.rstrip("/") + "/", "./" + link.lstrip("/"))


def _is_absolute(link: str) -> bool:
    return link.startswith(("http://", "https://", "mailto:", "//")) and is_safe_link(link)


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1, in brackets or not)."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False
