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
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from digest.config import Config, load_config
from digest.errors import ConfigError, DigestError
from digest.pipeline import NothingToSend, plan_send, run_send, start_issue
from digest.store import Database, lease, open_database

log = logging.getLogger("digest.schedule")
JOB_PREFIX = "digest-"
LEASE_TTL = timedelta(minutes=10)
STOP = threading.Event()  # set by SIGINT/SIGTERM: the send in flight pauses, the loop ends

_DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_PRESET = re.compile(
    r"^\s*(?P<freq>daily|weekly|monthly)\s*:\s*(?:(?P<first>first)\s+)?(?P<day>[a-z]+)?\s*"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rhythm:
    """When one frequency's digest goes out: a cron trigger in the schedule's time zone."""

    frequency: str
    trigger: CronTrigger

    @property
    def job_id(self) -> str:
        return f"{JOB_PREFIX}{self.frequency}"


def _cron(expression: str, tz: ZoneInfo, where: str) -> CronTrigger:
    fields = expression.split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(expression, timezone=tz)
        if len(fields) == 6:  # an optional leading seconds field (tests fire within seconds)
            second, minute, hour, day, month, dow = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=dow,
                timezone=tz,
            )
    except ValueError as exc:
        raise ConfigError(
            f"{where}: {expression!r} is not a valid cron expression: {exc}."
        ) from None
    raise ConfigError(f"{where}: {expression!r} needs 5 fields (minute hour day month weekday).")


def _preset(text: str, tz: ZoneInfo) -> tuple[str, CronTrigger, str]:
    match = _PRESET.match(text)
    if match is None:
        raise ConfigError(
            f"schedule.preset: {text!r} is not like 'weekly: monday 09:00', 'daily: 09:00' or "
            "'monthly: first monday 09:00'."
        )
    frequency, hour, minute = match["freq"].lower(), int(match["hour"]), int(match["minute"])
    day = (match["day"] or "").lower()
    if hour > 23 or minute > 59 or (day and day not in _DAYS) or (frequency != "daily" and not day):
        raise ConfigError(f"schedule.preset: {text!r} names no valid day and time.")
    dow = _DAYS.get(day, "*")
    day_of_month = "1-7" if frequency == "monthly" else "*"
    cron = f"{minute} {hour} {day_of_month} * {dow if frequency != 'daily' else '*'}"
    return frequency, _cron(cron, tz, "schedule.preset"), cron


def rhythms(config: Config) -> list[Rhythm]:
    """The main rhythm (from `cron` or `preset`) and those subscribers may choose instead."""
    schedule = config.schedule
    tz = config.schedule_tz
    if schedule.preset:
        frequency, trigger, cron = _preset(schedule.preset, tz)
    else:
        frequency, cron = schedule.frequency, schedule.cron
        trigger = _cron(cron, tz, "schedule.cron")
    result = [Rhythm(frequency, trigger)]
    fields = cron.split()
    minute, hour = fields[-5], fields[-4]
    dow = fields[-1] if fields[-1] != "*" else "mon"
    derived = {
        "daily": f"{minute} {hour} * * *",
        "weekly": f"{minute} {hour} * * {dow}",
        "monthly": f"{minute} {hour} 1-7 * {dow}",
    }
    for other in schedule.offer:
        if other != frequency:
            result.append(Rhythm(other, _cron(derived[other], tz, "schedule.offer")))
    return result


# -- the job ------------------------------------------------------------------------------------


def run_scheduled(config_path: str, frequency: str) -> None:
    """The scheduled job (referenced by name in the job store, so it must stay importable)."""
    try:
        config = load_config(config_path)
        database = open_database(config.database_url)
    except DigestError as exc:
        log.error("scheduled %s run skipped: %s", frequency, exc.message)
        return
    try:
        scheduled_send(config, database, frequency, cancel=STOP)
    finally:
        database.dispose()


def scheduled_send(
    config: Config,
    database: Database,
    frequency: str,
    *,
    cancel: threading.Event | None = None,
    now: datetime | None = None,
) -> int:
    """Resume an unfinished issue, then send a new one; under the lease. Returns issues sent."""
    holder = lease.holder_name()
    other = lease.acquire(database, lease.SEND_LEASE, holder, LEASE_TTL)
    if other is not None:
        log.warning(
            "another scheduler holds the send lease (%s, until %s); skipping this %s run",
            other.name,
            _local(other.expires_at, config),
            frequency,
        )
        return 0
    sent = 0
    try:
        with lease.Heartbeat(database, lease.SEND_LEASE, holder, LEASE_TTL):
            for _ in range(2):  # an unfinished issue first, then a new one
                started = time.monotonic()
                try:
                    plan = plan_send(config, database, frequency=frequency, now=now)
                except NothingToSend as exc:
                    log.info("%s run: %s", frequency, exc)
                    break
                issue = start_issue(config, database, plan)
                summary = run_send(config, database, issue, cancel=cancel)
                recipients = (
                    summary.sent
                    + summary.failed
                    + summary.bounced
                    + summary.unknown
                    + summary.skipped
                )
                log.info(
                    "issue %s: %d posts, %d recipients, sent %d, failed %d, bounced %d, "
                    "unknown %d, skipped %d, %.1f s",
                    issue.key,
                    len(plan.edition.posts),
                    recipients,
                    summary.sent,
                    summary.failed,
                    summary.bounced,
                    summary.unknown,
                    summary.skipped,
                    time.monotonic() - started,
                )
                sent += 1
                if summary.paused:
                    log.warning("issue %s paused: %s", issue.key, summary.paused)
                    break
                if not plan.resumed:
                    break
    except DigestError as exc:
        log.error("%s run failed: %s", frequency, exc.message)
    finally:
        lease.release(database, lease.SEND_LEASE, holder)
    return sent


def _local(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.schedule_tz).strftime("%Y-%m-%d %H:%M %Z")


# -- the scheduler ------------------------------------------------------------------------------


def job_store(database: Database) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(engine=database.engine)


def make_scheduler(config: Config, database: Database, *, blocking: bool = True) -> BaseScheduler:
    grace = int(config.schedule.misfire_grace_hours * 3600)
    cls: Callable[..., BaseScheduler] = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        jobstores={"default": job_store(database)},
        executors={"default": ThreadPoolExecutor(1)},  # one send at a time in this process
        job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},
        timezone=config.schedule_tz,
    )
    scheduler.add_listener(_listener(config), EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    return scheduler


def install_jobs(
    scheduler: BaseScheduler, config: Config, database: Database, config_path: Path
) -> None:
    """Add one job per rhythm (fixed ids, replace_existing), keeping a stored next run time
    that is still a fire time of the trigger, so a run missed while down is made up on start."""
    wanted = rhythms(config)
    stored = stored_next_runs(database)
    ids = {r.job_id for r in wanted}
    stale = [job_id for job_id in stored if job_id.startswith(JOB_PREFIX) and job_id not in ids]
    if stale:
        store = job_store(database)
        with database.engine.begin() as connection:
            connection.execute(delete(store.jobs_t).where(store.jobs_t.c.id.in_(stale)))
    for rhythm in wanted:
        extra: dict[str, Any] = {}
        previous = stored.get(rhythm.job_id)
        if previous is not None:
            again = rhythm.trigger.get_next_fire_time(None, previous)
            if again is not None and abs((again - previous).total_seconds()) < 1:
                extra["next_run_time"] = previous
        scheduler.add_job(
            run_scheduled,
            rhythm.trigger,
            id=rhythm.job_id,
            name=f"{rhythm.frequency} digest",
            args=[str(config_path.resolve()), rhythm.frequency],
            replace_existing=True,
            **extra,
        )


def stored_next_runs(database: Database) -> dict[str, datetime]:
    """Job id -> next run time as stored, read without starting a scheduler."""
    store = job_store(database)
    try:
        with database.engine.connect() as connection:
            rows = connection.execute(select(store.jobs_t.c.id, store.jobs_t.c.next_run_time))
            result = {
                job_id: datetime.fromtimestamp(stamp, tz=ZoneInfo("UTC"))
                for job_id, stamp in rows
                if stamp is not None
            }
            connection.rollback()
    except SQLAlchemyError:
        return {}  # the table does not exist before the first start
    return result


def next_runs(config: Config, database: Database) -> dict[str, datetime]:
    """When each rhythm runs next: as stored by a scheduler, else as the trigger says."""
    stored = stored_next_runs(database)
    now = datetime.now(config.schedule_tz)
    result = {}
    for rhythm in rhythms(config):
        fire = stored.get(rhythm.job_id) or rhythm.trigger.get_next_fire_time(None, now)
        if fire is not None:
            result[rhythm.frequency] = fire.astimezone(config.schedule_tz)
    return result


def _listener(config: Config) -> Callable[[Any], None]:
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
        elif isinstance(event, JobExecutionEvent) and event.exception is not None:
            log.error("the %s job failed: %s", event.job_id, event.exception)

    return listen


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def serve_forever(config: Config, config_path: Path) -> None:
    """`digest schedule`: run in the foreground until SIGINT or SIGTERM."""
    database = open_database(config.database_url)
    scheduler = make_scheduler(config, database, blocking=True)
    install_jobs(scheduler, config, database, config_path)

    def stop(signum: int, frame: Any) -> None:
        log.info(
            "received %s: pausing the send in flight, if any, and stopping",
            signal.Signals(signum).name,
        )
        STOP.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for frequency, moment in next_runs(config, database).items():
        log.info(
            "scheduler started: the %s digest runs next at %s", frequency, _local(moment, config)
        )
    try:
        scheduler.start()
    finally:
        database.dispose()
