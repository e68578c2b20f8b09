"""Post URLs: the site's permalink pattern, and making feed links absolute."""

from __future__ import annotations

import re
import string
from datetime import datetime
from urllib.parse import quote, urljoin

_EMPTY_SEGMENTS = re.compile(r"(?<!:)/{2,}")
PERMALINK_FIELDS = frozenset({"slug", "year", "month", "day", "category", "path", "id"})


def check_permalink(pattern: str) -> str:
    """Reject a permalink pattern that names a field we cannot fill (a config error)."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{pattern!r} is not a valid pattern: {exc}") from None
    unknown = names - PERMALINK_FIELDS
    if unknown:
        known = ", ".join(f"{{{n}}}" for n in sorted(PERMALINK_FIELDS))
        raise ValueError(f"{pattern!r} uses {{{sorted(unknown)[0]}}}; known fields are {known}")
    return pattern


def post_url(
    base_url: str,
    pattern: str,
    *,
    slug: str,
    date: datetime | None,
    category: str,
    path: str,
    id: str,
) -> str:
    """Fill the permalink pattern and make it absolute against the site's base URL."""
    fields = {
        "slug": slug,
        "year": f"{date.year:04d}" if date else "",
        "month": f"{date.month:02d}" if date else "",
        "day": f"{date.day:02d}" if date else "",
        "category": category,
        "path": path,
        "id": id,
    }
    filled = pattern.format(**{k: quote(v, safe="/") for k, v in fields.items()})
    return site_url(base_url, _EMPTY_SEGMENTS.sub("/", filled))


def site_url(base_url: str, link: str) -> str:
    """A site link made absolute: `/x` is relative to the site's base URL, path included."""
    if _is_absolute(link):
        return link
    return urljoin(base_url.rstrip("/") + "/", link.lstrip("/"))


def _is_absolute(link: str) -> bool:
    return link.startswith(("http://", "https://", "mailto:", "//"))
