"""Failed addresses in a prose bounce, when flufl.bounce's detectors find none.

Many MTAs (qmail, Yahoo, OpenSMTPD, Exchange's text part, Postfix with a localised preface)
list each failed recipient at the start of a line, as `<user@example.com>:`,
`user@example.com: 550 ...` or alone. This reads those lines in the notice (the text before
the quoted original), never the quoted original itself, and leaves out the report's own
envelope and sender addresses and daemon mailboxes, so a signature such as "contact
<postmaster@example.net>" is not taken for a failure. When the quoted original names its
recipient and that recipient is listed, it alone is returned.
"""

from __future__ import annotations

import re
from email.message import Message

from digest.inbound.parts import addresses_in

_ADDRESS = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)
_LISTED = re.compile(
    rf"^[ \t]*(?:(?:failed|recipient|to|address)[ \t]*:[ \t]*)?<?({_ADDRESS})>?[ \t]*"
    r"(?::|$|\(|\[|<mailto:|\.\.\.|\s+on\s)",
    re.IGNORECASE | re.MULTILINE,
)
_DAEMON = re.compile(
    r"^(?:mailer-daemon|mail-daemon|postmaster|abuse|support|help|noreply|no-reply)@", re.I
)
_OWN_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Sender",
    "Delivered-To",
    "X-Original-To",
    "Return-Path",
)
_ORIGINAL_SENDERS = ("From", "Sender", "Reply-To", "Return-Path", "Errors-To")
MAX_LISTED = 10


def listed_failures(notice: str, message: Message, original: Message | None) -> tuple[str, ...]:
    """The addresses the notice lists as failed (lowercased, in order), or () if none."""
    excluded = {a for name in _OWN_HEADERS for a in addresses_in(message, name)}
    if original is not None:
        excluded |= {a for name in _ORIGINAL_SENDERS for a in addresses_in(original, name)}
    found: list[str] = []
    for match in _LISTED.finditer(notice):
        address = match.group(1).lower().rstrip(".")
        if address in excluded or _DAEMON.match(address) or address in found:
            continue
        found.append(address)
    if not found or len(found) > MAX_LISTED:
        return ()
    if original is not None:
        wanted = set(addresses_in(original, "To")) | set(addresses_in(original, "Cc"))
        chosen = [a for a in found if a in wanted]
        if chosen:
            return tuple(chosen)
    return tuple(found)
