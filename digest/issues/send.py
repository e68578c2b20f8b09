"""The one place that knows the order of the steps (DESIGN.md section 5):

    next issue -> plan_send (reads only) -> [the user confirms] -> send_issue:
        send lease -> plan again -> start (create or resume) -> deliver -> settle -> retries

`digest send` (its dry run and test copy too), `digest schedule` and bench/send.py call
these; none of them re-implements a step. A dry run and a test copy are the same engine with
other parts: a list queue instead of the ledger, the outbox instead of SMTP.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from digest.config.presend import check_sendable, check_state_dir
from digest.config.schema import Config
from digest.config.sending import compose_settings, delivery_settings, policy, smtp_settings
from digest.config.stages import render_settings
from digest.delivery.compose import Composer
from digest.delivery.engine import Engine, Summary
from digest.delivery.journal import replay
from digest.delivery.outbox import OutboxTransport
from digest.delivery.personalise import with_sample_values
from digest.delivery.queue import ListQueue
from digest.delivery.settle import LEASE_LOST, Outcome, deliver_issue
from digest.delivery.stop import Stop, forward_to_children, on_signals
from digest.delivery.transport import SmtpTransport, Transport
from digest.issues.plan import NothingToSend, Plan, SenderBusy, plan_send
from digest.issues.upcoming import Gathered, gather, next_edition, next_issue
from digest.models import Recipient
from digest.render.csp import with_csp_meta
from digest.render.edition import render
from digest.store import deliveries, editorial, lease, ledger
from digest.store import recipients as audience
from digest.store.database import Database
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus, Issue, IssueStatus

__all__ = [
    "Composer",
    "Gathered",
    "NothingToSend",
    "Outcome",
    "Plan",
    "SenderBusy",
    "Sent",
    "gather",
    "next_edition",
    "next_issue",
    "plan_send",
    "send_issue",
    "start",
]


@dataclass(slots=True)
class Sent:
    """What a send did: each issue's outcome (the main one first, then retries)."""

    outcomes: list[Outcome] = field(default_factory=list)
    note: str | None = None
    results: list[Result] = field(default_factory=list)  # of a dry run or a test copy
    written: list[Path] = field(default_factory=list)  # a dry run's files
    stop: Stop = field(default_factory=Stop)

    @property
    def exit_code(self) -> int:
        """0 when every issue delivered and none is paused; 1 otherwise; 128 + signal when
        stopped by one."""
        if self.stop.signum is not None and (
            not self.outcomes or any(o.status == "stopped" for o in self.outcomes)
        ):  # stopped, if only before the issue was created
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
    check_sendable(config)
    check_state_dir(config)
    settings = delivery_settings(config)
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
            # what senders of this machine kept while the database was away, first
            replay(settings.state_dir, database)
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
                    deliver_issue(settings, database, issue_id, stop, on_progress, processes, ours)
                )
            for retry in current.retries:
                if retry.issue_id != current.issue_id and not stop.is_set():
                    _start_retry(database, retry.issue_id, config.smtp.lease_timeout)
                    outcome = deliver_issue(
                        settings, database, retry.issue_id, stop, None, processes, ours
                    )
                    outcome.retry = True
                    sent.outcomes.append(outcome)
    finally:
        lease.release(database, lease.SEND_LEASE, holder)
    _upkeep(config, database)
    return sent


def _upkeep(config: Config, database: Database) -> None:
    """After a real send: stale sign-ups, due welcomes, webhooks (digest.issues.upkeep). The
    webhooks get a few seconds to go out, never more: a hanging receiver holds nothing up."""
    from digest.issues.upkeep import upkeep

    done = upkeep(config, database)
    if done.webhooks is not None:
        done.webhooks.join(timeout=WEBHOOK_GRACE)


WEBHOOK_GRACE = 3.0


def start(config: Config, database: Database, plan: Plan) -> int:
    """Create the planned issue — rendering its default variant first, so that a broken
    template fails before anything is recorded — or ready the resumed one: the claims of
    dead senders sorted out, failed deliveries queued again when it delivered nothing.
    A database away is waited out; each step is safe to make twice."""
    assert plan.edition is not None
    edition = plan.edition
    ttl = config.smtp.lease_timeout
    if plan.issue_id is None:
        rendered = render(render_settings(config), edition)
        tries: list[int] = []

        def create(session: Session) -> int:
            tries.append(1)
            found = ledger.issue_by_key(session, edition.key)
            if found is not None:
                if len(tries) > 1 and found.status == IssueStatus.SENDING:
                    return found.id  # ours: the first try committed, its answer was lost
                raise NothingToSend(f"The digest for {edition.key} was already sent.")
            issue = ledger.create_issue(
                session,
                edition,
                frequency=plan.frequency,
                default_frequency=config.schedule.frequency,
            )
            if config.tracking.clicks == "off":
                ledger.store_variant(session, issue, "", rendered)
            # else the composer renders it again with the issue's click links, and stores that.
            # The note and the posts held from this issue only stay with it: what waits for
            # the next one starts empty (a note changed since the plan waits on)
            editorial.take_note(session, plan.frequency, edition.note)
            editorial.release_next(session)
            return issue.id

        return database.run_session(create)
    issue_id = plan.issue_id

    def resume(session: Session) -> int:
        deliveries.recover(session, issue_id, deliveries.dead_workers(session, issue_id, ttl))
        if not ledger.has_delivered(session, issue_id):
            deliveries.requeue(session, issue_id, DeliveryStatus.FAILED)
        if plan.resend_key is not None:
            deliveries.requeue(session, issue_id, DeliveryStatus.UNKNOWN)
        ledger.set_status(session, issue_id, IssueStatus.SENDING, None)
        return issue_id

    return database.run_session(resume)


def _start_retry(database: Database, issue_id: int, ttl: float) -> None:
    def recover(session: Session) -> None:
        deliveries.recover(session, issue_id, deliveries.dead_workers(session, issue_id, ttl))

    database.run_session(recover)


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
        check_sendable(config)  # a test copy is a real message: it needs the postal address
        transport = SmtpTransport(smtp_settings(config))
    else:
        assert outbox is not None
        with database.session() as session:
            issue = session.get(Issue, plan.issue_id) if plan.issue_id else None
            recipients = (
                audience.waiting_recipients(session, issue)
                if issue is not None
                else audience.audience_recipients(
                    session, plan.frequency, config.schedule.frequency
                )
            )
        rendered = render(render_settings(config), plan.edition)
        preview = with_sample_values(rendered.html, html.escape(rendered.greeting_anonymous))
        # a file opened from disk has no headers: the served preview's policy goes inside it
        transport = OutboxTransport(outbox, {"preview.html": with_csp_meta(preview)})
    composer = Composer(
        compose_settings(config),
        plan.edition,
        issue_id=plan.issue_id,
        database=None,
        now=plan.edition.date if outbox is not None else None,
        test_copies=to is not None,
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
