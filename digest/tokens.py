"""Signed tokens for the links in every email: unsubscribe, preferences, confirm.

A token is `<subscriber>.<issue>.<binding>.<signature>` (ids in base 36; the binding is the
subscriber's `token_key`, a few random bytes of their row), signed with HMAC-SHA256 by
itsdangerous with the purpose as salt, so a preferences token can never confirm a sign-up.
The binding makes a token one person's: erasing them clears their key, so their old links
reach nobody, even if an id were ever used again (`digest.store.subscribers.by_token`
compares it). Tokens made before the binding existed (`<subscriber>.<issue>.<signature>`)
still verify, and are honoured only for rows that have no key either.
Verification is constant-time (itsdangerous compares with `hmac.compare_digest`). Confirmation
tokens also carry a timestamp and expire. Rotation: a previous secret verifies only inside the
overlap after `rotated_at` (`rotation_overlap_days`), never before it and never after.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from itsdangerous import BadData, Signer, TimestampSigner
from itsdangerous.encoding import base64_decode, bytes_to_int

Purpose = Literal["unsubscribe", "preferences", "confirm"]
CONFIRM_MAX_AGE = timedelta(days=7)
_MAX_TOKEN = 200
_BASE36 = re.compile(r"[0-9a-z]{1,13}")


class InvalidToken(Exception):
    """Any token we do not accept. Deliberately carries no detail for the user."""


@dataclass(frozen=True, slots=True)
class TokenData:
    subscriber_id: int
    issue_id: int | None
    purpose: Purpose
    binding: str | None = None  # the subscriber's token_key; None in a token from before it


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current secret, plus a previous one accepted only inside its overlap window:
    from `previous_from` (the rotation; None: no lower bound) until `previous_until`. A
    previous secret without `previous_until` is never accepted: an old secret that verifies
    for ever would make a rotation pointless (the configuration refuses one anyway)."""

    secret: str
    previous: str | None = None
    previous_until: datetime | None = None
    previous_from: datetime | None = None

    def verifying_keys(self, now: datetime) -> list[str]:
        """Oldest first, current last: itsdangerous signs with the last and tries them all."""
        keys = []
        if self.previous and self._in_overlap(now):
            keys.append(self.previous)
        keys.append(self.secret)
        return keys

    def _in_overlap(self, now: datetime) -> bool:
        if self.previous_until is None or now >= self.previous_until:
            return False
        return self.previous_from is None or self.previous_from <= now


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if number == 0:
        return "0"
    out = []
    while number:
        number, rest = divmod(number, 36)
        out.append(digits[rest])
    return "".join(reversed(out))


@lru_cache(maxsize=64)
def _signer(keys: tuple[str, ...], purpose: Purpose) -> Signer:
    """Built once per key set and purpose: the send path makes two tokens per message."""
    cls = TimestampSigner if purpose == "confirm" else Signer
    return cls(list(keys), salt=f"digest.{purpose}", digest_method=hashlib.sha256)


def make_token(
    keyring: Keyring,
    purpose: Purpose,
    subscriber_id: int,
    issue_id: int | None = None,
    binding: str | None = None,
) -> str:
    payload = f"{_b36(subscriber_id)}.{_b36(issue_id) if issue_id is not None else '-'}"
    if binding is not None:
        if not binding or not all(c.isascii() and (c.isalnum() or c in "-_") for c in binding):
            raise ValueError("a token binding is URL-safe base64 characters")
        payload += f".{binding}"
    return _signer((keyring.secret,), purpose).sign(payload).decode("ascii")


def read_token(
    keyring: Keyring, purpose: Purpose, token: str, *, now: datetime | None = None
) -> TokenData:
    """The token's contents, or InvalidToken for anything tampered, truncated or expired.

    The signature is recomputed for the exact signed text and compared, in constant time, with
    the canonical encoding: base64 allows aliases (padding, unused low bits) that itsdangerous'
    own `unsign` would accept, and a token must have exactly one spelling.
    """
    now = now or datetime.now(UTC)
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        raise InvalidToken
    signed, _, signature = token.rpartition(".")
    given = signature.encode("ascii")
    matched = False
    for key in keyring.verifying_keys(now):
        expected = _signer((key,), purpose).get_signature(signed)
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise InvalidToken
    try:
        if purpose == "confirm":
            signed, _, stamp = signed.rpartition(".")
            signed_at = datetime.fromtimestamp(bytes_to_int(base64_decode(stamp)), tz=UTC)
            skew = timedelta(minutes=5)
            if not -skew <= now - signed_at <= CONFIRM_MAX_AGE + skew:
                raise InvalidToken
        subscriber, issue, *bound = signed.split(".")
        if len(bound) > 1 or (bound and not bound[0]):
            raise InvalidToken
        return TokenData(
            subscriber_id=int(subscriber, 36),
            issue_id=None if issue == "-" else int(issue, 36),
            purpose=purpose,
            binding=bound[0] if bound else None,
        )
    except (BadData, ValueError, OverflowError, OSError):
        raise InvalidToken from None


# -- click links (`tracking.clicks`) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClickData:
    """What a click link names: the issue and the link's index among its posts, and with
    `tracking.clicks: personal` the delivery (None in aggregate mode)."""

    issue_id: int
    link: int
    delivery_id: int | None = None


def make_click_token(
    keyring: Keyring, issue_id: int, link: int, delivery_id: int | None = None
) -> str:
    """`<issue>.<link>[.<delivery>].<signature>` (base 36), signed with its own salt: a
    click token can never unsubscribe anyone, nor an unsubscribe token count a click."""
    payload = f"{_b36(issue_id)}.{_b36(link)}"
    if delivery_id is not None:
        payload += f".{_b36(delivery_id)}"
    return _click_signer((keyring.secret,)).sign(payload).decode("ascii")


@lru_cache(maxsize=16)
def _click_signer(keys: tuple[str, ...]) -> Signer:
    return Signer(list(keys), salt="digest.click", digest_method=hashlib.sha256)


class ClickTokens:
    """`make_click_token` for the links of one issue, made many times over (with
    `tracking.clicks: personal`, each post link of each recipient's message): the key is
    derived, and HMAC's inner and outer pads hashed (RFC 2104: the key, 32 bytes, fits one
    SHA-256 block), once here, so a token costs two copies of a hash and its few bytes. The
    same tokens, byte for byte, as `make_click_token` (a test holds them equal)."""

    def __init__(self, keyring: Keyring, issue_id: int) -> None:
        key = _click_signer((keyring.secret,)).derive_key().ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))
        self._issue = _b36(issue_id)
        self._heads: dict[int, str] = {}

    def links(self, links: Iterable[int], delivery_id: int | None) -> dict[int, str]:
        """Each of `links`' tokens, naming `delivery_id` (none: an aggregate token)."""
        tail = "" if delivery_id is None else f".{_b36(delivery_id)}"
        heads = self._heads
        tokens = {}
        for link in links:
            head = heads.get(link)
            if head is None:
                head = heads[link] = f"{self._issue}.{_b36(link)}"
            payload = (head + tail).encode("ascii")
            inner = self._inner.copy()
            inner.update(payload)
            outer = self._outer.copy()
            outer.update(inner.digest())
            signature = binascii.b2a_base64(outer.digest(), newline=False)
            tokens[link] = (payload + b"." + signature.translate(_URLSAFE).rstrip(b"=")).decode()
        return tokens


_BLOCK = 64  # SHA-256's block, in bytes
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64 as itsdangerous writes it (no padding)


def read_click_token(keyring: Keyring, token: str, *, now: datetime | None = None) -> ClickData:
    """The click token's contents, or InvalidToken for anything changed (a link index, an
    issue, a delivery, a character of the signature): compared in constant time."""
    now = now or datetime.now(UTC)
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        raise InvalidToken
    signed, _, signature = token.rpartition(".")
    matched = False
    for key in keyring.verifying_keys(now):
        expected = _click_signer((key,)).get_signature(signed)
        matched |= hmac.compare_digest(expected, signature.encode("ascii"))
    if not matched:
        raise InvalidToken
    parts = signed.split(".")
    if len(parts) not in (2, 3) or not all(
        (p.isalnum() and p.islower()) or p.isdigit() for p in parts
    ):
        raise InvalidToken
    try:
        numbers = [int(p, 36) for p in parts]
    except ValueError:
        raise InvalidToken from None
    return ClickData(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)
