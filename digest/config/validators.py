"""The value checks every configuration section shares: bounded numbers, time zones, web
addresses and the subject template.

`Section` is the base of every section model in `digest.config.schema`: unknown keys refused,
no infinite or NaN float, and every number bounded (by its own `le`, else by NUMBER_CEILING),
so that no setting can overflow a time or a count later on. The `check_*` functions are
pydantic field validators: each raises ValueError with the reason, which the loader turns
into one sentence naming the file, the line and the key (digest.config.load).
"""

from __future__ import annotations

import ipaddress
import re
import string
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

# Any number without a bound of its own stays within this, so that no setting can overflow
# a time or a count later on (a million hours is 114 years; days get bounds of their own).
NUMBER_CEILING = 1_000_000


class Section(BaseModel):
    """Every section: unknown keys refused, no float infinite or NaN, and every number
    bounded: by its own `le`, else by NUMBER_CEILING."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        field = cls.model_fields[info.field_name] if info.field_name else None
        if field is not None and any(getattr(m, "le", None) is not None for m in field.metadata):
            return value
        if abs(value) > NUMBER_CEILING:
            raise ValueError(f"must be at most {NUMBER_CEILING:,} (in size)")
        return value


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (e.g. Asia/Shanghai)") from None
    return value


def check_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} must start with http:// or https://")
    return value.rstrip("/")


def check_origin(value: str) -> str:
    """An exact web origin, `scheme://host[:port]` (no path, no wildcard): what a redirect
    back to a blog and a CORS answer may name."""
    from urllib.parse import urlsplit

    check_http_url(value)
    parts = urlsplit(value.rstrip("/"))
    if parts.path or parts.query or parts.fragment or parts.username or not parts.hostname:
        raise ValueError(f"{value!r} is not an origin such as https://blog.example.com")
    if "*" in value:
        raise ValueError(f"{value!r}: an origin is exact, without wildcards")
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_web_link(value: str) -> str:
    """A link the digest shows as it is (no trailing slash removed): http(s) only."""
    check_http_url(value)
    return value


# The placeholders `digest.subject` may use (digest.render.edition.subject_for fills them in).
SUBJECT_PLACEHOLDERS = ("title", "period", "date", "long_date", "count", "first_title")


# A format spec may pad (`{count:>3}`), not build a megabyte-wide subject.
_MAX_FORMAT_NUMBER = 200


def check_subject(value: str) -> str:
    try:
        parts = [
            (f, spec or "") for _, f, spec, _ in string.Formatter().parse(value) if f is not None
        ]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid subject template: {exc}") from None
    for field, spec in parts:
        if field not in SUBJECT_PLACEHOLDERS:
            known = " ".join("{" + name + "}" for name in SUBJECT_PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{field}}}; the placeholders are {known}")
        if "{" in spec or any(int(n) > _MAX_FORMAT_NUMBER for n in re.findall(r"\d+", spec)):
            raise ValueError(
                f"{{{field}:{spec}}} is not a usable format (no nested fields, widths up to "
                f"{_MAX_FORMAT_NUMBER})"
            )
    sample: dict[str, Any] = {name: "x" for name in SUBJECT_PLACEHOLDERS} | {"count": 1}
    try:
        value.format(**sample)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"{value!r} is not a valid subject template: {exc}") from None
    return value


def check_networks(value: list[str]) -> list[str]:
    """IP addresses or networks (`10.0.0.0/8`, `::1`), host bits allowed, as given."""
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problem = f"{entry!r} is not an IP address or network such as 10.0.0.0/8"
            raise ValueError(problem) from None
    return value


def check_nameserver(entry: str) -> str:
    """`host:port` (an IPv6 address in brackets: `[::1]:53`), or a bare address (port 53)."""
    text = entry.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                host = ""
            port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise ValueError(f"{entry!r} is not a name server such as 127.0.0.1:53 or [::1]:5353")
    return text
