"""API tokens: create, find by the hash of a presented secret, record use, list, revoke."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.store.tables import ApiToken


def create(
    session: Session,
    *,
    name: str,
    secret_hash: str,
    hint: str,
    scope: str,
    allow_confirmed: bool,
    per_minute: int,
) -> ApiToken:
    token = ApiToken(
        name=name,
        secret_hash=secret_hash,
        hint=hint,
        scope=scope,
        allow_confirmed=allow_confirmed,
        per_minute=per_minute,
    )
    session.add(token)
    session.flush()
    return token


def by_name(session: Session, name: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.name == name))


def by_hash(session: Session, secret_hash: str) -> ApiToken | None:
    """The token whose secret hashes to this, revoked or not (the caller decides)."""
    return session.scalar(select(ApiToken).where(ApiToken.secret_hash == secret_hash))


def listing(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def used(session: Session, token_id: int, when: datetime, before: datetime) -> None:
    """Record a use at `when` unless one was recorded after `before` (one write a minute,
    not one per request)."""
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < before),
        )
        .values(last_used_at=when)
    )


def revoke(session: Session, token: ApiToken, when: datetime) -> bool:
    if token.revoked_at is not None:
        return False
    token.revoked_at = when
    return True
