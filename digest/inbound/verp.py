"""VERP: an envelope sender per message, `bounces+TOKEN@example.com`, that names the delivery.

The token survives what relays do to an address: its alphabet is lowercase base32 (RFC 4648,
no padding), and it is read case-insensitively, because relays and mailbox providers change
the case of local parts. It is signed: HMAC-SHA256 over a purpose byte and the ids, truncated
to 80 bits (a forger needs about 2**79 mails per success), verified in constant time against
every key of the keyring, so a rotated secret keeps reading old bounces for the overlap period
(`digest.config.credentials.keyring`). A token has exactly one spelling: aliases in the base32
padding bits and over-long varints are refused.

Two purposes: `bounce` (the envelope sender: subscriber, issue and delivery) and `unsubscribe`
(a mailto address: subscriber and issue), so a bounce address can never be replayed as an
unsubscribe request. With ids below 2**35 the token is at most 42 characters, which keeps a
local part of up to `RETURN_PATH_LOCAL_MAX` characters plus `+TOKEN` within RFC 5321's
64 octets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from functools import lru_cache
from typing import Literal
from urllib.parse import quote

from digest.inbound.settings import RETURN_PATH_LOCAL_MAX
from digest.tokens import Keyring

VerpPurpose = Literal["bounce", "unsubscribe"]
_PURPOSE_BYTE: dict[VerpPurpose, int] = {"bounce": 0x62, "unsubscribe": 0x75}  # "b", "u"
_MAC_BYTES = 10
_DOMAIN = b"digest.verp\x00"
MAX_ID = 2**35 - 1
MAX_TOKEN_CHARS = 42  # purpose + three 5-byte varints + MAC = 26 bytes -> 42 base32 chars
LOCAL_PART_LIMIT = 64
assert RETURN_PATH_LOCAL_MAX + 1 + MAX_TOKEN_CHARS <= LOCAL_PART_LIMIT

# headers of a bounce that may hold the address it was sent to (our VERP address)
ENVELOPE_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Original-Recipient",
    "To",
    "Cc",
    "Return-Path",
    "X-Failed-Recipients",
)


class InvalidVerp(ValueError):
    """A token we do not accept (forged, truncated, mangled, or for another purpose)."""


@dataclass(frozen=True, slots=True)
class VerpToken:
    """What a verified token says. `delivery_id` is set for bounces, `None` for unsubscribes."""

    purpose: VerpPurpose
    subscriber_id: int
    issue_id: int | None
    delivery_id: int | None


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _read_varints(data: bytes, count: int) -> list[int]:
    numbers, index = [], 0
    for _ in range(count):
        value = shift = 0
        while True:
            if index >= len(data) or shift >= 35:
                raise InvalidVerp
            byte = data[index]
            index += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        numbers.append(value)
    if index != len(data):
        raise InvalidVerp
    return numbers


@lru_cache(maxsize=8)
def _keyed(key: str) -> hmac.HMAC:
    """An HMAC already keyed and fed the domain prefix: copying it per token skips the key
    schedule, which is most of the cost of a token made for every message of a send."""
    return hmac.new(key.encode("utf-8"), _DOMAIN, hashlib.sha256)


def _mac(key: str, payload: bytes) -> bytes:
    mac = _keyed(key).copy()
    mac.update(payload)
    return mac.digest()[:_MAC_BYTES]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def make_verp_token(
    keyring: Keyring,
    purpose: VerpPurpose,
    subscriber_id: int,
    issue_id: int | None = None,
    delivery_id: int | None = None,
) -> str:
    """A signed, lowercase token. Ids are positive (0 encodes "none") and below 2**35."""
    if purpose == "bounce" and delivery_id is None:
        raise ValueError("a bounce token names its delivery")
    if purpose == "unsubscribe" and delivery_id is not None:
        raise ValueError("an unsubscribe token names no delivery")
    if not all(i is None or 0 < i <= MAX_ID for i in (subscriber_id, issue_id, delivery_id)):
        raise ValueError(f"VERP ids must be between 1 and {MAX_ID}")
    ids = (subscriber_id, issue_id or 0, delivery_id or 0)
    payload = bytes([_PURPOSE_BYTE[purpose]]) + b"".join(_varint(i) for i in ids)
    return _b32(payload + _mac(keyring.secret, payload))


def read_verp_token(keyring: Keyring, token: str, *, now: datetime | None = None) -> VerpToken:
    """The token's contents, or InvalidVerp. Case-insensitive; one spelling per token."""
    text = token.strip().lower()
    if not text or len(text) > MAX_TOKEN_CHARS or not re.fullmatch(r"[a-z2-7]+", text):
        raise InvalidVerp
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise InvalidVerp from None
    if _b32(raw) != text or len(raw) < 4 + _MAC_BYTES:
        raise InvalidVerp
    payload, given = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    matched = False
    for key in keyring.verifying_keys(now or datetime.now(UTC)):
        matched |= hmac.compare_digest(_mac(key, payload), given)
    if not matched:
        raise InvalidVerp
    purposes = {byte: name for name, byte in _PURPOSE_BYTE.items()}
    purpose = purposes.get(payload[0])
    if purpose is None:
        raise InvalidVerp
    subscriber, issue, delivery = _read_varints(payload[1:], 3)
    if b"".join(_varint(i) for i in (subscriber, issue, delivery)) != payload[1:]:
        raise InvalidVerp  # an over-long varint: a second spelling of the same ids
    if subscriber == 0 or (purpose == "bounce") != (delivery != 0):
        raise InvalidVerp
    return VerpToken(purpose, subscriber, issue or None, delivery or None)


def verp_address(return_path: str, token: str) -> str:
    """`local+token@domain` from `local@domain`; ValueError if the local part passes 64 octets."""
    local, _, domain = return_path.rpartition("@")
    address = f"{local}+{token}@{domain}"
    if len(f"{local}+{token}".encode()) > LOCAL_PART_LIMIT:
        raise ValueError(f"the VERP address {address} has a local part over 64 octets")
    return address


def bounce_address(
    return_path: str, keyring: Keyring, subscriber_id: int, issue_id: int, delivery_id: int
) -> str:
    """The envelope sender (MAIL FROM) of one delivery."""
    token = make_verp_token(keyring, "bounce", subscriber_id, issue_id, delivery_id)
    return verp_address(return_path, token)


def unsubscribe_mailto(
    return_path: str,
    keyring: Keyring,
    subscriber_id: int,
    issue_id: int | None,
    unsubscribe_token: str | None = None,
) -> str:
    """A List-Unsubscribe `mailto:` URI whose address itself names the subscriber.

    The address carries an `unsubscribe` VERP token, so a client that drops or rewrites the
    subject (or a relay that changes case) still reaches a recognisable request; the subject
    repeats the web token (today's `unsubscribe TOKEN` form) for clients that keep it.
    """
    token = make_verp_token(keyring, "unsubscribe", subscriber_id, issue_id)
    subject = "unsubscribe" + (f" {unsubscribe_token}" if unsubscribe_token else "")
    return f"mailto:{verp_address(return_path, token)}?subject={quote(subject)}"


def _address_pattern(return_path: str) -> re.Pattern[str]:
    local, _, domain = return_path.rpartition("@")
    return re.compile(
        rf"(?<![\w.+-]){re.escape(local)}\+([a-z2-7]{{8,{MAX_TOKEN_CHARS}}})@{re.escape(domain)}"
        r"(?![\w-])",
        re.IGNORECASE,
    )


def find_verp(
    texts: Iterable[str],
    return_path: str,
    keyring: Keyring,
    *,
    purpose: VerpPurpose | None = None,
    now: datetime | None = None,
) -> VerpToken | None:
    """The first verifying token (of `purpose`, if given) in a `local+TOKEN@domain` address.

    Only a token that verifies counts, so searching loosely (any header, quoted text) cannot
    be fooled into naming someone: a forged or damaged address is simply not found.
    """
    pattern = _address_pattern(return_path)
    for text in texts:
        for match in pattern.finditer(text):
            try:
                token = read_verp_token(keyring, match.group(1), now=now)
            except InvalidVerp:
                continue
            if purpose is None or token.purpose == purpose:
                return token
    return None


def envelope_texts(message: Message) -> list[str]:
    """The values of the headers where a relay records the address a message was sent to."""
    texts: list[str] = []
    for name in ENVELOPE_HEADERS:
        texts.extend(str(value) for value in message.get_all(name, []))
    return texts
