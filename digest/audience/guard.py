"""What a sign-up must show before a confirmation mail goes out, beyond the mail limits
(digest.audience.signup): a form served by us long enough ago, a solved proof of work when
one is asked, and an address at a domain we accept.

- The *stamp* is a timestamp signed with the web secret (itsdangerous, its own salt). digest
  serves it with every form it shows (the sign-up page, the one-click confirmation page a
  static snippet's post lands on) and with `/subscribe/start` for the snippet's script. A
  post whose stamp is missing, forged, older than `max_form_age_hours` or younger than
  `min_fill_seconds` (a script posting at once) creates nobody.
- The *challenge* is an ALTCHA proof of work (`altcha`, PoW v2, PBKDF2/SHA-256), signed with
  the web secret and valid for CHALLENGE_MINUTES; `signup.challenge` says when it is asked:
  `always`, `never`, or (`auto`) once `challenge_after` confirmation mails were asked within
  the hour from the same address or its network (/24 for IPv4, /48 for IPv6). Verified
  here, on the server; the widget that solves it is served by digest itself. A solution
  passes one sign-up only: the sign-up spends its challenge (digest.store.challenges).
- Domains: `blocked_domains` (and their subdomains) are refused, and with `block_disposable`
  the services of the `disposable-email-domains` list, unless in `allowed_domains`.

Nothing here talks to a third party: every check is local.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from itsdangerous import BadData, TimestampSigner

CHALLENGE_MINUTES = 20
CHALLENGE_ALGORITHM = "PBKDF2/SHA-256"
_STAMP_SALT = "digest.signup-form"


@dataclass(frozen=True, kw_only=True, slots=True)
class GuardSettings:
    """`signup.*` as the guard reads it, and the web secret that signs stamps and challenges."""

    secret: str
    challenge: Literal["auto", "always", "never"] = "auto"
    challenge_after: int = 3
    challenge_cost: int = 5_000
    min_fill_seconds: float = 2.0
    max_form_age_hours: float = 24.0
    blocked_domains: tuple[str, ...] = ()
    allowed_domains: tuple[str, ...] = ()
    block_disposable: bool = True


StampState = Literal["ok", "missing", "young", "bad"]


def _signer(secret: str) -> TimestampSigner:
    return TimestampSigner(secret, salt=_STAMP_SALT, digest_method=hashlib.sha256)


def make_stamp(settings: GuardSettings, now: datetime) -> str:
    """A signed timestamp of `now`, for a form being served."""
    signer = _signer(settings.secret)
    # itsdangerous reads the clock itself: sign with the given time for tests' clocks
    signer.get_timestamp = lambda: int(now.timestamp())  # type: ignore[method-assign]
    return signer.sign("form").decode("ascii")


def check_stamp(settings: GuardSettings, stamp: str, now: datetime) -> StampState:
    """`ok`, or why not: `missing`, `young` (sent back sooner than `min_fill_seconds`), or
    `bad` (forged, or older than `max_form_age_hours`)."""
    if not stamp:
        return "missing"
    if len(stamp) > 200:
        return "bad"
    try:
        _, issued = _signer(settings.secret).unsign(stamp, return_timestamp=True)
    except (BadData, ValueError):
        return "bad"
    age = now - issued.astimezone(UTC)
    if age < timedelta(seconds=-300) or age > timedelta(hours=settings.max_form_age_hours):
        return "bad"
    if age < timedelta(seconds=settings.min_fill_seconds):
        return "young"
    return "ok"


# -- the proof of work --------------------------------------------------------------------------


def network(ip: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network an address is counted with: its /24 (IPv4) or /48 (IPv6)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


def challenge_needed(settings: GuardSettings, ip: str | None, recent_ips: Iterable[str]) -> bool:
    """Whether this sign-up must solve the challenge: `recent_ips` are the addresses that
    asked for confirmation mails within the hour."""
    if settings.challenge != "auto":
        return settings.challenge == "always"
    if ip is None:
        return True
    own = network(ip)
    count = 0
    for other in recent_ips:
        if other == ip or (own is not None and network(other) == own):
            count += 1
    return count >= settings.challenge_after


def new_challenge(settings: GuardSettings, now: datetime) -> dict[str, Any]:
    """A fresh signed challenge, as the ALTCHA widget takes it (JSON)."""
    from altcha import create_challenge

    challenge = create_challenge(
        CHALLENGE_ALGORITHM,
        settings.challenge_cost,
        expires_at=now + timedelta(minutes=CHALLENGE_MINUTES),
        hmac_secret=_challenge_key(settings.secret),
    )
    data: dict[str, Any] = challenge.to_dict()
    return data


@dataclass(frozen=True, slots=True)
class Solved:
    """A verified solution: its challenge's key (the SHA-256 of the challenge's signature,
    what digest.store.challenges spends) and when the challenge expires."""

    key: str
    expires_at: datetime


def solution(settings: GuardSettings, payload: str, now: datetime) -> Solved | None:
    """The challenge `payload` (the widget's base64 answer) solves, when it is one we signed
    and not expired; None otherwise. Whether it was used before is the store's to say
    (digest.store.challenges.spend): a solution passes one sign-up only."""
    from altcha import Payload, verify_solution

    if not payload or len(payload) > 10_000:
        return None
    try:
        parsed = Payload.from_dict(json.loads(base64.b64decode(payload, validate=True)))
        expires = parsed.challenge.parameters.expires_at
        signature = parsed.challenge.signature
        if expires is None or not signature or datetime.fromtimestamp(expires, UTC) < now:
            return None
        result = verify_solution(parsed, _challenge_key(settings.secret))
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        return None
    if not result.verified:
        return None
    key = hashlib.sha256(signature.encode("utf-8")).hexdigest()
    return Solved(key=key, expires_at=datetime.fromtimestamp(expires, UTC))


def _challenge_key(secret: str) -> str:
    return hashlib.sha256(b"digest.altcha\0" + secret.encode()).hexdigest()


# -- domains ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _disposable() -> frozenset[str]:
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


def _within(domain: str, listed: Iterable[str]) -> bool:
    return any(domain == entry or domain.endswith("." + entry) for entry in listed)


def domain_refused(settings: GuardSettings, address: str) -> bool:
    """Whether the address's domain is blocked or a disposable-address service."""
    domain = address.rpartition("@")[2].lower().rstrip(".")
    if _within(domain, settings.allowed_domains):
        return False
    if _within(domain, settings.blocked_domains):
        return True
    if not settings.block_disposable:
        return False
    disposable = _disposable()
    parts = domain.split(".")
    return any(".".join(parts[i:]) in disposable for i in range(len(parts) - 1))
