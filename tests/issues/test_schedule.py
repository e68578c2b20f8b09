"""Scheduling: fire times across DST, presets, the job store, misfires, leases, exactly once."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from digest.cli import main
from digest.config.cron import rhythms
from digest.config.load import load_config
from digest.delivery.settings import GROUP
from digest.errors import ConfigError
from digest.issues.schedule import (
    install_jobs,
    job_store,
    make_scheduler,
    scheduled_send,
    stored_next_runs,
)
from digest.store import lease
from digest.store.database import open_database
from digest.store.tables import Delivery, Issue, IssuePost, Subscriber
from tests.issues.test_send import add_subscribers, write_config
from tests.support import paths
from tests.support.processes import running
from tests.support.smtp_server import CountingServer, ScriptedServer, SMTPServer

ROOT = paths.ROOT


def schedule_config(
    tmp_path: Path,
    database_url: str,
    port: int,
    schedule: str,
    blog: Path | None = None,
    **smtp: Any,
) -> Path:
    path = write_config(tmp_path, database_url, port, **smtp)
    text = path.read_text("utf-8") + schedule
    if blog is not None:
        text = text.replace(str(ROOT / "examples" / "blog"), str(blog))
    path.write_text(text, "utf-8")
    return path


# -- fire times ---------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Shanghai"])
def test_weekly_fires_once_a_week_at_nine_across_dst(tmp_path: Path, zone: str) -> None:
    path = schedule_config(
        tmp_path, "sqlite://", 25, f"schedule:\n  cron: '0 9 * * mon'\n  timezone: {zone}\n"
    )
    config = load_config(path)
    [weekly, _monthly] = rhythms(config.schedule, config.schedule_tz)
    tz = ZoneInfo(zone)
    moment = datetime(2026, 1, 1, tzinfo=tz)
    fires = []
    while moment < datetime(2026, 12, 31, tzinfo=tz):
        fire = weekly.trigger.get_next_fire_time(None, moment)
        assert fire is not None
        fires.append(fire)
        moment = fire + timedelta(seconds=1)
    weeks = [f.isocalendar()[:2] for f in fires[:-1]]
    assert len(weeks) == len(set(weeks)) == 52  # once per ISO week, none skipped or doubled
    for fire in fires:
        local = fire.astimezone(tz)
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    utc = [f.astimezone(UTC) for f in fires]  # same-zone subtraction would ignore the offset
    gaps = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(utc)}
    if zone == "Asia/Shanghai":
        assert gaps == {168.0}
    else:  # the weeks with a clock change are an hour shorter or longer in real time
        assert gaps == {167.0, 168.0, 169.0}


def test_presets_and_offered_frequencies(tmp_path: Path) -> None:
    def rhythm_of(schedule: str) -> Any:
        path = schedule_config(tmp_path, "sqlite://", 25, schedule)
        config = load_config(path)
        return rhythms(config.schedule, config.schedule_tz)

    weekly = rhythm_of("schedule:\n  preset: 'weekly: monday 09:00'\n  offer: []\n")
    assert [r.frequency for r in weekly] == ["weekly"]
    daily = rhythm_of("schedule:\n  preset: 'daily: 07:30'\n  offer: [weekly, monthly]\n")
    assert [r.frequency for r in daily] == ["daily", "weekly", "monthly"]
    tz = ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 11, 22, 8, 0, tzinfo=tz)
    fire = daily[0].trigger.get_next_fire_time(None, start)
    assert fire is not None and fire.astimezone(tz) == datetime(2026, 11, 23, 7, 30, tzinfo=tz)
    monthly = rhythm_of("schedule:\n  preset: 'monthly: first monday 09:00'\n")[0]
    firsts = []
    moment = datetime(2026, 1, 1, tzinfo=tz)
    for _ in range(12):
        fire = monthly.trigger.get_next_fire_time(None, moment)
        assert fire is not None
        firsts.append(fire.astimezone(tz))
        moment = fire + timedelta(days=1)
    assert all(f.weekday() == 0 and f.day <= 7 and f.hour == 9 for f in firsts)
    assert len({f.month for f in firsts}) == 12
    for bad in ("'weekly: someday 09:00'", "'hourly: 09:00'", "'weekly: monday 25:00'"):
        with pytest.raises(ConfigError):
            rhythm_of(f"schedule:\n  preset: {bad}\n")
    with pytest.raises(ConfigError, match="not a valid cron"):
        rhythm_of("schedule:\n  cron: '99 9 * * mon'\n")


# -- the job store ------------------------------------------------------------------------------


def test_restart_keeps_one_job_per_rhythm(tmp_path: Path, database_url: str) -> None:
    path = schedule_config(tmp_path, database_url, 25, "")
    config = load_config(path)
    database = open_database(config.database_url)
    for _ in range(3):
        scheduler = make_scheduler(config, database, blocking=False)
        install_jobs(scheduler, config, database, path)
        scheduler.start()
        stored = sorted(job.id for job in scheduler.get_jobs(jobstore="default"))
        assert stored == ["digest-monthly", "digest-weekly"]
        memory = sorted(job.id for job in scheduler.get_jobs(jobstore="memory"))
        assert memory == ["digest-retry", "digest-upkeep"]
        scheduler.shutdown()
    assert sorted(stored_next_runs(database)) == ["digest-monthly", "digest-weekly"]
    database.dispose()


def _down_since(database_url: str, job_id: str, moment: datetime) -> None:
    """Pretend the machine was down: the stored next run time is in the past."""
    database = open_database(database_url)
    store = job_store(database)
    with database.engine.begin() as connection:
        connection.execute(
            update(store.jobs_t)
            .where(store.jobs_t.c.id == job_id)
            .values(next_run_time=moment.timestamp())
        )
    database.dispose()


def _daily_at(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return (
        f"schedule:\n  cron: '{utc.second} {utc.minute} {utc.hour} * * *'\n  timezone: UTC\n"
        f"  frequency: weekly\n  offer: []\n  misfire_grace_hours: 6\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(("down_hours", "runs"), [(2, True), (8, False)])
def test_downtime_within_grace_is_made_up_once_and_beyond_is_skipped(
    tmp_path: Path,
    database_url: str,
    down_hours: int,
    runs: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=down_hours)
    with SMTPServer() as server:
        path = schedule_config(tmp_path, database_url, server.port, _daily_at(missed))
        config = load_config(path)
        add_subscribers(config, 3)
        database = open_database(config.database_url)
        first = make_scheduler(config, database, blocking=False)
        install_jobs(first, config, database, path)
        first.start(paused=True)
        first.shutdown()
        _down_since(database_url, "digest-weekly", missed)
        caplog.set_level(logging.INFO)
        scheduler = make_scheduler(config, database, blocking=False)
        install_jobs(scheduler, config, database, path)
        scheduler.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and runs and len(server.mailbox.messages) < 3:
            time.sleep(0.1)
        time.sleep(1.0)
        scheduler.shutdown(wait=True)
        with database.session() as session:
            issues = session.scalars(select(Issue)).all()
        database.dispose()
    if runs:
        assert len(issues) == 1 and len(server.mailbox.messages) == 3
    else:
        assert issues == [] and server.mailbox.messages == []
        assert "missed the run of digest-weekly" in caplog.text
        assert "beyond the 6.0 h grace time" in caplog.text


# -- exactly once -------------------------------------------------------------------------------


def test_lease_is_exclusive_and_expires(database_url: str) -> None:
    database = open_database(database_url)
    ttl = timedelta(minutes=10)
    assert lease.acquire(database, "send", "a", ttl) is None
    other = lease.acquire(database, "send", "b", ttl)
    assert other is not None and other.name == "a"
    assert lease.acquire(database, "send", "a", ttl) is None  # re-entrant for its holder
    lease.release(database, "send", "a")
    assert lease.acquire(database, "send", "b", timedelta(seconds=-1)) is None  # born expired
    assert lease.acquire(database, "send", "c", ttl) is None
    holder = lease.current_holder(database, "send")
    assert holder is not None and holder.name == "c"
    database.dispose()


def test_a_second_scheduler_skips_while_the_lease_is_held(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with SMTPServer() as server:
        path = schedule_config(tmp_path, database_url, server.port, "")
        config = load_config(path)
        add_subscribers(config, 2)
        database = open_database(config.database_url)
        assert (
            lease.acquire(database, lease.SEND_LEASE, "other-host:1", timedelta(minutes=5)) is None
        )
        caplog.set_level(logging.INFO)
        assert scheduled_send(config, database, "weekly") == 0
        assert "another process holds the send lease (other-host:1 since" in caplog.text
        lease.release(database, lease.SEND_LEASE, "other-host:1")
        assert scheduled_send(config, database, "weekly") == 1
        assert scheduled_send(config, database, "weekly") == 0  # the period is done
        database.dispose()
    assert len(server.mailbox.messages) == 2


def _post(folder: Path, name: str, date: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(
        f"---\ntitle: {name}\ndate: {date.isoformat()}\ncategory: Python\n---\n{name} 的正文。\n",
        "utf-8",
    )


def test_a_quiet_week_sends_nothing_and_the_next_issue_covers_everything_new(
    tmp_path: Path, database_url: str
) -> None:
    blog = tmp_path / "blog"
    monday = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    _post(blog, "first", monday - timedelta(days=3))
    with SMTPServer() as server:
        path = schedule_config(tmp_path, database_url, server.port, "", blog=blog)
        text = path.read_text("utf-8").replace("lookback_days: 3650", "lookback_days: 30")
        path.write_text(text, "utf-8")
        config = load_config(path)
        add_subscribers(config, 2)
        database = open_database(config.database_url)
        assert scheduled_send(config, database, "weekly", now=monday) == 1
        assert scheduled_send(config, database, "weekly", now=monday + timedelta(days=7)) == 0
        _post(blog, "late-but-backdated", monday + timedelta(days=2))
        _post(blog, "third-week", monday + timedelta(days=13))
        assert scheduled_send(config, database, "weekly", now=monday + timedelta(days=14)) == 1
        with database.session() as session:
            covered = {
                issue.key: sorted(
                    session.scalars(select(IssuePost.post_id).where(IssuePost.issue_id == issue.id))
                )
                for issue in session.scalars(select(Issue).order_by(Issue.id))
            }
        database.dispose()
    assert covered == {
        "2026-W45": ["first.md"],
        "2026-W47": ["late-but-backdated.md", "third-week.md"],
    }
    assert len(server.mailbox.messages) == 4


@pytest.mark.slow
def test_monthly_subscribers_get_their_own_digest(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = schedule_config(tmp_path, database_url, server.port, "")
        config = load_config(path)
        add_subscribers(config, 2)
        database = open_database(config.database_url)
        with database.session() as session:
            monthly = session.scalars(select(Subscriber).order_by(Subscriber.id)).first()
            assert monthly is not None
            monthly.frequency = "monthly"
            monthly_email = monthly.email
        assert scheduled_send(config, database, "weekly") == 1
        weekly_recipients = server.mailbox.recipients()
        assert scheduled_send(config, database, "monthly") == 1
        database.dispose()
    assert monthly_email not in weekly_recipients and len(weekly_recipients) == 1
    assert server.mailbox.recipients()[1:] == [monthly_email]
    message_id = server.mailbox.messages[1].parsed()["Message-ID"]  # names the issue's period
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    assert message_id.startswith(f"<digest.{month}.")


# -- real processes -----------------------------------------------------------------------------


def _start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(path), "schedule"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
def test_two_schedulers_send_each_issue_once(tmp_path: Path, database_url: str) -> None:
    every_two_seconds = "schedule:\n  cron: '*/2 * * * * *'\n  offer: []\n"
    with SMTPServer() as server:
        path = schedule_config(tmp_path, database_url, server.port, every_two_seconds)
        config = load_config(path)
        add_subscribers(config, 30)
        open_database(config.database_url).dispose()
        processes = [_start(path), _start(path)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.mailbox.messages) < 30:
            time.sleep(0.2)
        time.sleep(5)  # several more firings of both schedulers
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30)[0] for process in processes]
        assert [process.returncode for process in processes] == [0, 0], outputs
    received = Counter(server.mailbox.recipients())
    assert len(received) == 30 and set(received.values()) == {1}, outputs
    database = open_database(config.database_url)
    with database.session() as session:
        assert len(session.scalars(select(Issue)).all()) == 1
    database.dispose()
    log = "\n".join(outputs)
    assert "scheduler started: the weekly digest runs next at" in log
    assert "issue 20" in log and "sent 30" in log


@pytest.mark.slow
def test_sigterm_stops_the_send_in_flight(tmp_path: Path, database_url: str) -> None:
    slow = "schedule:\n  cron: '*/1 * * * * *'\n  offer: []\n"

    def script(count: int, rcpt: str) -> str | None:
        time.sleep(0.05)
        return None

    with ScriptedServer(script) as server:
        path = schedule_config(tmp_path, database_url, server.port, slow, connections=1)
        config = load_config(path)
        add_subscribers(config, 400)
        open_database(config.database_url).dispose()
        process = _start(path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.mailbox.messages) < 20:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
        assert process.returncode == 0, output
    database = open_database(config.database_url)
    with database.session() as session:
        issue = session.scalars(select(Issue)).one()
        assert issue.status == "stopped" and "stopped on request" in (issue.paused_reason or "")
    database.dispose()
    assert 20 <= len(server.mailbox.messages) < 400
    assert "issue " in output and "stopped" in output


def test_status_reports_runs_lease_waiting_posts_and_paused_issue(
    tmp_path: Path, database_url: str
) -> None:
    import json

    from click.testing import CliRunner

    from digest.cli import main

    path = schedule_config(tmp_path, database_url, 25, "")
    config = load_config(path)
    add_subscribers(config, 2)
    database = open_database(config.database_url)
    lease.acquire(database, lease.SEND_LEASE, "host:42:abc", timedelta(minutes=5))
    with database.session() as session:
        session.add(Issue(key="2026-W46", posts=[], status="paused", paused_reason="login refused"))
    database.dispose()
    result = CliRunner().invoke(main, ["--config", str(path), "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["next_runs"]) == {"weekly", "monthly"}
    assert data["lease"]["holder"] == "host:42:abc"
    assert data["posts_waiting"] >= 14
    assert data["unfinished"] == {"key": "2026-W46", "status": "paused", "reason": "login refused"}
    assert data["subscribers"] == {"active": 2}
    text = CliRunner().invoke(main, ["--config", str(path), "status"]).output
    assert "Next weekly run: " in text and "holds the send lease" in text
    assert "Issue 2026-W46 is paused: login refused" in text


EVERY_SECOND = "schedule:\n  cron: '*/1 * * * * *'\n  offer: []\n"
NEW_YEAR = "schedule:\n  cron: '0 0 1 1 *'\n  offer: []\n  retry_minutes: 0.02\n"  # a look: 1.2 s


def _reschedule(path: Path, schedule: str) -> None:
    text = path.read_text("utf-8")
    path.write_text(text[: text.index("schedule:")] + schedule, "utf-8")


def _ledger(database_url: str) -> Counter[str]:
    database = open_database(database_url)
    with database.session() as session:
        counts = Counter(session.scalars(select(Delivery.status)))
    database.dispose()
    return counts


@pytest.mark.slow
def test_a_scheduler_killed_mid_send_resumes_at_once_when_restarted(
    tmp_path: Path, database_url: str
) -> None:
    with CountingServer(delay=0.005) as server:
        path = schedule_config(tmp_path, database_url, server.port, EVERY_SECOND, connections=2)
        config = load_config(path)
        add_subscribers(config, 300)
        with running(path, "schedule") as first:
            server.wait(lambda s: s.accepted() >= 40)
            first.signal(signal.SIGKILL)  # as a crash, or systemd's SIGKILL after a timeout
            first.finish()
        assert _ledger(config.database_url)["queued"] > 0
        _reschedule(path, NEW_YEAR)  # the next slot is months away
        with running(path, "schedule") as second:  # as systemd's Restart=on-failure
            second.wait_for_line("; finished", stdout=False)  # at once: not at the next slot
            second.signal(signal.SIGTERM)
            assert second.finish() == 0, second.output
        database = open_database(config.database_url)
        runs = stored_next_runs(database)
        database.dispose()
        assert runs["digest-weekly"] > datetime.now(UTC) + timedelta(hours=1)  # not its slot
    database = open_database(config.database_url)
    with database.session() as session:
        rows = session.execute(select(Subscriber.email, Delivery.status).join(Delivery)).all()
    database.dispose()
    statuses = {email: status for email, status in rows}
    unknown = {email for email, status in statuses.items() if status == "unknown"}
    assert set(statuses.values()) <= {"sent", "unknown"} and len(unknown) <= 2 * GROUP
    assert max(server.received.values()) == 1  # nobody twice
    assert {e for e in statuses if server.received[e] == 0} <= unknown  # nobody lost unseen


@pytest.mark.slow
def test_the_scheduler_retries_deferred_deliveries(tmp_path: Path, database_url: str) -> None:
    with CountingServer() as server:
        server.greylist = "451 4.7.1 greylisted"
        path = schedule_config(tmp_path, database_url, server.port, NEW_YEAR, retries=0)
        config = load_config(path)
        add_subscribers(config, 5)
        deferred = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert deferred.exit_code == 1 and _ledger(config.database_url) == {"deferred": 5}
        with running(path, "schedule") as scheduler:  # only its retry job can send now
            server.greylist = None
            server.wait(lambda s: len(s.received) == 5)
            scheduler.wait_for_line("; finished", stdout=False)
            scheduler.signal(signal.SIGTERM)
            assert scheduler.finish() == 0, scheduler.output
    assert set(server.received.values()) == {1}
    assert _ledger(config.database_url) == {"sent": 5}
