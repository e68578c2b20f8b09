"""Reading the pieces of a returned message: decoded headers, report text, the quoted original.

Every function here tolerates broken mail (bad charsets, wrong encodings, truncated parts):
a part that cannot be decoded is read as UTF-8 with replacement characters, never raised.
Text is bounded (`TEXT_LIMIT` characters per message) so a huge report costs no more than a
small one.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr

TEXT_LIMIT = 200_000
_ORIGINAL_TYPES = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/rfc822-headers",
)
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
# where prose bounces start quoting the original (qmail, Exim, Yahoo, Gmail, Exchange, Sendmail)
_QUOTE_START = re.compile(
    r"^[ \t]*(?:-{2,}[ \t]*)?(?:"
    r"below this line is a copy of the message|original message follows|original message"
    r"|this is a copy of the message|a copy of the original message|message header follows"
    r"|unsent message below|original message headers|returned message|undelivered message"
    r"|以下是原邮件|原始邮件|原邮件"
    r")\b.*$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(r"^[!-9;-~]+:", re.MULTILINE)


def header_text(message: Message | None, name: str) -> str:
    """A header's value with RFC 2047 words decoded, on one line; "" when absent or broken."""
    value = message.get(name) if message is not None else None
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, TypeError):
        text = str(value)
    return " ".join(text.split())


def address_of(value: str) -> str | None:
    """The bare, lowercased address in a header or DSN field value, or None."""
    value = value.strip()
    if ";" in value and not value.startswith("<"):
        kind, _, rest = value.partition(";")
        if "@" not in kind:
            value = rest.strip()
    address = parseaddr(value)[1] or value.strip("<> ")
    address = address.strip().strip("<>")
    if "@" not in address or " " in address or address.startswith("@"):
        return None
    return address.lower()


def addresses_in(message: Message, name: str) -> list[str]:
    found = []
    for _, address in getaddresses([str(v) for v in message.get_all(name, [])]):
        clean = address_of(address) if address else None
        if clean:
            found.append(clean)
    return found


def part_text(part: Message) -> str:
    """A non-multipart part's payload as text, decoded by its transfer encoding and charset."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def report_text(message: Message) -> str:
    """The human-readable text of a message: its text/* parts, not attached messages or reports.

    HTML-only notices are reduced to text by dropping tags. Bounded by `TEXT_LIMIT`.
    """
    chunks: list[str] = []
    size = 0
    for part in _walk_own(message):
        if (
            part.get_content_maintype() != "text"
            or part.get_content_type() == "text/rfc822-headers"
        ):
            continue
        text = part_text(part)
        if part.get_content_subtype() == "html":
            text = re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(script|style).*?</\1>", " ", text))
        chunks.append(text)
        size += len(text)
        if size >= TEXT_LIMIT:
            break
    return "\n".join(chunks)[:TEXT_LIMIT]


def split_quote(text: str) -> tuple[str, str]:
    """(the notice, the quoted original) of a prose bounce; the quote is "" when none is found."""
    match = _QUOTE_START.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.end() :]


def _walk_own(message: Message) -> list[Message]:
    """The message's parts, not descending into attached messages (those are the original)."""
    parts: list[Message] = []
    stack = [message]
    while stack:
        part = stack.pop(0)
        if part.get_content_type() in (*_ORIGINAL_TYPES, *_REPORT_TYPES):
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[:0] = [p for p in payload if isinstance(p, Message)]
            continue
        parts.append(part)
    return parts


def parts_of_type(message: Message, *types: str) -> list[Message]:
    return [part for part in message.walk() if part.get_content_type() in types]


def original_headers(message: Message) -> Message | None:
    """The headers of the message that bounced or was reported, wherever the report put them.

    An attached `message/rfc822` (its headers), a `text/rfc822-headers` part, or, in a prose
    bounce, the header block after the "copy of the message" line.
    """
    for part in parts_of_type(message, *_ORIGINAL_TYPES):
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        text = part_text(part)
        if text.strip():
            return HeaderParser().parsestr(text.lstrip(), headersonly=True)
    _, quote = split_quote(report_text(message))
    start = _HEADER_LINE.search(quote)
    if start is None:
        return None
    headers = HeaderParser().parsestr(quote[start.start() :], headersonly=True)
    return headers if len(headers) else None


def header_block_text(message: Message | None) -> str:
    """All headers of a message as one text, for searching tokens and addresses in it."""
    if message is None:
        return ""
    return "\n".join(f"{name}: {value}" for name, value in message.items())[:TEXT_LIMIT]
