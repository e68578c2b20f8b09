"""APScheduler wiring: `digest schedule` runs the send on the configured rhythm.

Jobs live in an APScheduler SQLAlchemy job store in the project's database, added with fixed
ids and `replace_existing=True`; `coalesce` is on and `misfire_grace_time` comes from config,
so a run missed while the machine was down is made up once on start within the grace time and
skipped (with a clear log line) beyond it. Exactly-once is not left to the scheduler: a send
runs under a database lease (one process at a time) and an issue's period key is unique, so
two schedulers started by mistake still send each issue once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config.cron import Rhythm, rhythms
from digest.config.load import load_config
from digest.config.schema import Config
from digest.delivery.stop import Stop, describe, forward_to_children
from digest.errors import DigestError
from digest.issues.send import NothingToSend, Outcome, Plan, SenderBusy, plan_send, send_issue
from digest.store import jobs
from digest.store.database import Database, open_database
from digest.store.outage import DatabaseAway, is_outage

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from digest.ops.alerts import Alerts
    from digest.store.report import IssueReport

log = logging.getLogger("digest.issues.schedule")
JOB_PREFIX = "digest-"
RETRY_JOB = "digest-retry"
BOUNCE_JOB = "digest-bounces"
DOCTOR_JOB = "digest-doctor"
UPKEEP_JOB = "digest-upkeep"
DOCTOR_DELAY = timedelta(minutes=5)  # the first daily doctor, after the scheduler starts
STOP = Stop()  # set by SIGINT/SIGTERM: the send in flight stops after its messages in flight


def job_id(rhythm: Rhythm) -> str:
    """The job store id of a rhythm's job (fixed, so a restart replaces it)."""
    return f"{JOB_PREFIX}{rhythm.frequency}"


# -- the jobs -----------------------------------------------------------------------------------


def run_scheduled(config_path: str, frequency: str) -> None:
    """The scheduled job (referenced by name in the job store, so it must stay importable)."""
    _with_database(
        config_path, lambda config, database: scheduled_send(config, database, frequency)
    )


def run_retries(config_path: str) -> None:
    """The retry job, at start and every `retry_minutes`: unfinished issues are resumed and
    deferred deliveries due are tried again, whatever the time of the next slot."""

    def retry(config: Config, database: Database) -> None:
        for frequency in config.schedule.frequencies:
            scheduled_send(config, database, frequency, resume_only=True)

    _with_database(config_path, retry)


def run_upkeep(config_path: str) -> None:
    """The upkeep job, every minute: stale sign-ups, due welcomes, webhooks
    (digest.issues.upkeep)."""
    from digest.issues.upkeep import upkeep

    _with_database(config_path, lambda config, database: upkeep(config, database))


def run_bounce_poll(config_path: str) -> None:
    """The bounce job, at start and every `bounces.poll_minutes`: the configured Maildir or
    IMAP mailbox is read and what came back is recorded (digest.inbound.process)."""

    def poll(config: Config, database: Database) -> None:
        from digest.config.sending import inbound_settings, mailbox_settings
        from digest.inbound.process import open_mailbox, process

        with open_mailbox(mailbox_settings(config)) as mailbox:
            run = process(inbound_settings(config), database, mailbox)
        counts = ", ".join(f"{action} {n}" for action, n in sorted(run.counts().items()))
        log.info(
            "bounces: %d messages in %s%s",
            len(run.rows),
            run.source,
            f": {counts}" if counts else "",
        )
        for skipped in run.skipped:
            log.warning("bounces: %s: %s", skipped.where, skipped.reason)
        if run.soft_limited:
            log.info("bounces: suppressed after soft bounces: %s", ", ".join(run.soft_limited))
        alerts = owner_alerts(config, database)
        if alerts is not None:
            for report in recent_reports(database):
                alerts.rates(report)

    _with_database(config_path, poll)


def run_doctor(config_path: str) -> None:
    """The daily `digest doctor`: its failures logged, and mailed to the owner (once a day
    for the same failing checks)."""

    def doctor(config: Config, database: Database) -> None:
        from digest.issues.doctor import examine

        diagnosis = examine(config)
        for check in diagnosis.failing:
            log.warning("doctor: %s: %s", check.name, check.summary)
        if not diagnosis.failing:
            log.info("doctor: every check passes")
        alerts = owner_alerts(config, database)
        if alerts is not None:
            alerts.doctor(diagnosis.failing)

    _with_database(config_path, doctor)


def owner_alerts(config: Config, database: Database) -> Alerts | None:
    """The owner's alerts through the configured relay; None without `owner.email`."""
    from digest.config.ops import alert_settings

    settings = alert_settings(config)
    if settings is None:
        return None
    from digest.config.sending import dkim_settings, sender_settings, smtp_settings
    from digest.delivery.mailer import SmtpMailer
    from digest.ops.alerts import Alerts

    try:
        mailer = SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config))
    except DigestError as exc:
        log.error("alerts to %s cannot be sent: %s", settings.owner, exc.message)
        return None
    return Alerts(settings, database, mailer)


def recent_reports(database: Database, keys: Sequence[str] | None = None) -> list[IssueReport]:
    """The reports of issues `keys`, or of the three newest (whose bounces still come in)."""
    from digest.store.report import reports

    def read(session: Session) -> list[IssueReport]:
        if keys is None:
            return reports(session, limit=3)
        return [r for key in dict.fromkeys(keys) for r in reports(session, key)]

    return database.run_session(read)  # a restart in the middle is read through


def polls_bounces(config: Config) -> bool:
    """True when `digest schedule` reads bounces: `poll_minutes` and a mailbox are set."""
    bounces = config.bounces
    return bounces.poll_minutes is not None and (
        bounces.maildir is not None or bounces.imap is not None
    )


def _with_database(config_path: str, job: Callable[[Config, Database], object]) -> None:
    try:
        config = load_config(config_path)
        database = open_database(config.database_url, outage_seconds=config.database.outage_seconds)
    except DigestError as exc:
        log.error("scheduled run skipped: %s", exc.message)
        return
    try:
        job(config, database)
    except DigestError as exc:  # a mailbox that cannot be read: say so, try again next time
        log.error("scheduled job failed: %s", exc.message)
    except Exception as exc:  # said in words of ours; the next run tries again
        if os.environ.get("DIGEST_DEBUG"):
            raise
        log.error("scheduled job failed: %s", _unexpected(exc))
    finally:
        database.dispose()


def _unexpected(exc: BaseException) -> str:
    """A job's failure in words of ours: never a driver's or a library's own text."""
    if isinstance(exc, DigestError):
        return exc.message.rstrip(".")
    if is_outage(exc):
        return "the database went out of reach in the middle of it; the next run goes on"
    return f"unexpected {type(exc).__name__} (set DIGEST_DEBUG=1 for details)"


def scheduled_send(
    config: Config,
    database: Database,
    frequency: str,
    *,
    stop: Stop | None = None,
    now: datetime | None = None,
    resume_only: bool = False,
) -> int:
    """Resume an unfinished issue, then send a new one (unless `resume_only`), each under
    the send lease; deferred deliveries due are retried along. Returns the issues sent."""
    from digest.delivery.workers import combine
    from digest.ops.metrics import process_metrics

    stop = stop or STOP
    sent = 0
    for _ in range(3):  # an unfinished issue first, then a new one
        if stop.is_set():
            break
        tracker = process_metrics().track()
        try:
            plan = plan_send(config, database, frequency=frequency, now=now, new=not resume_only)
            result = send_issue(config, database, plan, stop=stop, on_progress=tracker)
        except NothingToSend as exc:
            if not resume_only:
                log.info("%s run: %s", frequency, exc)
            break
        except SenderBusy as busy:
            log.warning(
                "another process holds the send lease (%s); skipping this %s run",
                busy.holder.describe(),
                frequency,
            )
            break
        except DigestError as exc:
            log.error("%s run failed: %s", frequency, exc.message)
            alerts = owner_alerts(config, database)
            if alerts is not None:
                alerts.send_failed(frequency, exc.message)
            break
        tracker.finish(combine(o.summary for o in result.outcomes))
        for outcome in result.outcomes:
            _log(outcome, plan)
        _alert(config, database, frequency, result.outcomes)
        sent += sum(1 for outcome in result.outcomes if not outcome.retry)
        if any(o.status in ("paused", "stopped") for o in result.outcomes) or not plan.resumed:
            break
    return sent


def _alert(config: Config, database: Database, frequency: str, outcomes: Sequence[Outcome]) -> None:
    """Tell the owner what a run ended with: a pause (the send failed), or deferred or unknown
    deliveries left, a complaint or bounce rate over its limit. A stop was asked for: no
    alert."""
    ended = [o for o in outcomes if o.status != "stopped"]
    if not ended:
        return
    alerts = owner_alerts(config, database)
    if alerts is None:
        return
    for outcome in ended:
        if outcome.status == "paused":
            alerts.send_failed(frequency, f"issue {outcome.key} paused: {outcome.reason}")
    # a paused issue has not ended: what it has left is the pause's business
    settled = [o.key for o in ended if o.status != "paused"]
    for report in recent_reports(database, settled) if settled else []:
        alerts.issue_checked(report)


def _log(outcome: Outcome, plan: Plan) -> None:
    s = outcome.summary
    what = "retried deferred deliveries of issue" if outcome.retry else "issue"
    posts = f"{len(plan.edition.posts)} posts, " if plan.edition and not outcome.retry else ""
    log.info(
        "%s %s: %s%d recipients, sent %d, deferred %d, failed %d, bounced %d, unknown %d, "
        "skipped %d, %.1f s; %s",
        what,
        outcome.key,
        posts,
        s.done,
        s.sent,
        s.deferred,
        s.failed,
        s.bounced,
        s.unknown,
        s.skipped,
        s.elapsed,
        outcome.status + (f" ({outcome.reason})" if outcome.reason else ""),
    )
    if outcome.status in ("paused", "stopped"):
        log.warning("issue %s %s: %s", outcome.key, outcome.status, outcome.reason)


def _local(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.schedule_tz).strftime("%Y-%m-%d %H:%M %Z")


# -- the scheduler ------------------------------------------------------------------------------


class PatientJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's job store in our database, waiting out a database that went away (up to
    `database.outage_seconds`) instead of failing the scheduler's loop; past that, `on_gone`
    is called (the scheduler stops: exit 1, and systemd starts it again)."""

    def __init__(self, database: Database, on_gone: Callable[[DatabaseAway], None]) -> None:
        super().__init__(engine=database.engine)
        self.database = database
        self.on_gone = on_gone

    def _patient(self, name: str, *args: Any) -> Any:
        method = getattr(super(), name)
        try:
            return self.database.outage.wait_out(lambda: method(*args))
        except DatabaseAway as gone:
            self.on_gone(gone)
            raise

    def lookup_job(self, job_id: str) -> Any:
        return self._patient("lookup_job", job_id)

    def get_due_jobs(self, now: datetime) -> Any:
        return self._patient("get_due_jobs", now)

    def get_next_run_time(self) -> Any:
        return self._patient("get_next_run_time")

    def get_all_jobs(self) -> Any:
        return self._patient("get_all_jobs")

    def add_job(self, job: Any) -> None:
        self._patient("add_job", job)

    def update_job(self, job: Any) -> None:
        self._patient("update_job", job)

    def remove_job(self, job_id: str) -> None:
        self._patient("remove_job", job_id)

    def remove_all_jobs(self) -> None:
        self._patient("remove_all_jobs")


def job_store(database: Database) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(engine=database.engine)


def make_scheduler(
    config: Config,
    database: Database,
    *,
    blocking: bool = True,
    on_gone: Callable[[DatabaseAway], None] | None = None,
) -> BaseScheduler:
    grace = int(config.schedule.misfire_grace_hours * 3600)
    cls: Callable[..., BaseScheduler] = BlockingScheduler if blocking else BackgroundScheduler
    store = job_store(database) if on_gone is None else PatientJobStore(database, on_gone)
    scheduler = cls(
        jobstores={"default": store, "memory": MemoryJobStore()},
        # one send at a time in this process; reading bounces and the daily doctor never
        # wait for a send
        executors={
            "default": ThreadPoolExecutor(1),
            "inbound": ThreadPoolExecutor(1),
            "ops": ThreadPoolExecutor(1),
        },
        job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
        timezone=config.schedule_tz,
    )
    scheduler.add_listener(_listener(config, database), EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    return scheduler


def install_jobs(
    scheduler: BaseScheduler, config: Config, database: Database, config_path: Path
) -> None:
    """Add one job per rhythm (fixed ids, replace_existing), keeping a stored next run time
    that is still a fire time of the trigger, so a run missed while down is made up on start."""
    wanted = rhythms(config.schedule, config.schedule_tz)
    stored = stored_next_runs(database)
    ids = {job_id(r) for r in wanted}
    stale = [name for name in stored if name.startswith(JOB_PREFIX) and name not in ids]
    if stale:
        jobs.delete_jobs(database, job_store(database).jobs_t, stale)
    scheduler.add_job(
        run_retries,
        IntervalTrigger(minutes=config.schedule.retry_minutes, timezone=config.schedule_tz),
        id=RETRY_JOB,
        name="resume and retry",
        args=[str(config_path.resolve())],
        jobstore="memory",
        next_run_time=datetime.now(config.schedule_tz),  # at once: a crash is resumed now
        replace_existing=True,
    )
    scheduler.add_job(
        run_upkeep,
        IntervalTrigger(minutes=1, timezone=config.schedule_tz),
        id=UPKEEP_JOB,
        name="welcomes, webhooks, stale sign-ups",
        args=[str(config_path.resolve())],
        jobstore="memory",
        executor="ops",
        next_run_time=datetime.now(config.schedule_tz),
        replace_existing=True,
    )
    if polls_bounces(config):
        assert config.bounces.poll_minutes is not None
        scheduler.add_job(
            run_bounce_poll,
            IntervalTrigger(minutes=config.bounces.poll_minutes, timezone=config.schedule_tz),
            id=BOUNCE_JOB,
            name="read bounces",
            args=[str(config_path.resolve())],
            jobstore="memory",
            executor="inbound",
            next_run_time=datetime.now(config.schedule_tz),
            replace_existing=True,
        )
    if config.owner.email:  # the daily doctor is there to tell the owner
        scheduler.add_job(
            run_doctor,
            IntervalTrigger(hours=24, timezone=config.schedule_tz),
            id=DOCTOR_JOB,
            name="digest doctor",
            args=[str(config_path.resolve())],
            jobstore="memory",
            executor="ops",
            # not at once: `digest serve`, started with the scheduler, may not answer yet
            next_run_time=datetime.now(config.schedule_tz) + DOCTOR_DELAY,
            replace_existing=True,
        )
    for rhythm in wanted:
        extra: dict[str, Any] = {}
        previous = stored.get(job_id(rhythm))
        if previous is not None:
            again = rhythm.trigger.get_next_fire_time(None, previous)
            if again is not None and abs((again - previous).total_seconds()) < 1:
                extra["next_run_time"] = previous
        scheduler.add_job(
            run_scheduled,
            rhythm.trigger,
            id=job_id(rhythm),
            name=f"{rhythm.frequency} digest",
            args=[str(config_path.resolve()), rhythm.frequency],
            replace_existing=True,
            **extra,
        )


def stored_next_runs(database: Database) -> dict[str, datetime]:
    """Job id -> next run time as stored, read without starting a scheduler."""
    stored = jobs.next_run_times(database, job_store(database).jobs_t)
    return {
        name: datetime.fromtimestamp(stamp, tz=ZoneInfo("UTC")) for name, stamp in stored.items()
    }


def next_runs(config: Config, database: Database) -> dict[str, datetime]:
    """When each rhythm runs next: as stored by a scheduler, else as the trigger says."""
    stored = stored_next_runs(database)
    now = datetime.now(config.schedule_tz)
    result = {}
    for rhythm in rhythms(config.schedule, config.schedule_tz):
        fire = stored.get(job_id(rhythm)) or rhythm.trigger.get_next_fire_time(None, now)
        if fire is not None:
            result[rhythm.frequency] = fire.astimezone(config.schedule_tz)
    return result


def _listener(config: Config, database: Database) -> Callable[[Any], None]:
    """Logs a missed run and a job that raised, and tells the owner of both."""
    grace = timedelta(hours=config.schedule.misfire_grace_hours)

    def listen(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            due = event.scheduled_run_time
            late = datetime.now(due.tzinfo) - due
            log.warning(
                "missed the run of %s due %s: %s late, beyond the %s grace time; skipped, the "
                "next run follows the schedule",
                event.job_id,
                _local(due, config),
                _hours(late),
                _hours(grace),
            )
            alerts = owner_alerts(config, database)
            if alerts is not None:
                alerts.missed(event.job_id, due)
        elif isinstance(event, JobExecutionEvent) and event.exception is not None:
            why = _unexpected(event.exception)
            log.error("the %s job failed: %s", event.job_id, why)
            alerts = owner_alerts(config, database)
            if alerts is not None and event.job_id not in (BOUNCE_JOB, DOCTOR_JOB):
                alerts.send_failed(event.job_id.removeprefix(JOB_PREFIX), why)

    return listen


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def _shut_down(scheduler: BaseScheduler) -> None:
    """`scheduler.shutdown()` from a thread of its own. A signal handler runs in the
    scheduler's own thread, possibly in the middle of its round over the job stores, and
    APScheduler's lock is reentrant: shutting down there empties the memory store under the
    round's feet (JobLookupError). From another thread it waits for the round to end."""
    threading.Thread(
        target=scheduler.shutdown, kwargs={"wait": False}, name="digest-stop", daemon=True
    ).start()


def serve_forever(config: Config, config_path: Path) -> None:
    """`digest schedule`: run in the foreground until SIGINT or SIGTERM. A database away is
    waited out (`database.outage_seconds`); past that the scheduler stops with one sentence
    (exit 1, for systemd to start it again)."""
    from digest.delivery.journal import replay

    _quiet_scheduler_log()
    database = open_database(config.database_url, outage_seconds=config.database.outage_seconds)
    gone: list[DatabaseAway] = []

    def give_up(exc: DatabaseAway) -> None:
        if not gone:
            gone.append(exc)
            STOP.set(exc.message.rstrip("."))
            _shut_down(scheduler)

    scheduler = make_scheduler(config, database, blocking=True, on_gone=give_up)
    # what senders of this machine kept while the database was away, first
    replay(config.path(config.state_dir), database)
    database.outage.wait_out(lambda: install_jobs(scheduler, config, database, config_path))

    def stop(signum: int, frame: Any) -> None:
        if STOP.set(describe(signum), signum):
            forward_to_children(signum)
            log.info(
                "received %s: stopping the send in flight, if any, after its messages in "
                "flight, and stopping",
                signal.Signals(signum).name,
            )
            _shut_down(scheduler)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for frequency, moment in database.outage.wait_out(lambda: next_runs(config, database)).items():
        log.info(
            "scheduler started: the %s digest runs next at %s", frequency, _local(moment, config)
        )
    try:
        scheduler.start()
    finally:
        database.dispose()
    if gone:
        raise gone[0]


class _NoTraceback(logging.Filter):
    """APScheduler's own log lines keep their words but lose the traceback and the driver's
    text after them (DIGEST_DEBUG=1 keeps both)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_scheduler_log() -> None:
    if not os.environ.get("DIGEST_DEBUG"):
        for name in ("scheduler", "executors.default", "executors.inbound", "executors.ops"):
            logging.getLogger(f"apscheduler.{name}").addFilter(_NoTraceback())
