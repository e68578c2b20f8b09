"""A lease in the database: only one process at a time runs a send, on SQLite and PostgreSQL.

A lease is a row (name, holder, expiry). Taking it succeeds when the row is absent, expired or
already ours; a holder renews it while it works and deletes it when done. A crashed holder's
lease simply expires. On SQLite the write transaction (BEGIN IMMEDIATE) makes the check-and-
set atomic; on PostgreSQL the row is locked, and two first-time inserts collide on the primary
key, which the loser reads as "someone else has it".
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from digest.store.database import Database
from digest.store.tables import Lease, utcnow

SEND_LEASE = "send"


def holder_name() -> str:
    """Who we are, readable in `digest status`: host, process and a unique suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Holder:
    name: str
    expires_at: datetime


def acquire(database: Database, name: str, holder: str, ttl: timedelta) -> Holder | None:
    """Take the lease; None on success, else who holds it."""
    now = utcnow()
    try:
        with database.session() as session:
            row = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
            if row is None:
                session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
                return None
            if row.holder != holder and row.expires_at > now:
                return Holder(row.holder, row.expires_at)
            row.holder, row.expires_at = holder, now + ttl
            return None
    except IntegrityError:
        current = current_holder(database, name)
        return current or Holder("another process", now + ttl)


def renew(database: Database, name: str, holder: str, ttl: timedelta) -> bool:
    with database.session() as session:
        row = session.scalar(select(Lease).where(Lease.name == name).with_for_update())
        if row is None or row.holder != holder:
            return False
        row.expires_at = utcnow() + ttl
        return True


def release(database: Database, name: str, holder: str) -> None:
    with database.session() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def current_holder(database: Database, name: str) -> Holder | None:
    """The live holder of the lease, if any (an expired lease counts as free)."""
    with database.session() as session:
        row = session.scalar(select(Lease).where(Lease.name == name))
        if row is None or row.expires_at <= utcnow():
            return None
        return Holder(row.holder, row.expires_at)


class Heartbeat:
    """Renews a lease every `ttl / 3` in a background thread while a send runs."""

    def __init__(self, database: Database, name: str, holder: str, ttl: timedelta) -> None:
        self.database, self.name, self.holder, self.ttl = database, name, holder, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                if not renew(self.database, self.name, self.holder, self.ttl):
                    self.lost = True
            except Exception:  # a failed renewal is retried on the next beat
                continue
