"""One issue's delivery until it is settled, and the status it is left in.

Its own workers send first; claims left by workers known dead (a sending process that
crashed) are then sorted out and another round sends what came back to the queue. The
issue is `finished` when nothing is queued, claimed, in flight or deferred — unless it
delivered nothing, when it stays open (`paused`) with its reason and its posts stay new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from digest.delivery.compose import prepare_variants
from digest.delivery.engine import Summary
from digest.delivery.settings import DeliverySettings
from digest.delivery.stop import Stop
from digest.delivery.workers import Job, combine, deliver, process_count
from digest.store import deliveries, ledger
from digest.store.bounces import sweep_soft
from digest.store.database import Database
from digest.store.tables import DeliveryStatus, Issue, IssueStatus

LEASE_LOST = "the send lease was taken over by another process"
LOOK_AGAIN = 0.5  # seconds between looks at what other workers still hold: they finish soon


@dataclass(slots=True)
class Outcome:
    """How one issue stands after a send: its status (and why), what this send did."""

    key: str
    summary: Summary
    status: str
    reason: str | None = None
    delivered: bool = True
    retry: bool = False  # a retry of deferred deliveries, not the main issue


def deliver_issue(
    settings: DeliverySettings,
    database: Database,
    issue_id: int,
    stop: Stop,
    on_progress: Callable[[Summary], None] | None,
    processes: int | None,
    ours: Callable[[], bool],
) -> Outcome:
    """Deliver until the issue's queue is empty: its own workers first, then whatever other
    workers leave behind once they are known dead (at most a few rounds). The issue's status
    is written only while the send lease is still ours."""
    total = Summary()
    for _ in range(3):
        queued = database.run_session(lambda session: ledger.pending(session, issue_id))
        count = processes if processes is not None else process_count(settings, queued)
        if count > 1:
            prepare_variants(settings.compose, database, issue_id)
        job = job_for(settings, issue_id)
        done = total

        def progress(summary: Summary, done: Summary = done) -> None:
            if on_progress is not None:
                on_progress(combine([done, summary]))

        summary = deliver(job, database, processes=count, stop=stop, on_progress=progress)
        total = combine([total, summary])
        if total.paused or total.stopped or not _leftovers(database, issue_id, stop, settings):
            break
    if not ours():

        def key_of(session: Session) -> str:
            issue = session.get(Issue, issue_id)
            return issue.key if issue is not None else str(issue_id)

        key = database.run_session(key_of)
        return Outcome(key, total, IssueStatus.STOPPED, LEASE_LOST, delivered=False)
    return settle(database, issue_id, total, settings)


def _leftovers(database: Database, issue_id: int, stop: Stop, settings: DeliverySettings) -> bool:
    """Whether another round is needed: rows queued again from dead workers, or held by live
    ones (waited for, up to their expiry)."""
    ttl = settings.claim_seconds
    deadline = datetime.now(UTC) + timedelta(seconds=2 * ttl)

    def look(session: Session) -> dict[str, int]:
        deliveries.recover(session, issue_id, deliveries.dead_workers(session, issue_id, ttl))
        return ledger.counts(session, issue_id)

    while not stop.is_set():
        counts = database.run_session(look)
        if counts.get(DeliveryStatus.QUEUED, 0):
            return True
        held = counts.get(DeliveryStatus.CLAIMED, 0) + counts.get(DeliveryStatus.IN_FLIGHT, 0)
        if not held or datetime.now(UTC) > deadline:
            return False
        stop.wait(min(LOOK_AGAIN, settings.heartbeat))
    return False


def settle(
    database: Database, issue_id: int, summary: Summary, settings: DeliverySettings
) -> Outcome:
    """Record how the issue stands: finished when nothing is queued, claimed, in flight or
    deferred — unless it delivered nothing, when it stays open with its reason. A database
    away is waited out (recording the status twice changes nothing)."""
    return database.run_session(lambda session: _settle(session, issue_id, summary, settings))


def _settle(
    session: Session, issue_id: int, summary: Summary, settings: DeliverySettings
) -> Outcome:
    issue = session.get(Issue, issue_id)
    assert issue is not None
    counts = ledger.counts(session, issue_id)
    pending = sum(counts.get(s, 0) for s in ("queued", "claimed", "in_flight"))
    failed, deferred = counts.get("failed", 0), counts.get("deferred", 0)
    # an unknown outcome is a message the server took whose answer was lost: it may have
    # arrived, so it counts as delivered (its posts are used) and `report` shows it
    delivered = counts.get("sent", 0) + counts.get("unknown", 0) > 0
    status, reason = IssueStatus.FINISHED, None
    if pending and summary.stopped:
        status, reason = IssueStatus.STOPPED, f"{summary.stopped}, {pending} not sent yet"
    elif summary.paused:
        status, reason = IssueStatus.PAUSED, summary.paused
    elif pending:
        status, reason = IssueStatus.SENDING, f"{pending} deliveries held by other senders"
    elif not delivered and failed:
        last = ledger.last_error(session, issue_id, DeliveryStatus.FAILED)
        status = IssueStatus.PAUSED
        reason = f"delivered nothing: {failed} failed, the last: {last}"
    elif deferred:
        [waiting] = ledger.deferred(session, [issue_id])
        status = IssueStatus.SENDING
        reason = (
            f"{deferred} deliveries deferred (the last: "
            f"{ledger.last_error(session, issue_id, DeliveryStatus.DEFERRED)}); "
            f"the next retry at {local(waiting.next_attempt_at, settings.timezone)}"
        )
        if not delivered:
            reason = "nothing delivered yet: " + reason
    ledger.set_status(session, issue_id, status, reason)
    if failed:  # a failure after deferral counts as a soft bounce (bounces.soft_limit)
        sweep_soft(session, settings.soft_limit)
    return Outcome(issue.key, summary, status, reason, delivered)


def job_for(settings: DeliverySettings, issue_id: int) -> Job:
    """One run over the issue's queue as configured, as of now (the lease holder's and a
    `--worker`'s alike)."""
    return Job(settings=settings, issue_id=issue_id, as_of=datetime.now(UTC))


def local(moment: datetime, timezone: str) -> str:
    """`moment` in the schedule's time zone, as an issue's status names it."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")
