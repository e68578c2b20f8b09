"""Administrators of the desk: who they are, how they prove it, how long a login lasts, and
how fast someone may guess.

- **Passwords** are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
  recommended profile); a hash made with weaker parameters is replaced at the next login.
  A name that does not exist costs one verification too, so the time of an answer does not
  tell which names exist.
- **TOTP** (pyotp, RFC 6238, 30-second steps, one step of drift either way) is optional:
  enrolment keeps the secret as pending until a code made from it is given back, and a code's
  time step is remembered so it cannot be replayed.
- **Sessions** are rows (digest.store.admins): the cookie holds a random 256-bit secret, the
  row its SHA-256. A session ends when revoked ("log out", "log out everywhere"), after
  `IDLE` without a request, or `ABSOLUTE` after the login, whichever comes first. Each has
  its own CSRF token.
- **Throttling**: after `LIMIT` failed logins within `WINDOW` for one account or from one
  address, further attempts get `Throttled` (429 with Retry-After) for `FIRST_WAIT`,
  doubling with each further failure up to `MAX_WAIT`, for as long as the failures keep
  coming less than `WINDOW` apart (a successful login ends the run). The address limit
  holds for every account; the account limit holds for the addresses that failed against
  it, so a guesser cannot lock the owner out: a correct login from another address still
  works (an address with no failure of its own gets its attempt checked; if wrong, it is
  refused as well).
- Every login, failed login, logout and change here is an audit event (kind `audit`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from digest.errors import DigestError, UsageError
from digest.store import admins
from digest.store.events import append
from digest.store.tables import Admin

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte-long "password" is an attack
IDLE = timedelta(hours=1)
ABSOLUTE = timedelta(hours=12)
WINDOW = timedelta(minutes=15)
LIMIT = 5
FIRST_WAIT = timedelta(minutes=1)
MAX_WAIT = timedelta(minutes=15)
LOOKBACK = timedelta(days=1)  # how far back a run of failures is read
TOTP_STEP = 30
ISSUER = "digest"

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not anyone's password")


class Throttled(DigestError):
    """Too many failed logins: try again in `retry_after` seconds (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds.")
        self.retry_after = retry_after


class LoginFailed(DigestError):
    """Wrong name, password or code (one message for all three: nothing to tell apart)."""

    def __init__(self) -> None:
        super().__init__("wrong name, password or code.")


@dataclass(frozen=True, slots=True)
class Who:
    """The administrator a live session belongs to."""

    admin_id: int
    name: str
    session_id: int
    csrf: str
    totp: bool


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: the cookie's secret (shown to the browser only) and who it is."""

    secret: str
    who: Who


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password must have at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"the password must have at most {MAX_PASSWORD} characters.")


def add_user(session: Session, name: str, password: str, now: datetime) -> Admin:
    """Add administrator NAME (the desk opens once one exists)."""
    if not NAME.match(name):
        raise UsageError(
            f"administrator name {name[:40]!r}: use 1 to 40 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if admins.by_name(session, name) is not None:
        raise UsageError(f"administrator {name} exists already.")
    admin = admins.add(session, name, hash_password(password), now)
    append(session, admins.AUDIT, "admin-added", actor="cli", detail=name, created_at=now)
    return admin


def set_password(session: Session, name: str, password: str, now: datetime, actor: str) -> None:
    """Change NAME's password and end every session of theirs."""
    admin = admins.by_name(session, name)
    if admin is None:
        raise UsageError(f"there is no administrator {name}.")
    admin.password_hash = hash_password(password)
    admins.revoke_all(session, admin.id, now)
    append(session, admins.AUDIT, "password-changed", actor=actor, detail=name, created_at=now)


def exists(session: Session) -> bool:
    return admins.count(session) > 0


# -- logging in ---------------------------------------------------------------------------------


def streak(attempts: list[tuple[datetime, bool]]) -> list[datetime]:
    """The latest run of failures (oldest first) from attempts (oldest first): back from the
    newest, until a successful login or a gap longer than `WINDOW`."""
    run: list[datetime] = []
    for when, failed in reversed(attempts):
        if not failed or (run and run[-1] - when > WINDOW):
            break
        run.append(when)
    return run[::-1]


def wait_after(failures: list[datetime], now: datetime) -> int:
    """Seconds before another attempt, given a run of failures (oldest first): none until
    `LIMIT` of them fall within `WINDOW`; from that failure on `FIRST_WAIT`, doubling with
    each further one up to `MAX_WAIT`, counted from the latest."""
    trigger = next(
        (
            i
            for i in range(LIMIT - 1, len(failures))
            if failures[i] - failures[i - LIMIT + 1] <= WINDOW
        ),
        None,
    )
    if trigger is None:
        return 0
    wait = min(FIRST_WAIT * 2 ** (len(failures) - 1 - trigger), MAX_WAIT)
    remaining: float = (failures[-1] + wait - now).total_seconds()
    return max(0, math.ceil(remaining))


def throttle(session: Session, name: str, ip: str | None, now: datetime) -> None:
    """Raise Throttled if this attempt must wait (see the module's docstring)."""
    account = _account(name)
    rows = admins.login_attempts(session, now - LOOKBACK, account=account, ip=ip)
    from_ip = [(when, failed) for when, failed, _, address in rows if address == ip]
    for_account = [(when, failed) for when, failed, actor, _ in rows if actor == account]
    tried_here = any(
        failed and actor == account and address == ip for _, failed, actor, address in rows
    )
    wait = wait_after(streak(from_ip), now) if ip is not None else 0
    if tried_here:
        wait = max(wait, wait_after(streak(for_account), now))
    if wait:
        raise Throttled(wait)


def log_in(
    session: Session,
    name: str,
    password: str,
    code: str,
    *,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> Opened | None:
    """Check the name, password and (when on) TOTP code; open a session. Raises Throttled
    before checking anything when this address or account must wait; None when anything is
    wrong, the failure recorded in this transaction (so the caller lets it commit: raising
    here would roll the record back with it)."""
    throttle(session, name, ip, now)
    admin = admins.by_name(session, name) if len(password) <= MAX_PASSWORD else None
    good = _verify(admin.password_hash if admin else _DUMMY, password[:MAX_PASSWORD])
    if admin is not None and good and admin.totp_secret is not None:
        good = _accept_code(admin, admin.totp_secret, code, now)
    if admin is None or not good:
        append(
            session,
            admins.AUDIT,
            admins.LOGIN_FAILED,
            actor=_account(name),
            ip=ip,
            user_agent=user_agent,
            created_at=now,
        )
        return None
    if _hasher.check_needs_rehash(admin.password_hash):
        admin.password_hash = _hasher.hash(password)
    secret = secrets.token_urlsafe(32)
    row = admins.open_session(
        session,
        admin,
        secret_hash=_digest(secret),
        csrf=secrets.token_urlsafe(32),
        now=now,
        ip=ip,
        user_agent=user_agent,
    )
    audit(session, admin.name, admins.LOGIN, ip=ip, user_agent=user_agent, now=now)
    who = Who(admin.id, admin.name, row.id, row.csrf, admin.totp_secret is not None)
    return Opened(secret, who)


def _account(name: str) -> str:
    return name.strip().lower()[:100]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def current(session: Session, secret: str, now: datetime) -> Who | None:
    """The administrator of the session whose cookie carries `secret`, if it is live; its
    idle clock restarts (to the minute, so a page of requests writes once)."""
    found = admins.session_by_hash(session, _digest(secret))
    if found is None:
        return None
    row, admin = found
    if row.revoked_at is not None or now - row.seen_at > IDLE or now - row.created_at > ABSOLUTE:
        return None
    if now - row.seen_at > timedelta(minutes=1):
        row.seen_at = now
    return Who(admin.id, admin.name, row.id, row.csrf, admin.totp_secret is not None)


def csrf_matches(who: Who, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(who.csrf, presented)


def log_out(session: Session, who: Who, now: datetime, ip: str | None) -> None:
    admins.revoke(session, who.session_id, now)
    audit(session, who.name, "logout", ip=ip, now=now)


def log_out_everywhere(session: Session, who: Who, now: datetime, ip: str | None) -> int:
    """End every session of this administrator, this one included."""
    ended = admins.revoke_all(session, who.admin_id, now)
    audit(session, who.name, "logout-everywhere", ip=ip, detail=f"{ended} sessions", now=now)
    return ended


audit = admins.audit  # an administrative action in the event log (digest.store.admins)


# -- TOTP -------------------------------------------------------------------------------------


def start_totp(session: Session, who: Who) -> str:
    """A new pending TOTP secret for the administrator (on once `confirm_totp` accepts a
    code made from it); returns it."""
    admin = _admin(session, who)
    admin.totp_pending = pyotp.random_base32()
    return admin.totp_pending


def pending_totp(session: Session, who: Who) -> str | None:
    return _admin(session, who).totp_pending


def totp_uri(name: str, secret: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def confirm_totp(session: Session, who: Who, code: str, now: datetime, ip: str | None) -> bool:
    """Turn the pending secret on if `code` was made from it."""
    admin = _admin(session, who)
    if admin.totp_pending is None or not _accept_code(admin, admin.totp_pending, code, now):
        return False
    admin.totp_secret, admin.totp_pending = admin.totp_pending, None
    audit(session, who.name, "totp-on", ip=ip, now=now)
    return True


def turn_off_totp(session: Session, who: Who, now: datetime, ip: str | None) -> None:
    admin = _admin(session, who)
    admin.totp_secret = admin.totp_pending = None
    admin.totp_last_step = None
    audit(session, who.name, "totp-off", ip=ip, now=now)


def _accept_code(admin: Admin, secret: str, code: str, now: datetime) -> bool:
    """`code` is the TOTP of `secret` at this step or one either side, and its step is later
    than the last one accepted (a code works once)."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"[0-9]{6}", code):
        return False
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // TOTP_STEP
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.at(candidate * TOTP_STEP), code):
            if admin.totp_last_step is not None and candidate <= admin.totp_last_step:
                return False
            admin.totp_last_step = candidate
            return True
    return False


def _admin(session: Session, who: Who) -> Admin:
    admin = session.get(Admin, who.admin_id)
    if admin is None:
        raise DigestError(f"administrator {who.name} no longer exists.")
    return admin


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
