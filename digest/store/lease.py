"""A lease in the database: only one process at a time runs a send, on SQLite and PostgreSQL.

A lease is a row (name, holder, since, expiry). Taking it succeeds when the row is absent,
expired, already ours, or held by a process of this host that no longer exists (a `kill -9`
needs no waiting). A holder renews it from a heartbeat while it works and deletes it when
done; a holder whose heartbeat stopped loses it at its expiry. On SQLite the write
transaction (BEGIN IMMEDIATE) makes the check-and-set atomic; on PostgreSQL the row is
locked, and two first-time inserts collide on the primary key, which the loser reads as
"someone else has it".

Holders and workers are named `host:pid`, readable in `digest status` and in the ledger.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.database import Database, server_started
from digest.store.outage import OUTAGE_SECONDS
from digest.store.tables import Lease, utcnow

SEND_LEASE = "send"


def worker_name() -> str:
    """This process as a lease holder or a delivery's worker: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_running(name: str) -> bool:
    """False only when `name` is a `host:pid` of this host whose process is gone; a name from
    another host (or of another form) cannot be checked here and counts as running."""
    host, _, pid = name.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A dead child nobody reaped yet still answers kill(0) (Linux tells from /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True, slots=True)
class Holder:
    name: str
    since: datetime
    expires_at: datetime

    def describe(self) -> str:
        """`host:pid since 2026-11-23 10:00:03 UTC` for messages."""
        return f"{self.name} since {self.since.strftime('%Y-%m-%d %H:%M:%S %Z')}"


def expiry_judge(session: Session, ttl: timedelta) -> Callable[[datetime, datetime | None], bool]:
    """Whether an expiry has passed, counted from the database's return: nobody could renew
    while it was away, so a lease or a claim taken before the database server last started
    (PostgreSQL), or before this process saw it return from an outage, does not expire
    sooner than `ttl` after that return — a holder that waited it out gets the time to renew
    first. One that expired more than `database.outage_seconds` before the return is past at
    once (its holder had given up, or was dead, before the database came back), and one taken
    after the return expires as it says. The judge takes (expiry, taken at)."""
    now = utcnow()
    outage = session.info.get("outage")
    limit = timedelta(seconds=float(getattr(outage, "limit", OUTAGE_SECONDS)))
    returned = getattr(outage, "returned_at", None)
    moments = [m for m in (server_started(session), returned) if m is not None]
    back = max(moments) if moments else None

    def passed(expires: datetime, taken: datetime | None) -> bool:
        if expires > now:
            return False
        if back is None or (taken is not None and taken >= back):
            return True
        return expires < back - limit or now >= back + ttl

    return passed


def acquire(database: Database, name: str, holder: str, ttl: timedelta) -> Holder | None:
    """Take the lease; None on success, else who holds it. A database away is waited out."""

    def take(session: Session) -> Holder | None:
        now = utcnow()
        row = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
        if row is None:
            session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
            return None
        if row.holder == holder:
            row.expires_at = now + ttl
            return None
        if not expiry_judge(session, ttl)(row.expires_at, row.acquired_at) and is_running(
            row.holder
        ):
            return Holder(row.holder, row.acquired_at, row.expires_at)
        row.holder, row.acquired_at, row.expires_at = holder, now, now + ttl
        return None

    try:
        return database.run_session(take)
    except IntegrityError:
        current = current_holder(database, name)
        now = utcnow()
        return current or Holder("another process", now, now + ttl)


def renew(database: Database, name: str, holder: str, ttl: timedelta) -> bool:
    """Extend our lease; False when it is no longer ours (taken over after it expired)."""

    def extend(session: Session) -> bool:
        row = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
        if row is None or row.holder != holder:
            return False
        row.expires_at = utcnow() + ttl
        return True

    return database.run_session(extend)


def release(database: Database, name: str, holder: str) -> None:
    def drop(session: Session) -> None:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))

    database.run_session(drop)


def current_holder(database: Database, name: str) -> Holder | None:
    """The live holder of the lease, if any (an expired lease or a dead local holder is free)."""

    def look(session: Session) -> Holder | None:
        row = session.scalar(select(Lease).where(Lease.name == name))
        if row is None or row.expires_at <= utcnow() or not is_running(row.holder):
            return None
        return Holder(row.holder, row.acquired_at, row.expires_at)

    return database.run_session(look)


class Heartbeat:
    """Calls each beat every `interval` in a background thread while a send runs.

    A beat returns False when what it renews is lost (the lease was taken over): `on_lost`
    is then called once, so the send stops instead of racing its successor. A beat that
    fails (the database briefly unreachable) is retried on the next one.
    """

    def __init__(
        self,
        interval: float,
        beats: list[Callable[[], bool]],
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.interval, self.beats, self.on_lost = interval, beats, on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for beat in list(self.beats):
                try:
                    alive = beat()
                except Exception:  # retried on the next beat
                    continue
                if not alive and not self.lost:
                    self.lost = True
                    if self.on_lost is not None:
                        self.on_lost()
