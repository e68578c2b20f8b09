"""Exports of other newsletter services, recognised by their columns and read as digest's rows.

`read` looks at a file's header and picks the format: digest's own CSV (`email, name, locale,
categories, status`), or the subscriber export of one of these services, each in the shape
its own export writes (first line, lower-cased):

- **Mailchimp** (`subscribed_members_export_*.csv`, `unsubscribed_...`, `cleaned_...`):
  `Email Address, First Name, Last Name, ..., OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP,
  ..., TAGS`; the unsubscribed file adds `UNSUB_TIME`, the cleaned one `CLEAN_TIME`. Tags are
  quoted within the cell: `"Python","Rust"`.
- **Substack** (the publication's email list): `email, active_subscription, expiry, plan,
  email_disabled, created_at, ...`; `email_disabled` true means they turned the emails off.
- **Buttondown**: `email` (or `email_address`), `subscriber_type` (or `type`),
  `creation_date`, `tags`, `notes`, `metadata`, ...
- **listmonk** (All subscribers -> Export): `uuid, email, name, attributes, status,
  created_at, updated_at`, status `enabled`, `disabled` or `blocklisted`; its export names no
  lists (a `lists` column, where a script adds one, becomes categories).
- **Ghost** (Members -> Export): `id, email, name, note, subscribed_to_emails,
  complimentary_plan, stripe_customer_id, created_at, deleted_at, labels, tiers`.

Statuses map to digest's: subscribed or regular people become `active` (the owner vouches
for consent given there), those who left become `unsubscribed`, cleaned or undeliverable
ones `bounced`, complaints `complained`, unconfirmed ones `pending`; none of those but the
first ever receives an issue. Rows a service marks as spam, blocked, deleted or disabled are
left out and named. Consent time is the export's opt-in or confirmation time where it gives
one, else the time they subscribed there; times without a zone are UTC (as Mailchimp's are).
Tags, labels and lists become categories.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.audience.addresses import clean_name, parse_categories
from digest.audience.csvfile import (
    CSV_COLUMNS,
    LeftOut,
    Parsed,
    Row,
    RowMaker,
    address,
    own_format,
    read_rows,
)
from digest.errors import DigestError
from digest.store.tables import Status


@dataclass(frozen=True, slots=True)
class Format:
    """One service's export: how its header is recognised and how a row reads."""

    name: str  # the consent source suffix: `import:mailchimp`
    title: str
    recognise: Callable[[set[str]], bool]
    make: RowMaker


def read(path: Path) -> tuple[str, Parsed]:
    """The format recognised (its title, or `digest`) and the file's rows, bad ones named."""
    found: list[str] = []

    def choose(path: Path, columns: list[str], delimiter: str) -> RowMaker:
        header = set(columns)
        if "email" in header and header <= set(CSV_COLUMNS):
            found.append("digest")
            return own_format(path, columns, delimiter)
        for shape in FORMATS:
            if shape.recognise(header):
                found.append(shape.title)
                return shape.make
        if "email" in header:
            return own_format(path, columns, delimiter)  # names the unknown column
        raise DigestError(
            f"{path}, line 1: the header is neither digest's CSV ({', '.join(CSV_COLUMNS)}) "
            f"nor an export of {', '.join(f.title for f in FORMATS)}; it needs an email column."
        )

    parsed = read_rows(path, choose)
    return found[0], parsed


# -- values --------------------------------------------------------------------------------------

_GO_TIME = re.compile(  # Go's time.String(): 2024-07-29 11:01:31.478677 +0530 IST
    r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)? ([+-]\d\d)(\d\d)(?: [A-Za-z0-9+-]+)?$"
)
_FRACTION = re.compile(r"(\.\d{6})\d+")


def when(value: str, column: str) -> datetime | None:
    """An export's time as an aware datetime (UTC when it names no zone); None when empty."""
    text = value.strip()
    if not text:
        return None
    go = _GO_TIME.match(text)
    if go:
        date, clock, fraction, hours, minutes = go.groups()
        text = f"{date}T{clock}{(fraction or '')[:7]}{hours}:{minutes}"
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{column} {value[:40]!r} is not a date and time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def flag(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "t"):
        return True
    if text in ("false", "0", "no", "f", ""):
        return False
    raise ValueError(f"{column} {value[:20]!r} is neither true nor false")


def listed(value: str) -> list[str] | None:
    """Tags as services write them: `"a","b"` (Mailchimp), `a,b` (Ghost, Buttondown), or a
    JSON array; None when there are none (which means every category)."""
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return parse_categories([str(i) for i in items])
    cells = next(csv.reader([text], skipinitialspace=True), [])
    return parse_categories([c.strip().strip('"') for c in cells])


def _ip(value: str) -> str | None:
    return value.strip()[:64] or None


def _names(*parts: str) -> str:
    return clean_name(" ".join(p for p in parts if p))


# -- the services --------------------------------------------------------------------------------


def _mailchimp(values: dict[str, str], line: int) -> Row | LeftOut:
    email = address(values["email address"])
    optin = when(values.get("optin_time", ""), "OPTIN_TIME")
    confirmed = when(values.get("confirm_time", ""), "CONFIRM_TIME")
    status = Status.ACTIVE
    if "unsub_time" in values:
        when(values["unsub_time"], "UNSUB_TIME")  # a bad time is a bad row
        status = Status.UNSUBSCRIBED
    elif "clean_time" in values:
        when(values["clean_time"], "CLEAN_TIME")
        status = Status.BOUNCED
    return Row(
        line=line,
        email=email,
        name=_names(values.get("first name", ""), values.get("last name", "")),
        locale=None,
        categories=listed(values.get("tags", "")),
        status=status,
        consent_at=confirmed or optin,
        consent_ip=_ip(values.get("confirm_ip", "")) or _ip(values.get("optin_ip", "")),
        subscribed_at=optin,
        source="import:mailchimp",
    )


def _substack(values: dict[str, str], line: int) -> Row | LeftOut:
    raw = values["email"]
    if raw.lower().endswith("@deletion-request.substack.com"):
        return LeftOut("a Substack deletion request, left out")
    email = address(raw)
    disabled = flag(values.get("email_disabled", ""), "email_disabled")
    joined = when(values.get("created_at", ""), "created_at")
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=None,
        categories=None,
        status=Status.UNSUBSCRIBED if disabled else Status.ACTIVE,
        subscribed_at=joined,
        source="import:substack",
    )


BUTTONDOWN_TYPES = {
    **dict.fromkeys(
        ("regular", "premium", "trialed", "unpaid", "gifted", "churning", "paused", "past_due"),
        Status.ACTIVE,
    ),
    "unactivated": Status.PENDING,
    "unsubscribed": Status.UNSUBSCRIBED,
    "undeliverable": Status.BOUNCED,
    "complained": Status.COMPLAINED,
}
BUTTONDOWN_LEFT_OUT = ("spammy", "blocked", "removed")


def _buttondown(values: dict[str, str], line: int) -> Row | LeftOut:
    kind = (values.get("subscriber_type") or values.get("type") or "regular").lower()
    if kind in BUTTONDOWN_LEFT_OUT:
        return LeftOut(f"Buttondown marked it {kind!r}, left out")
    if kind not in BUTTONDOWN_TYPES:
        known = ", ".join([*BUTTONDOWN_TYPES, *BUTTONDOWN_LEFT_OUT])
        raise ValueError(f"type {kind[:20]!r} is not a Buttondown type ({known})")
    email = address(values.get("email") or values.get("email_address") or "")
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=None,
        categories=listed(values.get("tags", "")),
        status=BUTTONDOWN_TYPES[kind],
        subscribed_at=when(values.get("creation_date", ""), "creation_date"),
        consent_ip=_ip(values.get("ip_address", "")),
        source="import:buttondown",
    )


def _listmonk(values: dict[str, str], line: int) -> Row | LeftOut:
    status = values.get("status", "enabled").lower()
    if status == "disabled":
        return LeftOut("disabled in listmonk, left out")
    if status not in ("enabled", "blocklisted"):
        raise ValueError(f"status {status[:20]!r} is not enabled, disabled or blocklisted")
    email = address(values["email"])
    attributes = values.get("attributes", "").strip()
    if attributes:
        try:
            json.loads(attributes)
        except ValueError:
            raise ValueError(f"attributes {attributes[:40]!r} is not JSON") from None
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=None,
        categories=listed(values.get("lists", "")),
        status=Status.ACTIVE if status == "enabled" else Status.UNSUBSCRIBED,
        subscribed_at=when(values.get("created_at", ""), "created_at"),
        source="import:listmonk",
    )


def _ghost(values: dict[str, str], line: int) -> Row | LeftOut:
    if values.get("deleted_at"):
        return LeftOut("deleted in Ghost, left out")
    email = address(values["email"])
    subscribed = flag(values.get("subscribed_to_emails", "true") or "true", "subscribed_to_emails")
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=None,
        categories=listed(values.get("labels", "")),
        status=Status.ACTIVE if subscribed else Status.UNSUBSCRIBED,
        subscribed_at=when(values.get("created_at", ""), "created_at"),
        source="import:ghost",
    )


def _has(*names: str) -> Callable[[set[str]], bool]:
    return lambda header: all(n in header for n in names)


def _any(*tests: Callable[[set[str]], bool]) -> Callable[[set[str]], bool]:
    return lambda header: any(t(header) for t in tests)


FORMATS: tuple[Format, ...] = (
    Format(
        "mailchimp",
        "Mailchimp",
        _any(_has("email address", "optin_time"), _has("email address", "leid")),
        _mailchimp,
    ),
    Format(
        "substack",
        "Substack",
        _any(_has("email", "email_disabled"), _has("email", "active_subscription")),
        _substack,
    ),
    Format(
        "ghost",
        "Ghost",
        _has("email", "subscribed_to_emails"),
        _ghost,
    ),
    Format(
        "listmonk",
        "listmonk",
        _has("uuid", "email", "attributes", "status"),
        _listmonk,
    ),
    Format(
        "buttondown",
        "Buttondown",
        _any(
            _has("email", "subscriber_type"),
            _has("email_address", "type", "creation_date"),
            _has("email", "creation_date", "secondary_id"),
        ),
        _buttondown,
    ),
)
