"""A database that goes away for a while (a restart, a failover) is waited out, not died of.

`Outage` is one process's view of its database: the moment a call first failed for want of
it, and the moment it came back. `Outage.wait_out(work)` runs a unit of work and, when it fails
because the connection was lost or refused, runs it again from the start with backoff, for
up to `limit` seconds (`database.outage_seconds`) counted from the first failure any thread
of the process saw; past that it raises `DatabaseAway`, one sentence and exit 1. A unit of
work is a whole transaction, so running it again is safe: it was rolled back, or it
committed and doing it again changes nothing (every unit on the send path is written so).

One line is logged when the database goes and one when it returns, however many threads
wait. `returned_at` (wall clock) lets lease and claim expiry count from the database's
return: a process that waited must get the chance to renew before anyone judges it dead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from digest.errors import DigestError

log = logging.getLogger("digest.store.outage")
T = TypeVar("T")

OUTAGE_SECONDS = 120.0
FIRST_PAUSE = 0.05  # seconds before the first new attempt, doubling
LONGEST_PAUSE = 1.0  # a restart takes under a second: look again at least this often

# SQLSTATEs that mean "the server is not there for this session" or "try the transaction
# again": class 08 (connection exception), 57P01-57P03 (admin shutdown, crash shutdown,
# cannot connect now: a restart or recovery), 40001/40P01 (serialisation failure, deadlock)
_RETRIED_CLASSES = ("08",)
_RETRIED_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
# SQLite's transient failures: another process's lock past the busy timeout, a disk hiccup
_SQLITE_TRANSIENT = ("database is locked", "disk i/o error", "database table is locked")


class DatabaseAway(DigestError):
    """The database stayed away longer than `database.outage_seconds`."""


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the database is (for now) out of reach, not that the work is wrong."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return state in _RETRIED_STATES or state.startswith(_RETRIED_CLASSES)
    module = type(orig).__module__
    if module.startswith("psycopg"):
        # no SQLSTATE: the client failed to reach the server (refused, reset, closed)
        name = type(orig).__name__
        return name in ("OperationalError", "InterfaceError")
    if module.startswith("sqlite3"):
        text = str(orig).lower()
        return any(part in text for part in _SQLITE_TRANSIENT)
    return False


class Outage:
    """One process's record of its database's absences; thread-safe."""

    def __init__(self, limit: float = OUTAGE_SECONDS) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic: the first failure of this absence
        self._since_wall: datetime | None = None
        self.returned_at: datetime | None = None  # wall clock: the end of the last absence
        self.epoch = 0  # absences ended so far: a change tells a caller to renew first

    @property
    def away(self) -> bool:
        return self._since is not None

    def failed(self) -> float:
        """A call failed for want of the database: the seconds it has been away."""
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since, self._since_wall = now, datetime.now(UTC)
                log.warning(
                    "the database is out of reach (%s): waiting up to %g s for it to return "
                    "(database.outage_seconds)",
                    _clock(self._since_wall),
                    self.limit,
                )
            return now - self._since

    def succeeded(self) -> None:
        """A call went through: an absence, if there was one, is over."""
        if self._since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._since is None:
                return
            seconds = time.monotonic() - self._since
            self._since = self._since_wall = None
            self.returned_at = datetime.now(UTC)
            self.epoch += 1
            log.warning(
                "the database is back (%s) after %.1f s away; carrying on",
                _clock(self.returned_at),
                seconds,
            )

    def wait_out(
        self,
        work: Callable[[], T],
        *,
        on_away: Callable[[], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        gone: Callable[[], DatabaseAway] | None = None,
    ) -> T:
        """`work()`, run again from the start while the database is away, up to the limit.

        `on_away` runs once, at the first failure of this call (the send path writes what
        it knows to its journal then). Past the limit, or once `cancelled()` (a stop: what
        was known is in the journal by then), raises `gone()` (a DatabaseAway)."""
        pause = FIRST_PAUSE
        told = False
        while True:
            try:
                result = work()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                away = self.failed()
                if not told and on_away is not None:
                    on_away()
                told = True
                if away >= self.limit or (cancelled is not None and cancelled()):
                    raise (gone or self.gone)() from None
                time.sleep(min(pause, max(0.0, self.limit - away)))
                pause = min(pause * 2, LONGEST_PAUSE)
                continue
            self.succeeded()
            return result

    def gone(self) -> DatabaseAway:
        return DatabaseAway(
            f"the database was out of reach for {self.limit:g} s "
            "(database.outage_seconds): stopped."
        )


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")
