"""Post URLs: the site's permalink pattern, and making feed links absolute.

A pattern is a path with fields in braces: `/posts/{slug}/`, `/{year}/{month}/{day}/{title}/`.
`{name:default}` uses `default` when the field is empty (Hexo's `default_category`), and
`{fm.KEY}` is the post's own front-matter value KEY (Hexo plugins such as hexo-abbrlink add
their own permalink keys). What each field holds for a Hexo, Hugo or Jekyll blog is that
generator's own rule (digest/sources/fields.py, docs/blogs.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urljoin

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


def site_url(base_url: str, link: str) -> str:
    """A site link made absolute: `/x` is relative to the site's base URL, path included."""
    if _is_absolute(link):
        return link
    return urljoin(base_url.rstrip("/") + "/", link.lstrip("/"))


def _is_absolute(link: str) -> bool:
    return link.startswith(("http://", "https://", "mailto:", "//"))
