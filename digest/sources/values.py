"""Front-matter values as Hexo, Hugo and Jekyll write them: dates, flags and lists of names.

Every reader raises PostError with a sentence naming the key and the value, so one odd post is
reported and skipped while the others are read.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from digest.errors import PostError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_DATE = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"
)
# Hugo's own front-matter date keys, in its order of preference.
HUGO_DATE = ("date", "publishdate", "pubdate", "published", "lastmod", "modified")
PUBLISH = ("publishdate", "pubdate", "published")
EXPIRY = ("expirydate", "unpublishdate")


def first_date(meta: dict[str, Any], keys: tuple[str, ...], tz: ZoneInfo) -> datetime | None:
    for key in keys:
        value = meta.get(key)
        if key == "published" and is_flag(value):
            continue  # Jekyll's and Hexo's `published: false`, not Hugo's date alias
        parsed = as_datetime(value, key, tz)
        if parsed is not None:
            return parsed
    return None


def as_datetime(value: object, key: str, tz: ZoneInfo) -> datetime | None:
    """Front-matter dates: YAML/TOML dates and datetimes, or strings such as `2026-01-11`,
    `2026/1/5 9:05`, `2026-01-11T09:30:00Z` or Jekyll's `2026-01-11 09:30:00 +0800`; naive
    ones are site-local."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str):
        parsed = _parse_date(value.strip(), key)
    else:
        raise PostError(f"{key} {value!r} is not a date such as 2026-01-11")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


_US_DATE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?"
)
_NAMED_DATE = re.compile(r"(?P<date>[A-Za-z]+\.? \d{1,2},? \d{4}|\d{1,2} [A-Za-z]+\.? \d{4})")
_NAMED_FORMATS = ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y")


def _loose_date(text: str) -> datetime | None:
    """Dates Hexo (moment, JavaScript's Date), Hugo and Jekyll (Ruby) also accept:
    `4/1/2021 8:03:37 PM` (month first, as JavaScript and the Hexo tools that write it),
    `Jan 5, 2026`, `January 5, 2026 09:30`, `5 Jan 2026`."""
    us = _US_DATE.fullmatch(text)
    if us is not None:
        month, day, year, hour, minute, second, half = us.groups()
        hours = int(hour or 0) % 12 + (12 if (half or "").lower() == "pm" else 0)
        if not half:
            hours = int(hour or 0)
        return datetime(int(year), int(month), int(day), hours, int(minute or 0), int(second or 0))
    named = _NAMED_DATE.match(text)
    if named is None:
        return None
    rest = text[named.end() :].strip()
    clock = re.fullmatch(r"(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?", rest) if rest else None
    if rest and clock is None:
        return None
    day_text = named.group("date").replace(",", "").replace(".", "")
    for layout in _NAMED_FORMATS:
        try:
            parsed = datetime.strptime(day_text, layout)
        except ValueError:
            continue
        if clock is not None:
            hour, minute, second = (int(g or 0) for g in clock.groups())
            parsed = parsed.replace(hour=hour, minute=minute, second=second)
        return parsed
    return None


def _parse_date(text: str, key: str) -> datetime:
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            loose = _loose_date(text)
            if loose is None:
                raise ValueError(text)
            return loose
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        zone = None
        if offset is not None:
            zone = UTC if offset == "Z" else _offset(offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:
        raise PostError(
            f"{key} {text!r} is not a date such as 2026-01-11 or 2026-01-11 09:30"
        ) from None


def _offset(text: str) -> timezone:
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone((1 if text[0] == "+" else -1) * timedelta(minutes=minutes))


def strings(value: object, key: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str | int | float):
        return (str(value).strip(),)
    if isinstance(value, list):
        flat: list[str] = []
        for item in value:
            flat.extend(strings(item, key))
        return tuple(dict.fromkeys(s for s in flat if s))
    raise PostError(f"{key} must be a name or a list of names")


def is_flag(value: object) -> bool:
    return isinstance(value, bool) or (
        isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE
    )


def as_bool(value: object, key: str, *, default: bool) -> bool:
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
