"""Bearer tokens of the HTTP API: made, checked, listed and revoked (`digest admin token`).

A token is `dgt_` and 43 random URL-safe characters (256 bits): it is shown once, when it is
made, and only its SHA-256 is stored. A plain hash is enough for a secret that long (nothing
to guess, so nothing to slow down), and it lets a request find its token with one indexed
lookup. Each token has a scope (`read`: GET only; `write`: also PUT and DELETE), may be
allowed to add people as already confirmed (`allow_confirmed`, only with `write`), and a
limit of requests per minute. Its last use is recorded to the minute; revoking it takes
effect on the next request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from digest.errors import DigestError, UsageError
from digest.store import apitokens
from digest.store.tables import ApiToken, utcnow

PREFIX = "dgt_"
SCOPES = ("read", "write")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
DEFAULT_PER_MINUTE = 600
USE_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a request with a valid token may do."""

    id: int
    name: str
    scope: str
    allow_confirmed: bool
    per_minute: int

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


@dataclass(frozen=True, slots=True)
class Listed:
    name: str
    hint: str
    scope: str
    allow_confirmed: bool
    per_minute: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def create(
    session: Session,
    name: str,
    *,
    scope: str,
    allow_confirmed: bool = False,
    per_minute: int = DEFAULT_PER_MINUTE,
) -> str:
    """Make a token and return its secret (the only time it exists outside the caller)."""
    if not NAME.match(name):
        raise UsageError(
            f"token name {name[:40]!r}: use 1 to 32 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        )
    if scope not in SCOPES:
        raise UsageError(f"scope {scope!r} is not one of {', '.join(SCOPES)}.")
    if allow_confirmed and scope != "write":
        raise UsageError("--allow-confirmed needs --scope write.")
    if not 1 <= per_minute <= 1_000_000:
        raise UsageError("--per-minute must be between 1 and 1000000.")
    if apitokens.by_name(session, name) is not None:
        raise DigestError(
            f"a token named {name!r} exists (or existed: revoked names are not reused, so "
            "that consent recorded with a token keeps naming one); choose another name."
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    apitokens.create(
        session,
        name=name,
        secret_hash=digest_of(secret),
        hint=secret[: len(PREFIX) + 4],
        scope=scope,
        allow_confirmed=allow_confirmed,
        per_minute=per_minute,
    )
    return secret


def check(session: Session, presented: str, now: datetime | None = None) -> Grant | None:
    """The grant of a valid, unrevoked token (its use recorded), or None."""
    if not presented.startswith(PREFIX) or len(presented) > 200:
        return None
    token = apitokens.by_hash(session, digest_of(presented))
    if token is None or token.revoked_at is not None:
        return None
    moment = now or utcnow()
    apitokens.used(session, token.id, moment, moment - USE_PRECISION)
    return Grant(token.id, token.name, token.scope, token.allow_confirmed, token.per_minute)


def listing(session: Session) -> list[Listed]:
    return [_listed(token) for token in apitokens.listing(session)]


def revoke(session: Session, name: str) -> bool:
    """Revoke the token named `name`; False if it already was. DigestError if none is."""
    token = apitokens.by_name(session, name)
    if token is None:
        raise DigestError(f"there is no token named {name!r}.")
    return apitokens.revoke(session, token, utcnow())


def _listed(token: ApiToken) -> Listed:
    return Listed(
        token.name,
        token.hint,
        token.scope,
        token.allow_confirmed,
        token.per_minute,
        token.created_at,
        token.last_used_at,
        token.revoked_at,
    )
