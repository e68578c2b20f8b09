"""Administrators of the desk and their sessions: rows in, rows out (the rules are in
digest.access.admins). Failed logins are audit events in the event log (kind `audit`,
method `login-failed`), so the throttle reads them from there (`failures_since`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from digest.store.events import append
from digest.store.tables import Admin, AdminSession, Event

AUDIT = "audit"  # the event kind of every administrative action
LOGIN_FAILED = "login-failed"


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Admin)) or 0)


def add(session: Session, name: str, password_hash: str, now: datetime) -> Admin:
    admin = Admin(name=name, password_hash=password_hash, created_at=now)
    session.add(admin)
    session.flush()
    return admin


def by_name(session: Session, name: str) -> Admin | None:
    return session.scalar(select(Admin).where(Admin.name == name))


def listing(session: Session) -> list[Admin]:
    return list(session.scalars(select(Admin).order_by(Admin.name)))


def open_session(
    session: Session,
    admin: Admin,
    *,
    secret_hash: str,
    csrf: str,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> AdminSession:
    row = AdminSession(
        secret_hash=secret_hash,
        csrf=csrf,
        admin_id=admin.id,
        created_at=now,
        seen_at=now,
        ip=ip,
        user_agent=user_agent,
    )
    session.add(row)
    session.flush()
    return row


def session_by_hash(session: Session, secret_hash: str) -> tuple[AdminSession, Admin] | None:
    """The session whose secret hashes to `secret_hash`, with its administrator (revoked or
    expired ones too: the caller judges)."""
    row = session.execute(
        select(AdminSession, Admin)
        .join(Admin, Admin.id == AdminSession.admin_id)
        .where(AdminSession.secret_hash == secret_hash)
    ).first()
    return (row[0], row[1]) if row is not None else None


def sessions_of(session: Session, admin_id: int, now: datetime) -> list[AdminSession]:
    """The administrator's sessions not revoked, newest first."""
    return list(
        session.scalars(
            select(AdminSession)
            .where(AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None))
            .order_by(AdminSession.id.desc())
        )
    )


def revoke(session: Session, session_id: int, now: datetime) -> None:
    session.execute(
        update(AdminSession)
        .where(AdminSession.id == session_id, AdminSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all(session: Session, admin_id: int, now: datetime) -> int:
    """Revoke every session of the administrator; how many were open."""
    result = session.execute(
        update(AdminSession)
        .where(AdminSession.admin_id == admin_id, AdminSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


LOGIN = "login"


def login_attempts(
    session: Session, since: datetime, *, account: str, ip: str | None
) -> list[tuple[datetime, bool, str, str | None]]:
    """Logins and failed logins at or after `since` for `account` (any case) or from `ip`,
    oldest first: (when, failed, account lower-cased, address)."""
    matches = [func.lower(Event.actor) == account]
    if ip is not None:
        matches.append(Event.ip == ip)
    rows = session.execute(
        select(Event.created_at, Event.method, Event.actor, Event.ip)
        .where(
            Event.kind == AUDIT,
            Event.method.in_((LOGIN_FAILED, LOGIN)),
            Event.created_at >= since,
            or_(*matches),
        )
        .order_by(Event.created_at, Event.id)
    )
    return [
        (when, method == LOGIN_FAILED, (actor or "").lower(), address)
        for when, method, actor, address in rows
    ]


def audit_page(session: Session, *, before: int | None = None, limit: int = 50) -> list[Event]:
    """Audit events newest first, older than event id `before` when given (a keyset page)."""
    query = select(Event).where(Event.kind == AUDIT).order_by(Event.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Event.id < before)
    return list(session.scalars(query))


def audit(
    session: Session,
    actor: str,
    action: str,
    *,
    now: datetime,
    ip: str | None = None,
    user_agent: str | None = None,
    detail: str | None = None,
    subscriber_id: int | None = None,
    issue_id: int | None = None,
) -> None:
    """An administrative action in the event log (kind `audit`, `method` the action), in the
    transaction of the change: who, what, when, from where."""
    append(
        session,
        AUDIT,
        action,
        actor=actor,
        ip=ip,
        user_agent=user_agent,
        detail=detail,
        subscriber_id=subscriber_id,
        issue_id=issue_id,
        created_at=now,
    )
