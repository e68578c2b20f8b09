"""One message per recipient from a rendered issue, by splicing values into prepared bytes.

A `MessageTemplate` is built once per variant (locale and category filter): the complete
RFC 5322 message with CRLF line ends, both parts quoted-printable, split into static byte
segments and *slots*. Each slot sits on lines of its own (quoted-printable soft breaks around
it), so personalising is a `join` — no parsing, no re-rendering, no `EmailMessage` per
recipient (DESIGN.md section 9) — and the lines around a slot never change, which lets DKIM
hash the static parts once.

The slots are the fixed ones (`Slot`: headers, unsubscribe and preferences links, greeting)
and, with `tracking.clicks: personal`, one `LinkSlot` per post link and part: its value is the
recipient's own `/c/TOKEN` (naming their delivery), made by the composer, one HMAC per link.

Headers are written here, not by `email.policy`: `List-Unsubscribe` must never be RFC 2047
encoded, and no CR or LF from a title or a name may reach a header.

No line of a message is longer than 998 octets (RFC 5322 2.1.1; a server answers `500 Line
too long`), whatever the title, the subject pattern or the subscriber's name: headers are
folded, and a phrase or subject too long to fold at its spaces is RFC 2047 encoded in pieces;
an 8bit part is used only when its longest line, with the longest values its slots can take,
fits; a long greeting in HTML is cut into lines joined by empty comments (`<!--` CRLF `-->`),
which no reader sees.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from enum import IntEnum
from typing import NamedTuple
from urllib.parse import quote

from digest.delivery.dkim import Signer, relaxed_body, relaxed_header
from digest.models import (
    CLICK_PLACEHOLDER,
    GREETING,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    Rendered,
)
from digest.render.wrap import GREETING_ROOM, html_lines

CRLF = b"\r\n"
_PLACEHOLDER = re.compile(
    "|".join(
        [
            *(re.escape(p) for p in (UNSUBSCRIBE_URL, PREFERENCES_URL, GREETING)),
            CLICK_PLACEHOLDER.pattern,
        ]
    )
)
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")
_LIST_ID = re.compile(r"^(?P<phrase>.*?)\s*<(?P<id>[^<>]*)>\s*$")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]")

MAX_LINE = 998  # octets in a line, CRLF not counted (RFC 5322 2.1.1)
FOLD = 78  # where header lines are folded (RFC 5322 2.1.1's "should")
MAX_NAME = 200  # characters of a display name (digest.store.subscribers.clean_name)
LINK_ROOM = 200  # octets a personal link may take unless Headers says (Composer measures it)
_URL_PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL)


class Slot(IntEnum):
    TO = 0
    DATE = 1
    MESSAGE_ID = 2
    LIST_UNSUBSCRIBE = 3
    TEXT_UNSUBSCRIBE = 4
    TEXT_PREFERENCES = 5
    TEXT_GREETING = 6
    HTML_UNSUBSCRIBE = 7
    HTML_PREFERENCES = 8
    HTML_GREETING = 9


_TEXT_SLOTS = {
    UNSUBSCRIBE_URL: Slot.TEXT_UNSUBSCRIBE,
    PREFERENCES_URL: Slot.TEXT_PREFERENCES,
    GREETING: Slot.TEXT_GREETING,
}
_HTML_SLOTS = {
    UNSUBSCRIBE_URL: Slot.HTML_UNSUBSCRIBE,
    PREFERENCES_URL: Slot.HTML_PREFERENCES,
    GREETING: Slot.HTML_GREETING,
}
_BODY_SLOTS = frozenset(_TEXT_SLOTS.values()) | frozenset(_HTML_SLOTS.values())


class LinkSlot(NamedTuple):
    """A post's personal click link (`tracking.clicks: personal`) in one part: `link` is its
    index among the issue's posts (digest.models.click_url). A tuple: hashed in C."""

    html: bool
    link: int


Segment = bytes | Slot | LinkSlot


def one_line(value: str) -> str:
    """A header value from content: every kind of line break becomes a space."""
    return " ".join(_LINE_BREAKS.sub(" ", value).split())


@dataclass(frozen=True, slots=True)
class Personal:
    """The per-recipient values spliced into a message."""

    email: str
    name: str
    message_id: str
    date: datetime
    unsubscribe_url: str
    preferences_url: str
    mailto: str | None
    # with `tracking.clicks: personal`: each post link's URL (`MessageTemplate.links`)
    click_urls: Mapping[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Headers:
    """Constant headers of one issue's messages."""

    sender: str  # "Name <address>"
    list_id: str  # "Site <digest.example.com>"
    reply_to: str | None = None
    link_room: int = LINK_ROOM  # the most octets a personal link takes, HTML-escaped


class MessageTemplate:
    """A variant's message as static byte segments and slots; `build` splices one recipient."""

    def __init__(self, rendered: Rendered, headers: Headers, *, eight_bit: bool = True) -> None:
        self.rendered = rendered
        self.eight_bit = eight_bit
        self.boundary = (
            "=_digest_" + hashlib.sha256((rendered.text + rendered.html).encode()).hexdigest()[:24]
        )
        self.segments: list[Segment] = []
        self.part_8bit: dict[str, bool] = {}
        self._head(headers)
        self.head = _merge(self.segments)
        self.segments = []
        named = len(rendered.greeting_named.encode()) + 4 * MAX_NAME
        greeting = max(named, len(rendered.greeting_anonymous.encode()))
        rooms = {"link": headers.link_room, "greeting": greeting}
        self._part("text/plain", rendered.text, _TEXT_SLOTS, rooms)
        self._part("text/html", rendered.html, _HTML_SLOTS, {**rooms, "greeting": GREETING_ROOM})
        self._static(f"--{self.boundary}--".encode() + CRLF)
        self.body = _merge(self.segments)
        # the personal click links, each (part, link) once: what `values` fills in
        self._link_slots = list(dict.fromkeys(s for s in self.body if isinstance(s, LinkSlot)))
        self.links = tuple(sorted({slot.link for slot in self._link_slots}))
        self._canonical: list[bytes | None] | None = None
        self._signing: tuple[Signer, list[str], list[bytes | list[Segment]]] | None = None
        # the body as it goes on the wire: dot-stuffed once here, not per message; what is
        # left to a message is its slots' values and the static segments that start with a
        # dot after one (a line's start depends on the value before it)
        self._wire = [
            s.replace(b"\r\n.", b"\r\n..") if isinstance(s, bytes) else s for s in self.body
        ]
        first = self._wire[0] if self._wire else None
        if isinstance(first, bytes) and first[:1] == b".":  # the body starts on a fresh line
            self._wire[0] = b"." + first
        self._wire_slots = [i for i, s in enumerate(self._wire) if not isinstance(s, bytes)]
        self._wire_dots = [
            i for i, s in enumerate(self._wire) if i and isinstance(s, bytes) and s[:1] == b"."
        ]

    # -- building the template ----------------------------------------------------------------

    def _static(self, data: bytes) -> None:
        self.segments.append(data)

    def _head(self, headers: Headers) -> None:
        fields: list[tuple[str, list[Segment]]] = [
            ("from", [_address_header("From", headers.sender)]),
            ("to", [b"To: ", Slot.TO, CRLF]),
            ("subject", [_header("Subject", self.rendered.subject)]),
            ("date", [b"Date: ", Slot.DATE, CRLF]),
            ("message-id", [b"Message-ID: ", Slot.MESSAGE_ID, CRLF]),
            ("list-id", [list_id_header(headers.list_id)]),
            ("list-unsubscribe", [Slot.LIST_UNSUBSCRIBE]),
            (
                "list-unsubscribe-post",
                [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF],
            ),
            # Bulk mail: no vacation or out-of-office replies (RFC 3834 autoresponders read
            # Precedence; Exchange and Outlook read X-Auto-Response-Suppress).
            ("precedence", [b"Precedence: bulk" + CRLF]),
            ("x-auto-response-suppress", [b"X-Auto-Response-Suppress: OOF, AutoReply" + CRLF]),
        ]
        if headers.reply_to:
            fields.append(("reply-to", [_address_header("Reply-To", headers.reply_to)]))
        fields += [
            ("mime-version", [b"MIME-Version: 1.0" + CRLF]),
            (
                "content-type",
                [
                    f'Content-Type: multipart/alternative; boundary="{self.boundary}"'.encode()
                    + CRLF
                ],
            ),
        ]
        self.fields = fields  # each header field (name, segments ending in CRLF), in order
        for _, segments in fields:
            self.segments.extend(segments)

    def _part(self, mime: str, content: str, slots: dict[str, Slot], rooms: dict[str, int]) -> None:
        eight_bit = self.eight_bit and _fits_8bit(content, rooms["link"], rooms["greeting"])
        self.part_8bit[mime] = eight_bit
        encoding = "8bit" if eight_bit else "quoted-printable"
        self._static(
            f"--{self.boundary}\r\nContent-Type: {mime}; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        )
        position = 0
        for match in _PLACEHOLDER.finditer(content):
            piece = content[position : match.start()]
            self._static(_crlf(piece) if eight_bit else _qp_open(piece))
            link = match.group(1)
            if link is None:
                self.segments.append(slots[match.group(0)])
            else:
                self.segments.append(LinkSlot(mime == "text/html", int(link)))
            position = match.end()
        rest = content[position:]
        self._static((_crlf(rest) if eight_bit else _qp(rest)) + CRLF)

    # -- per recipient ------------------------------------------------------------------------

    def values(self, personal: Personal) -> dict[Slot | LinkSlot, bytes]:
        """The bytes of every slot for one recipient."""
        rendered = self.rendered
        name = one_line(personal.name)[:MAX_NAME]
        greeting = rendered.greeting_named % {"name": name} if name else rendered.greeting_anonymous
        list_unsubscribe = f"List-Unsubscribe: <{personal.unsubscribe_url}>"
        if personal.mailto:
            list_unsubscribe += f",\r\n <{personal.mailto}>"
        text = _raw_slot if self.part_8bit["text/plain"] else _qp_slot
        markup = _raw_slot if self.part_8bit["text/html"] else _qp_slot
        values: dict[Slot | LinkSlot, bytes] = {
            Slot.TO: _address_value("To", name, personal.email),
            Slot.DATE: format_datetime(personal.date).encode(),
            Slot.MESSAGE_ID: personal.message_id.encode(),
            Slot.LIST_UNSUBSCRIBE: one_line_bytes(list_unsubscribe),
            Slot.TEXT_UNSUBSCRIBE: text(personal.unsubscribe_url),
            Slot.TEXT_PREFERENCES: text(personal.preferences_url),
            Slot.TEXT_GREETING: text(greeting),
            Slot.HTML_UNSUBSCRIBE: markup(html.escape(personal.unsubscribe_url)),
            Slot.HTML_PREFERENCES: markup(html.escape(personal.preferences_url)),
            Slot.HTML_GREETING: markup(html_lines(greeting)),
        }
        if self._link_slots:
            urls = personal.click_urls
            if urls is None or not all(link in urls for link in self.links):
                raise ValueError(f"a personal message needs the click links {self.links}")
            for slot in self._link_slots:
                url = urls[slot.link]
                values[slot] = markup(html.escape(url)) if slot.html else text(url)
        return values

    def build(
        self,
        personal: Personal,
        signer: Signer | None = None,
        timestamp: int | None = None,
        *,
        wire: bool = False,
    ) -> bytes:
        """The recipient's message, DKIM-signed when a signer is given.

        With `wire`, the bytes as SMTP's DATA carries them: dot-stuffed (RFC 5321 4.5.2),
        mostly ahead of time, and ending in CRLF; `SMTPConnection.send(..., stuffed=True)`.
        The message's bytes are joined once, from its pieces.
        """
        values = self.values(personal)
        pieces: list[bytes] = [b""]  # the signature's place
        pieces.extend(s if isinstance(s, bytes) else values[s] for s in self.head)
        pieces.append(CRLF)
        if wire:
            self._stuffed(values, pieces)
        else:
            pieces.extend(s if isinstance(s, bytes) else values[s] for s in self.body)
        if signer is not None:
            pieces[0] = self._signature(signer, values, timestamp)
        return b"".join(pieces)

    def _signature(
        self, signer: Signer, values: dict[Slot | LinkSlot, bytes], timestamp: int | None
    ) -> bytes:
        """The DKIM-Signature fields: the body hashed from its canonical static segments
        (computed once) and its slots, the signed header fields from their canonical forms
        (the static ones computed once, `_signed_fields`)."""
        digest = hashlib.sha256()
        for segment, canonical in zip(self.body, self._canonical_body(), strict=True):
            if canonical is None:
                assert not isinstance(segment, bytes)
                canonical = relaxed_body(values[segment], final=False)
            digest.update(canonical)
        present, parts = self._signed_fields(signer)
        canonical_head = b"".join(
            part
            if isinstance(part, bytes)
            else relaxed_header(b"".join(s if isinstance(s, bytes) else values[s] for s in part))
            + CRLF
            for part in parts
        )
        return signer.signatures(canonical_head, present, digest.digest(), timestamp=timestamp)

    def _signed_fields(self, signer: Signer) -> tuple[list[str], list[bytes | list[Segment]]]:
        """The header fields `signer` signs that this message has, in its order, and their
        relaxed canonical forms with CRLF: bytes for a field without slots (computed once per
        template and signer), its segments for one to canonicalise per message."""
        if self._signing is None or self._signing[0] is not signer:
            by_name = dict(self.fields)  # each name once here; the last would be signed
            present = [name for name in signer.signed if name in by_name]
            parts: list[bytes | list[Segment]] = []
            for name in present:
                segments = by_name[name]
                static = [s for s in segments if isinstance(s, bytes)]
                if len(static) < len(segments):
                    parts.append(_merge(segments))
                elif parts and isinstance(parts[-1], bytes):
                    parts[-1] += relaxed_header(b"".join(static)) + CRLF
                else:
                    parts.append(relaxed_header(b"".join(static)) + CRLF)
            self._signing = (signer, present, parts)
        return self._signing[1], self._signing[2]

    def _stuffed(self, values: dict[Slot | LinkSlot, bytes], pieces: list[bytes]) -> None:
        """Append the body's pieces as they go on the wire (dot-stuffed) to `pieces`: the
        static segments as stuffed ahead of time, each slot's value stuffed here, and a dot
        more before a piece that starts with one on a line of its own."""
        wire = [s if isinstance(s, bytes) else values[s] for s in self._wire]
        for index in self._wire_slots:
            piece = wire[index]
            if b"\r\n." in piece:
                piece = piece.replace(b"\r\n.", b"\r\n..")
            if piece[:1] == b"." and _line_start(wire, index):
                piece = b"." + piece
            wire[index] = piece
        for index in self._wire_dots:  # after a slot: `_merge` leaves no two statics together
            if _line_start(wire, index):
                wire[index] = b"." + wire[index]
        pieces.extend(wire)

    def _canonical_body(self) -> list[bytes | None]:
        """Relaxed canonical form of every static body segment, computed once; slots are None.

        Every segment starts and ends on a line boundary (slots sit on lines of their own), so
        canonicalising piece by piece equals canonicalising the whole body. (In an 8bit part a
        slot sits inside its line; a link has no whitespace to join with its neighbours'.)
        """
        if self._canonical is None:
            last = len(self.body) - 1
            assert isinstance(self.body[last], bytes)
            self._canonical = [
                relaxed_body(segment, final=index == last) if isinstance(segment, bytes) else None
                for index, segment in enumerate(self.body)
            ]
        return self._canonical


SAMPLE_UNSUBSCRIBE_URL = "#preview-unsubscribe"
SAMPLE_PREFERENCES_URL = "#preview-preferences"
SAMPLE_CLICK_URL = "#preview-link"


def with_sample_values(content: str, greeting: str) -> str:
    """A rendering with harmless sample values in place of the per-recipient placeholders
    (the preview, `render --out`, a dry run's preview.html): no dead `x-digest:` links and
    never a real subscriber's."""
    for placeholder, value in (
        (UNSUBSCRIBE_URL, SAMPLE_UNSUBSCRIBE_URL),
        (PREFERENCES_URL, SAMPLE_PREFERENCES_URL),
        (GREETING, greeting),
    ):
        content = content.replace(placeholder, value)
    return CLICK_PLACEHOLDER.sub(SAMPLE_CLICK_URL, content)


def mailto(address: str, token: str) -> str:
    """A mailto unsubscribe URI whose subject identifies the subscriber to a human operator."""
    return f"mailto:{address}?subject={quote('unsubscribe ' + token)}"


def one_line_bytes(header_line: str) -> bytes:
    """A header we write ourselves (already folded with CRLF SP where intended)."""
    folded = header_line.split("\r\n ")
    return b"\r\n ".join(one_line(part).encode("ascii") for part in folded) + CRLF


def list_id_header(value: str) -> bytes:
    """List-Id (RFC 2919) with only its phrase RFC 2047 encoded: the `<id>` is always literal
    ASCII (an IDN label becomes punycode), so filters keyed on the list id keep matching."""
    text = one_line(value)
    match = _LIST_ID.match(text)
    phrase, list_id = (match["phrase"].strip(), match["id"]) if match else ("", text)
    list_id = _ascii_list_id(list_id)
    if not phrase:
        return f"List-Id: <{list_id}>".encode("ascii") + CRLF
    if phrase.isascii():
        phrase = _quote_phrase(phrase)
        encoded = Header(phrase, "us-ascii", header_name="List-Id").encode(linesep="\r\n")
    else:
        encoded = Header(phrase, "utf-8", header_name="List-Id").encode(linesep="\r\n")
    last = len(("List-Id: " + encoded).rsplit("\r\n", 1)[-1])
    gap = "\r\n " if last + len(list_id) + 3 > 78 else " "
    return f"List-Id: {encoded}{gap}<{list_id}>".encode("ascii") + CRLF


def _quote_phrase(phrase: str) -> str:
    """An ASCII phrase as RFC 5322 atoms, or as one quoted-string when it holds specials."""
    if not _SPECIALS.search(phrase):
        return phrase
    return '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ascii_list_id(list_id: str) -> str:
    """A dot-atom of ASCII: IDNA for a non-ASCII label, anything else outside atext dropped."""
    labels = []
    for label in list_id.strip().split("."):
        if not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError:
                label = "xn--" + label.encode("punycode").decode("ascii")
        labels.append(_NOT_ATEXT.sub("", label))
    return ".".join(label for label in labels if label) or "digest"


def _header(name: str, value: str) -> bytes:
    """Subject-like headers: one line of content, folded under 78 octets: at its spaces when
    it is ASCII and every word fits, else RFC 2047 encoded in pieces (a 2,000-character title
    without a space becomes some thirty encoded words, not a 2,001-octet line)."""
    return f"{name}: {_folded(name, one_line(value))}".encode("ascii") + CRLF


def _folded(name: str, text: str) -> str:
    if text.isascii():
        folded = Header(text, "us-ascii", header_name=name).encode(linesep="\r\n")
        if all(len(line) <= FOLD for line in f"{name}: {folded}".split("\r\n")):
            return folded
    return Header(text, "utf-8", header_name=name).encode(linesep="\r\n")


def _address_header(name: str, value: str) -> bytes:
    from email.utils import parseaddr

    phrase, address = parseaddr(one_line(value))
    return f"{name}: ".encode() + _address_value(name, phrase, address) + CRLF


def _address_value(header: str, name: str, email: str) -> bytes:
    """`name <email>` for `header`: as one line when it fits in 78 octets, else the name RFC
    2047 encoded in folded pieces and the address on a line of its own (never encoded)."""
    if not name:
        return email.encode("utf-8")
    simple = one_line(formataddr((name, email), charset="utf-8"))
    if len(f"{header}: {simple}".encode()) <= FOLD:
        return simple.encode("utf-8")
    phrase = Header(name, "utf-8", header_name=header).encode(linesep="\r\n")
    return f"{phrase}\r\n <{email}>".encode()


def _fits_8bit(content: str, link: int, greeting: int) -> bool:
    """8bit needs every line within 998 octets with the longest values its slots can take
    (a personal link `link` octets, the greeting `greeting`), and leaves lines without slots
    some room too (at most 900 octets)."""
    for line in content.split("\n"):
        size = len(line.encode())
        if size > 900:
            return False
        if "x-digest:" not in line:
            continue
        clicks = [match.group(0) for match in CLICK_PLACEHOLDER.finditer(line)]
        links = sum(line.count(p) for p in _URL_PLACEHOLDERS) + len(clicks)
        greetings = line.count(GREETING)
        static = size - sum(len(p) * line.count(p) for p in (*_URL_PLACEHOLDERS, GREETING))
        static -= sum(len(click) for click in clicks)
        if static + links * link + greetings * greeting > MAX_LINE:
            return False
    return True


def _line_start(pieces: list[bytes], index: int) -> bool:
    """Whether `pieces[index]` starts a line: the last piece before it that is not empty ends
    one, or there is none (the body starts on a fresh line)."""
    for before in range(index - 1, -1, -1):
        if pieces[before]:
            return pieces[before].endswith(b"\n")
    return True


def _crlf(text: str) -> bytes:
    return text.encode("utf-8").replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def _raw_slot(value: str) -> bytes:
    return value.encode("utf-8")


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (binascii is C: cheap even for 100 KB)."""
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def _qp_open(text: str) -> bytes:
    """A static piece before a slot: it ends in a soft line break unless it ends a line."""
    encoded = _qp(text)
    return encoded if not encoded or encoded.endswith(CRLF) else encoded + b"=" + CRLF


def _qp_slot(value: str) -> bytes:
    """A slot value on lines of its own, each ending in a soft line break."""
    return _qp(value) + b"=" + CRLF


def _merge(segments: list[Segment]) -> list[Segment]:
    """Adjacent static bytes joined, so `build` joins as few pieces as possible."""
    merged: list[Segment] = []
    for segment in segments:
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += segment
        elif not (isinstance(segment, bytes) and not segment):
            merged.append(segment)
    return merged
