"""What an address, a name and a list of categories must look like before they are stored.

Addresses are checked by email-validator without DNS (no network at sign-up or import) and
kept as given, with only the domain lower-cased; comparisons use the whole address lower-cased
(`digest.store.tables.address_key`). Names and categories reach mail headers and pages, so a
name is always one line, and categories are trimmed and deduplicated.
"""

from __future__ import annotations

from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

LOCALES = ("zh", "en")


class InvalidAddress(ValueError):
    """An address email-validator rejects; the message says why, in one sentence."""


def normalise_email(raw: str) -> str:
    """A syntactically valid address with its domain lower-cased (no DNS lookups)."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidAddress("the address is empty")
    if any(c in candidate for c in "\r\n"):
        raise InvalidAddress("the address contains a line break")
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc).rstrip(".")) from None
    local, _, domain = valid.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_name(name: str | None) -> str:
    """A display name on one line (names reach headers: never a CR or LF)."""
    return " ".join((name or "").split())[:200]


def parse_categories(value: str | Sequence[str] | None) -> list[str] | None:
    """`a; b` or a list -> ["a", "b"]; empty -> None, which means every category."""
    if value is None:
        return None
    items = value.replace("|", ";").split(";") if isinstance(value, str) else list(value)
    cleaned = list(dict.fromkeys(" ".join(item.split()) for item in items if item.strip()))
    return cleaned or None


def mask(email: str) -> str:
    """`z***g@example.com`: enough for the owner to recognise, little for anyone else."""
    local, _, domain = email.rpartition("@")
    if len(local) <= 2:
        shown = local[:1] + "*" * max(1, len(local) - 1)
    else:
        shown = local[0] + "*" * min(6, len(local) - 2) + local[-1]
    return f"{shown}@{domain}"
