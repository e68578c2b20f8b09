"""The one place that knows the order of the steps (DESIGN.md section 5):

    gather -> plan_send (reads only) -> [the user confirms] -> send_issue:
        send lease -> plan again -> start (create or resume) -> deliver -> settle -> retries

`digest send` (its dry run and test copy too), `digest schedule` and bench/send.py call
these; none of them re-implements a step. A dry run and a test copy are the same engine with
other parts: a list queue instead of the ledger, the outbox instead of SMTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from digest.config import Config
from digest.delivery.compose import Composer, prepare_variants
from digest.delivery.engine import Engine, Policy, Summary
from digest.delivery.outbox import OutboxTransport
from digest.delivery.personalise import with_sample_values
from digest.delivery.queue import ListQueue
from digest.delivery.stop import Stop, forward_to_children, on_signals
from digest.delivery.transport import SmtpSettings, SmtpTransport, Transport
from digest.delivery.workers import Job, combine, deliver, process_count
from digest.errors import DigestError
from digest.excerpt import post_excerpt
from digest.issue import newest_first, period_key, status_of
from digest.models import Candidate, Edition, Recipient, SourceResult
from digest.render import render
from digest.sources import read_posts
from digest.store import Database, DeliveryStatus, Issue, IssueStatus, deliveries, lease, ledger
from digest.store.deliveries import Result

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}
LEASE_LOST = "the send lease was taken over by another process"


# -- the next issue -----------------------------------------------------------------------------


@dataclass(slots=True)
class Gathered:
    """Every post read, with its verdict and excerpt, plus what the sources reported."""

    candidates: list[Candidate] = field(default_factory=list)
    source: SourceResult = field(default_factory=SourceResult)

    @property
    def new(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == "new"]


def gather(
    config: Config,
    *,
    sent: Collection[str] = frozenset(),
    now: datetime | None = None,
    lookback_days: int | None = None,
) -> Gathered:
    """Read the sources and judge every post against what was sent and the current time;
    `lookback_days` (default: digest.lookback_days) bounds how old a new post may be."""
    now = now or datetime.now(UTC)
    lookback = config.digest.lookback_days if lookback_days is None else lookback_days
    source = read_posts(config)
    candidates = [
        Candidate(
            post=post,
            status=status_of(post, sent=sent, now=now, lookback_days=lookback),
            excerpt=post_excerpt(post, config.excerpt.length, config.site.locale),
        )
        for post in newest_first(source.posts)
    ]
    return Gathered(candidates=candidates, source=source)


def lookback_for(config: Config, frequency: str) -> int:
    """A monthly issue looks back at least a month and a week, whatever lookback_days says."""
    lookback = config.digest.lookback_days
    return max(lookback, PERIOD_DAYS[frequency] + 7) if lookback else 0


def next_issue(
    config: Config,
    database: Database | None,
    *,
    frequency: str | None = None,
    now: datetime | None = None,
) -> Gathered:
    """What the next issue of `frequency` would hold: posts already covered are not new."""
    frequency = frequency or config.schedule.frequency
    sent: set[str] = set()
    if database is not None:
        with database.session() as session:
            sent = ledger.sent_post_ids(session, frequency)
    return gather(config, sent=sent, now=now, lookback_days=lookback_for(config, frequency))


def next_edition(
    gathered: Gathered, config: Config, now: datetime | None = None, frequency: str | None = None
) -> Edition:
    """The edition the next send would make from what `gather` found."""
    now = now or datetime.now(UTC)
    return Edition(
        key=period_key(now, frequency or config.schedule.frequency, config.schedule_tz),
        date=now,
        posts=tuple(c.post for c in gathered.new),
    )


# -- planning (reads only) ----------------------------------------------------------------------


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
    plan = Plan(frequency, now, new=new)
    with database.session() as session:
        due = [d for d in ledger.deferred(session) if d.next_attempt_at <= now]
        if resend_unknown is not None:
            issue = ledger.issue_by_key(session, resend_unknown)
            if issue is None:
                raise DigestError(f"there is no issue {resend_unknown!r}.")
            return _resume(session, plan, issue, due, resend=True)
        for issue in ledger.unfinished_issues(session, frequency):
            resumed = _resume(session, plan, issue, due)
            if not _waits_only(session, resumed, issue, due):
                return resumed
            if not ledger.has_delivered(session, issue.id):  # its posts are not covered yet
                [waiting] = ledger.deferred(session, [issue.id])
                plan.note = (
                    f"Issue {issue.key} delivered nothing yet; it retries its deferred "
                    f"deliveries at {_local(waiting.next_attempt_at, config)}."
                )
                return _or_nothing(replace(plan, retries=due))
        sent = ledger.sent_post_ids(session, frequency)
        active = ledger.count_audience(session, frequency, config.schedule.frequency)
    plan.retries = due
    if not new:
        plan.note = "No unfinished issue to resume."
        return _or_nothing(plan)
    gathered = gather(config, sent=sent, now=now, lookback_days=lookback_for(config, frequency))
    if gathered.source.failures:
        raise DigestError(gathered.source.failures[0])
    edition = next_edition(gathered, config, now, frequency)
    with database.session() as session:
        existing = ledger.issue_by_key(session, edition.key)
    if not gathered.new:
        plan.note = "Nothing new since the last digest: nothing to send."
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


def _resume(
    session: Session, plan: Plan, issue: Issue, due: list[ledger.Deferred], resend: bool = False
) -> Plan:
    counts = ledger.counts(session, issue.id)
    dead = deliveries.dead_workers(session, issue.id)
    claimed, in_flight = deliveries.held_counts(session, issue.id, dead)
    delivered = counts.get(DeliveryStatus.SENT, 0) > 0
    failed = 0 if delivered else counts.get(DeliveryStatus.FAILED, 0)
    unknown = counts.get(DeliveryStatus.UNKNOWN, 0) if resend else 0
    queued = counts.get(DeliveryStatus.QUEUED, 0) + claimed + failed + unknown
    return replace(
        plan,
        edition=ledger.edition_of(issue),
        issue_id=issue.id,
        status=issue.status,
        reason=issue.paused_reason,
        recipients=queued + ledger.due_count(session, issue.id, plan.now),
        lost_in_flight=in_flight,
        requeued_failed=failed,
        resend_unknown=unknown,
        resend_key=issue.key if resend else None,
        retries=due,
    )


def _waits_only(session: Session, plan: Plan, issue: Issue, due: list[ledger.Deferred]) -> bool:
    """True for a sending issue whose only work left is deferred deliveries not yet due."""
    if issue.status != IssueStatus.SENDING or plan.recipients or plan.lost_in_flight:
        return False
    if any(d.issue_id == issue.id for d in due) or ledger.pending(session, issue.id):
        return False
    return bool(ledger.deferred(session, [issue.id]))


def _or_nothing(plan: Plan) -> Plan:
    if plan.edition is None and not plan.retries:
        raise NothingToSend(plan.note or "Nothing to send.")
    return plan


def _local(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.schedule_tz).strftime("%Y-%m-%d %H:%M:%S %Z")


# -- sending ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """How one issue stands after a send: its status (and why), what this send did."""

    key: str
    summary: Summary
    status: str
    reason: str | None = None
    delivered: bool = True
    retry: bool = False  # a retry of deferred deliveries, not the main issue


@dataclass(slots=True)
class Sent:
    outcomes: list[Outcome] = field(default_factory=list)
    note: str | None = None
    results: list[Result] = field(default_factory=list)  # of a dry run or a test copy
    written: list[Path] = field(default_factory=list)  # a dry run's files
    stop: Stop = field(default_factory=Stop)

    @property
    def exit_code(self) -> int:
        """0 when every issue delivered and none is paused; 1 otherwise; 128 + signal when
        stopped by one."""
        if self.stop.signum is not None and any(o.status == "stopped" for o in self.outcomes):
            return 128 + self.stop.signum
        bad = ("paused", "stopped")
        return 1 if any(o.status in bad or not o.delivered for o in self.outcomes) else 0


def send_issue(
    config: Config,
    database: Database,
    plan: Plan,
    *,
    outbox: Path | None = None,
    to: Recipient | None = None,
    on_progress: Callable[[Summary], None] | None = None,
    stop: Stop | None = None,
    processes: int | None = None,
) -> Sent:
    """Carry out `plan`: into the outbox (`outbox`), to one address (`to`), or for real, under
    the send lease; SIGINT and SIGTERM stop it without cutting a message in half."""
    stop = stop or Stop()
    if outbox is not None or to is not None:
        return _without_ledger(config, database, plan, outbox, to, stop)
    sent = Sent(stop=stop)
    holder = lease.worker_name()
    ttl = timedelta(seconds=config.smtp.lease_timeout)
    other = lease.acquire(database, lease.SEND_LEASE, holder, ttl)
    if other is not None:
        raise SenderBusy(other)

    def ours() -> bool:
        """Renew the lease; False (and the send stops) once another process took it over."""
        if lease.renew(database, lease.SEND_LEASE, holder, ttl):
            return True
        stop.set(LEASE_LOST)
        return False

    beat = lease.Heartbeat(config.smtp.heartbeat, [ours])
    try:
        with beat, on_signals(stop, forward=forward_to_children):
            current = plan_send(
                config,
                database,
                now=plan.now,
                frequency=plan.frequency,
                resend_unknown=plan.resend_key,
                new=plan.new,
            )
            sent.note = current.note
            if current.edition is not None and not stop.is_set():
                issue_id = start(config, database, current)
                sent.outcomes.append(
                    _deliver(config, database, issue_id, stop, on_progress, processes, ours)
                )
            for retry in current.retries:
                if retry.issue_id != current.issue_id and not stop.is_set():
                    _start_retry(database, retry.issue_id)
                    outcome = _deliver(
                        config, database, retry.issue_id, stop, None, processes, ours
                    )
                    outcome.retry = True
                    sent.outcomes.append(outcome)
    finally:
        lease.release(database, lease.SEND_LEASE, holder)
    return sent


def start(config: Config, database: Database, plan: Plan) -> int:
    """Create the planned issue — rendering its default variant first, so that a broken
    template fails before anything is recorded — or ready the resumed one: the claims of
    dead senders sorted out, failed deliveries queued again when it delivered nothing."""
    assert plan.edition is not None
    if plan.issue_id is None:
        rendered = render(config, plan.edition)
        with database.session() as session:
            if ledger.issue_by_key(session, plan.edition.key) is not None:
                raise NothingToSend(f"The digest for {plan.edition.key} was already sent.")
            issue = ledger.create_issue(
                session,
                plan.edition,
                frequency=plan.frequency,
                default_frequency=config.schedule.frequency,
            )
            ledger.store_variant(session, issue, "", rendered)
            return issue.id
    with database.session() as session:
        deliveries.recover(session, plan.issue_id, deliveries.dead_workers(session, plan.issue_id))
        if not ledger.has_delivered(session, plan.issue_id):
            deliveries.requeue(session, plan.issue_id, DeliveryStatus.FAILED)
        if plan.resend_key is not None:
            deliveries.requeue(session, plan.issue_id, DeliveryStatus.UNKNOWN)
        ledger.set_status(session, plan.issue_id, IssueStatus.SENDING, None)
    return plan.issue_id


def _start_retry(database: Database, issue_id: int) -> None:
    with database.session() as session:
        deliveries.recover(session, issue_id, deliveries.dead_workers(session, issue_id))


def _deliver(
    config: Config,
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
        with database.session() as session:
            queued = ledger.pending(session, issue_id)
        count = processes if processes is not None else process_count(config, queued)
        if count > 1:
            prepare_variants(config, database, issue_id)
        job = Job(
            config,
            issue_id,
            policy(config),
            smtp_settings(config),
            claim_seconds=config.smtp.lease_timeout,
            heartbeat=config.smtp.heartbeat,
            as_of=datetime.now(UTC),
        )
        done = total

        def progress(summary: Summary, done: Summary = done) -> None:
            if on_progress is not None:
                on_progress(combine([done, summary]))

        summary = deliver(job, database, processes=count, stop=stop, on_progress=progress)
        total = combine([total, summary])
        if total.paused or total.stopped or not _leftovers(database, issue_id, stop, config):
            break
    if not ours():
        with database.session() as session:
            issue = session.get(Issue, issue_id)
            key = issue.key if issue is not None else str(issue_id)
        return Outcome(key, total, IssueStatus.STOPPED, LEASE_LOST, delivered=False)
    return settle(database, issue_id, total, config)


def _leftovers(database: Database, issue_id: int, stop: Stop, config: Config) -> bool:
    """Whether another round is needed: rows queued again from dead workers, or held by live
    ones (waited for, up to their expiry)."""
    deadline = datetime.now(UTC) + timedelta(seconds=2 * config.smtp.lease_timeout)
    while not stop.is_set():
        with database.session() as session:
            deliveries.recover(session, issue_id, deliveries.dead_workers(session, issue_id))
            counts = ledger.counts(session, issue_id)
        if counts.get(DeliveryStatus.QUEUED, 0):
            return True
        held = counts.get(DeliveryStatus.CLAIMED, 0) + counts.get(DeliveryStatus.IN_FLIGHT, 0)
        if not held or datetime.now(UTC) > deadline:
            return False
        stop.wait(config.smtp.heartbeat)
    return False


def settle(database: Database, issue_id: int, summary: Summary, config: Config) -> Outcome:
    """Record how the issue stands: finished when nothing is queued, claimed, in flight or
    deferred — unless it delivered nothing, when it stays open with its reason."""
    with database.session() as session:
        issue = session.get(Issue, issue_id)
        assert issue is not None
        counts = ledger.counts(session, issue_id)
        pending = sum(counts.get(s, 0) for s in ("queued", "claimed", "in_flight"))
        failed, deferred = counts.get("failed", 0), counts.get("deferred", 0)
        delivered = counts.get("sent", 0) > 0
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
                f"the next retry at {_local(waiting.next_attempt_at, config)}"
            )
            if not delivered:
                reason = "nothing delivered yet: " + reason
        ledger.set_status(session, issue_id, status, reason)
        return Outcome(issue.key, summary, status, reason, delivered)


def _without_ledger(
    config: Config,
    database: Database,
    plan: Plan,
    outbox: Path | None,
    to: Recipient | None,
    stop: Stop,
) -> Sent:
    """A dry run or a test copy: the engine over a list, nothing claimed or recorded."""
    if plan.edition is None:
        raise NothingToSend(plan.note or "Nothing to send.")
    transport: Transport
    if to is not None:
        recipients = [to]
        transport = SmtpTransport(smtp_settings(config))
    else:
        assert outbox is not None
        with database.session() as session:
            issue = session.get(Issue, plan.issue_id) if plan.issue_id else None
            recipients = (
                ledger.waiting_recipients(session, issue)
                if issue is not None
                else ledger.audience_recipients(session, plan.frequency, config.schedule.frequency)
            )
        rendered = render(config, plan.edition)
        preview = with_sample_values(rendered.html, rendered.greeting_anonymous)
        transport = OutboxTransport(outbox, {"preview.html": preview})
    composer = Composer(
        config,
        plan.edition,
        issue_id=plan.issue_id,
        database=None,
        now=plan.edition.date if outbox is not None else None,
    )
    queue = ListQueue(recipients)
    engine = Engine(replace(policy(config), connections=1), transport, queue, composer, stop=stop)
    with on_signals(stop):
        summary = asyncio.run(engine.run())
    sent = Sent(stop=stop, results=queue.results)
    sent.outcomes.append(Outcome(plan.edition.key, summary, "dry-run" if outbox else "test"))
    if isinstance(transport, OutboxTransport):
        sent.written = transport.written
    return sent


def policy(config: Config) -> Policy:
    smtp = config.smtp
    return Policy(
        connections=smtp.connections,
        messages_per_connection=smtp.messages_per_connection,
        rate_per_second=smtp.rate_per_second,
        rate_per_hour=smtp.rate_per_hour,
        retries=smtp.retries,
        retry_delay=smtp.retry_delay,
        max_consecutive_failures=smtp.max_consecutive_failures,
        retry_hours=smtp.retry_hours,
        stop_grace=smtp.timeout + 5,
    )


def smtp_settings(config: Config) -> SmtpSettings:
    smtp = config.smtp
    return SmtpSettings(
        host=smtp.host,
        port=smtp.port,
        security=smtp.security,
        username=smtp.username,
        password=config.smtp_password(),
        timeout=smtp.timeout,
        ca_file=str(config.path(smtp.ca_file)) if smtp.ca_file else None,
        verify_tls=smtp.verify_tls,
    )
