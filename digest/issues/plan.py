"""Planning a send: what it would do, read from the ledger and the sources, writing nothing.

`digest send` shows the plan before "Send now?"; only `pipeline.send_issue`, under the send
lease, makes it so (and plans again there, in case another process moved meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from digest.config.schema import Config
from digest.config.stages import issue_settings
from digest.delivery import journal
from digest.delivery.settle import local
from digest.errors import DigestError
from digest.issues.upcoming import gather, lookback_for, next_edition, nothing_new
from digest.models import Edition
from digest.store import deliveries, editorial, lease, ledger
from digest.store import recipients as audience
from digest.store.database import Database
from digest.store.tables import DeliveryStatus, EditorNote, Issue, IssueStatus


class NothingToSend(Exception):
    """No issue to resume or start and no retry due: the message says why (exit code 0)."""


class SenderBusy(Exception):
    """Another process holds the send lease."""

    def __init__(self, holder: lease.Holder) -> None:
        super().__init__(f"another send is running: {holder.describe()}")
        self.holder = holder


@dataclass(slots=True)
class Plan:
    """What a send is about to do, read without writing anything."""

    frequency: str
    now: datetime
    edition: Edition | None = None  # the main issue's content (None: retries only)
    issue_id: int | None = None  # the issue resumed (None: a new one is created)
    status: str | None = None  # the resumed issue's status and reason
    reason: str | None = None
    recipients: int = 0  # messages the main issue would send now
    lost_in_flight: int = 0  # in flight when a dead sender stopped: recorded unknown
    journalled: int = 0  # in flight when it stopped, their outcome kept in its journal
    given_back: int = 0  # in flight, never begun, its journal says so: sent now
    requeued_failed: int = 0  # failed deliveries of an issue that delivered nothing
    resend_unknown: int = 0
    resend_key: str | None = None
    retries: list[ledger.Deferred] = field(default_factory=list)  # deferred deliveries due
    note: str | None = None  # why there is no main issue
    new: bool = True  # whether a new issue may be planned (the scheduler's retry job: no)

    @property
    def resumed(self) -> bool:
        return self.issue_id is not None


def plan_send(
    config: Config,
    database: Database,
    *,
    now: datetime | None = None,
    frequency: str | None = None,
    resend_unknown: str | None = None,
    new: bool = True,
) -> Plan:
    """Resume an unfinished issue, else make an edition of the new posts (DESIGN.md §4), plus
    the deferred deliveries due for a retry. Each frequency is its own track; an unfinished
    issue whose only work left is deferred deliveries not yet due does not hold back the next
    one — unless it delivered nothing, when its posts are still new."""
    now = now or datetime.now(UTC)
    frequency = frequency or config.schedule.frequency
    # what this machine's journals will record first (the send replays them before it plans
    # again under its lease): read here so that the plan shown says what becomes of the rows
    # a dead sender held
    known = journal.waiting(config.path(config.state_dir), database)
    # read in one unit of work, run again from the start if the database goes in the middle
    # (a send started as PostgreSQL restarts); only reads, and a fresh Plan each run
    looked = database.run_session(
        lambda session: _look(session, config, frequency, now, new, resend_unknown, known)
    )
    if isinstance(looked, Plan):
        return looked
    plan, due, sent, held, note, active = looked
    plan.retries = due
    if not new:
        plan.note = "No unfinished issue to resume."
        return _or_nothing(plan)
    issues = issue_settings(config)
    gathered = gather(
        issues,
        sent=sent,
        now=now,
        lookback_days=lookback_for(issues, frequency),
        held=held,
        note=note.text if note is not None else "",
    )
    if gathered.source.failures:
        raise DigestError(gathered.source.failures[0])
    edition = next_edition(gathered, issues, now, frequency)
    existing = database.run_session(lambda session: ledger.issue_by_key(session, edition.key))
    if not gathered.new:
        plan.note = nothing_new(gathered, issues).removesuffix(".") + ": nothing to send."
    elif existing is not None:
        plan.note = (
            f"The digest for {edition.key} was already sent; the {len(edition.posts)} new "
            "posts will be in the next one."
        )
    elif active == 0:
        plan.note = "No active subscribers: no issue was created."
    else:
        plan.edition, plan.recipients = edition, active
    return _or_nothing(plan)


def _look(
    session: Session,
    config: Config,
    frequency: str,
    now: datetime,
    new: bool,
    resend_unknown: str | None,
    known: list[tuple[str, journal.Lines]],
) -> Plan | tuple[Plan, list[ledger.Deferred], set[str], dict[str, str], EditorNote | None, int]:
    """The plan when an unfinished issue decides it, else what a new edition needs: the plan
    so far, the retries due, the posts already sent, those held, the note, the audience."""
    plan = Plan(frequency, now, new=new)
    due = [d for d in ledger.deferred(session) if d.next_attempt_at <= now]
    if resend_unknown is not None:
        issue = ledger.issue_by_key(session, resend_unknown)
        if issue is None:
            raise DigestError(f"there is no issue {resend_unknown!r}.")
        return _resume(session, plan, issue, due, known, resend=True)
    for issue in ledger.unfinished_issues(session, frequency):
        resumed = _resume(session, plan, issue, due, known)
        if not _waits_only(session, resumed, issue, due):
            return resumed
        if not ledger.has_delivered(session, issue.id):  # its posts are not covered yet
            [waiting] = ledger.deferred(session, [issue.id])
            plan.note = (
                f"Issue {issue.key} delivered nothing yet; it retries its deferred "
                f"deliveries at {local(waiting.next_attempt_at, config.schedule_timezone)}."
            )
            return _or_nothing(replace(plan, retries=due))
    sent = ledger.sent_post_ids(session, frequency)
    held = editorial.held(session)
    note = editorial.note(session, frequency)
    active = audience.count_audience(session, frequency, config.schedule.frequency)
    return plan, due, sent, held, note, active


def _resume(
    session: Session,
    plan: Plan,
    issue: Issue,
    due: list[ledger.Deferred],
    known: list[tuple[str, journal.Lines]],
    resend: bool = False,
) -> Plan:
    counts = ledger.counts(session, issue.id)
    dead = deliveries.dead_workers(session, issue.id)
    replayed = _replayed(session, known, dead)
    claimed = in_flight = journalled = given_back = 0
    for delivery, worker, status in deliveries.held_rows(session, issue.id, dead):
        line = replayed.get((worker, delivery))
        if status == DeliveryStatus.CLAIMED:
            claimed += 1  # back to the queue, journalled or not
        elif line == DeliveryStatus.QUEUED:
            given_back += 1  # its sender never began it, its journal says
        elif line is not None and line != DeliveryStatus.UNKNOWN:
            journalled += 1  # its outcome is in its sender's journal
        else:
            in_flight += 1  # nothing known of it, or its reply never came: unknown
    delivered = counts.get(DeliveryStatus.SENT, 0) > 0
    failed = 0 if delivered else counts.get(DeliveryStatus.FAILED, 0)
    unknown = counts.get(DeliveryStatus.UNKNOWN, 0) if resend else 0
    queued = counts.get(DeliveryStatus.QUEUED, 0) + claimed + given_back + failed + unknown
    return replace(
        plan,
        edition=ledger.edition_of(issue),
        issue_id=issue.id,
        status=issue.status,
        reason=issue.paused_reason,
        recipients=queued + ledger.due_count(session, issue.id, plan.now),
        lost_in_flight=in_flight,
        journalled=journalled,
        given_back=given_back,
        requeued_failed=failed,
        resend_unknown=unknown,
        resend_key=issue.key if resend else None,
        retries=due,
    )


def _replayed(
    session: Session, known: list[tuple[str, journal.Lines]], dead: list[str]
) -> dict[tuple[str, int], DeliveryStatus]:
    """What the replay will write for the rows of dead workers, by (worker, delivery): the
    replay's own reading of the journals (stale lines left out), made here without writing."""
    replayed: dict[tuple[str, int], DeliveryStatus] = {}
    for worker, lines in known:
        if worker in dead and lines:
            for results in journal.waiting_in(session.connection(), worker, lines).values():
                replayed.update(((worker, r.recipient.delivery_id), r.status) for r in results)
    return replayed


def _waits_only(session: Session, plan: Plan, issue: Issue, due: list[ledger.Deferred]) -> bool:
    """True for a sending issue whose only work left is deferred deliveries not yet due."""
    held = plan.lost_in_flight or plan.journalled  # recorded first: not only waiting
    if issue.status != IssueStatus.SENDING or plan.recipients or held:
        return False
    if any(d.issue_id == issue.id for d in due) or ledger.pending(session, issue.id):
        return False
    return bool(ledger.deferred(session, [issue.id]))


def _or_nothing(plan: Plan) -> Plan:
    if plan.edition is None and not plan.retries:
        raise NothingToSend(plan.note or "Nothing to send.")
    return plan
