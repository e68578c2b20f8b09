"""`digest send --worker`: one more sending process for the issue being sent, on any machine.

The process holding the send lease (`digest send`, `digest schedule`) plans the issue,
creates it and settles it; a worker only delivers: it joins the issue that is `sending`
with deliveries still queued and claims from the same ledger as every other sender
(digest.store.deliveries: claims with SKIP LOCKED, named `host:pid`, kept by a heartbeat,
taken back when the worker dies). Its messages take their slots from the rate schedule all
senders share (digest.store.rate), so the limits hold however many workers join.

Only on PostgreSQL: SQLite is one machine's database, and there `digest send` already
starts one sending process per core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from digest.config.presend import check_sendable, check_state_dir
from digest.config.schema import Config
from digest.config.sending import delivery_settings
from digest.delivery.engine import Summary
from digest.delivery.journal import replay
from digest.delivery.settle import job_for
from digest.delivery.stop import Stop, on_signals
from digest.delivery.workers import deliver
from digest.errors import DigestError
from digest.store import lease, ledger
from digest.store.database import Database
from digest.store.tables import DeliveryStatus, IssueStatus


class WorkerNeedsPostgres(DigestError):
    """`--worker` on SQLite: bad usage (exit 2)."""

    exit_code = 2


@dataclass(slots=True)
class Worked:
    """What a worker did: the issue it joined (None: there was none) and its summary."""

    name: str
    key: str | None
    summary: Summary = field(default_factory=Summary)
    stop: Stop = field(default_factory=Stop)

    @property
    def exit_code(self) -> int:
        """0 when it delivered its share (or had nothing to join); 128 + signal when stopped
        by one; 1 when the send paused (the lease holder records why)."""
        if self.summary.stopped and self.stop.signum is not None:
            return 128 + self.stop.signum
        return 1 if self.summary.paused or self.summary.stopped else 0


def joinable(database: Database) -> tuple[int, str] | None:
    """The oldest issue being sent that still has deliveries queued: (id, key)."""

    def look(session: Session) -> tuple[int, str] | None:
        for issue in ledger.unfinished_issues(session):
            if issue.status != IssueStatus.SENDING:
                continue
            if ledger.counts(session, issue.id).get(DeliveryStatus.QUEUED, 0):
                return issue.id, issue.key
        return None

    return database.run_session(look)


def work(
    config: Config,
    database: Database,
    *,
    wait: float = 0.0,
    stop: Stop | None = None,
    on_join: Callable[[str], None] | None = None,
    on_progress: Callable[[Summary], None] | None = None,
) -> Worked:
    """Join the issue being sent and deliver from its queue until it is empty; with no such
    issue, look again every second for up to `wait` seconds. SIGINT and SIGTERM stop it as
    they stop `digest send`: nothing that may have gone out is queued again."""
    if database.engine.dialect.name != "postgresql":
        raise WorkerNeedsPostgres(
            "`digest send --worker` needs a PostgreSQL database_url: SQLite is one machine's "
            "database, where `digest send` alone already uses every core."
        )
    check_sendable(config)
    check_state_dir(config)
    stop = stop or Stop()
    worked = Worked(lease.worker_name(), None, stop=stop)
    with on_signals(stop):
        # what senders of this machine kept while the database was away, first
        replay(config.path(config.state_dir), database)
        deadline = time.monotonic() + max(0.0, wait)
        found = joinable(database)
        while found is None and not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return worked
            stop.wait(min(1.0, left))
            found = joinable(database)
        if found is None:
            return worked
        issue_id, worked.key = found
        if on_join is not None:
            on_join(worked.key)
        job = job_for(delivery_settings(config), issue_id)
        worked.summary = deliver(job, database, processes=1, stop=stop, on_progress=on_progress)
    return worked
