"""Alerts to the owner: each cause mails `owner.email` once (a real SMTP server on 127.0.0.1),
however often it repeats that day, outside the newsletter's ledger and audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from sqlalchemy import func, select

from digest.config.load import load_config
from digest.config.ops import alert_settings
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.issues.schedule import (
    _listener,
    owner_alerts,
    recent_reports,
    run_doctor,
    scheduled_send,
)
from digest.ops.alerts import Alerts
from digest.store import alerts as claims
from digest.store.database import open_database
from digest.store.tables import Delivery, ReturnedMail, Subscriber
from tests.issues.test_send import add_subscribers, write_config
from tests.support.dns_server import DnsServer
from tests.support.smtp_server import Received, ScriptedServer, SMTPServer

OWNER = "owner@example.org"


def alert_config(tmp_path: Path, port: int, extra: str = "", **smtp: object) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", port, **smtp)
    path.write_text(
        path.read_text("utf-8") + f"owner:\n  email: {OWNER}\n" + extra, encoding="utf-8"
    )
    return path


def to_owner(messages: list[Received]) -> list[str]:
    """The subjects of the mails to the owner."""
    return [m.parsed()["Subject"] for m in messages if m.rcpt_tos == [OWNER]]


def outside_the_ledger(config: Config) -> None:
    database = open_database(config.database_url)
    with database.session() as session:
        assert session.scalar(select(Subscriber).where(Subscriber.email == OWNER)) is None
        owner_rows = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .join(Subscriber)
            .where(Subscriber.email == OWNER)
        )
        assert owner_rows == 0
    database.dispose()


@pytest.mark.slow  # three sends that each wait out a lost session
def test_a_paused_scheduled_send_alerts_the_owner_once(tmp_path: Path) -> None:
    def script(count: int, recipient: str) -> str | None:
        return None if recipient == OWNER else "drop-before-data"  # every session is lost

    with ScriptedServer(script) as server:
        path = alert_config(
            tmp_path, server.port, retries=0, connections=1, max_consecutive_failures=2
        )
        config = load_config(path)
        add_subscribers(config, 5)
        database = open_database(config.database_url)
        for _ in range(3):  # the first run pauses, the others resume and pause again
            scheduled_send(config, database, "weekly")
        database.dispose()
        mails = server.mailbox.messages
    subjects = to_owner(mails)
    failed = [s for s in subjects if s.endswith(": the weekly send failed")]
    assert len(failed) == 1 and len(set(subjects)) == len(subjects), subjects
    assert failed[0] == "[digest] Incoming Transmission: the weekly send failed"
    body = next(m for m in mails if m.rcpt_tos == [OWNER]).parsed()
    assert body["Auto-Submitted"] == "auto-generated" and body["From"] == config.sender.from_
    assert "paused" in body.get_content()
    outside_the_ledger(config)


def test_an_issue_ending_with_deferred_deliveries_alerts_once(tmp_path: Path) -> None:
    def script(count: int, recipient: str) -> str | None:
        return "rcpt-4xx" if recipient == "reader1@example.com" else None

    with ScriptedServer(script) as server:
        config = load_config(alert_config(tmp_path, server.port))
        add_subscribers(config, 4)
        database = open_database(config.database_url)
        scheduled_send(config, database, "weekly")
        scheduled_send(config, database, "weekly", resume_only=True)
        alerts = owner_alerts(config, database)
        assert alerts is not None
        for report in recent_reports(database):  # the same cause, noticed again
            assert alerts.unsettled(report) is False
        database.dispose()
        subjects = to_owner(server.mailbox.messages)
    assert len(subjects) == 1, subjects
    assert "ended with 1 deferred and 0 unknown deliveries" in subjects[0]
    outside_the_ledger(config)


@pytest.mark.parametrize(
    ("kind", "count", "subject"),
    [("complaint", 1, "complaint rate 10.00%"), ("hard", 1, "bounce rate 10.00%")],
)
def test_a_complaint_or_bounce_rate_over_its_limit_alerts_once(
    tmp_path: Path, kind: str, count: int, subject: str
) -> None:
    with SMTPServer() as server:
        config = load_config(alert_config(tmp_path, server.port))
        add_subscribers(config, 10)
        database = open_database(config.database_url)
        scheduled_send(config, database, "weekly")
        assert to_owner(server.mailbox.messages) == []  # a clean send: nothing to say
        [report] = recent_reports(database)
        with database.session() as session:
            delivery = session.scalars(select(Delivery).limit(1)).one()
            for n in range(count):
                session.add(
                    ReturnedMail(
                        key=f"<returned-{n}@example.com>",
                        kind=kind,
                        source="test",
                        subscriber_id=delivery.subscriber_id,
                        issue_id=delivery.issue_id,
                        delivery_id=delivery.id,
                    )
                )
        alerts = owner_alerts(config, database)
        assert alerts is not None
        for _ in range(3):  # every bounce poll looks again
            for report in recent_reports(database):
                alerts.rates(report)
        database.dispose()
        subjects = to_owner(server.mailbox.messages)
    assert len(subjects) == 1 and subject in subjects[0], subjects
    outside_the_ledger(config)


def test_rates_at_their_limits_do_not_alert(tmp_path: Path) -> None:
    """0.1 % and 2 % exactly are within the limits: only passing them alerts."""
    with SMTPServer() as server:
        config = load_config(alert_config(tmp_path, server.port))
        database = open_database(config.database_url)
        settings = alert_settings(config)
        assert settings is not None
        alerts = Alerts(
            settings,
            database,
            SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
        )
        from digest.store.report import IssueReport

        report = IssueReport(
            key="2026-W01",
            status="finished",
            created_at=datetime.now(UTC),
            posts=1,
            deliveries={"sent": 1000},
            returned={"complaint": 1, "hard": 15, "soft": 5},
        )
        assert report.complaint_rate == 0.001 and report.bounce_rate == 0.02
        assert alerts.rates(report) == []
        database.dispose()
        assert server.mailbox.messages == []


def test_a_missed_run_alerts_once_a_day(tmp_path: Path) -> None:
    with SMTPServer() as server:
        config = load_config(alert_config(tmp_path, server.port))
        database = open_database(config.database_url)
        listen = _listener(config, database)
        due = datetime.now(UTC) - timedelta(hours=9)
        for _ in range(2):
            listen(JobExecutionEvent(EVENT_JOB_MISSED, "digest-weekly", "default", due))
        subjects = to_owner(server.mailbox.messages)
        assert len(subjects) == 1 and "a scheduled run was missed (digest-weekly)" in subjects[0]
        # the next day the same cause mails again
        settings = alert_settings(config)
        assert settings is not None
        tomorrow = Alerts(
            settings,
            database,
            SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
            clock=lambda: datetime.now(UTC) + timedelta(days=1),
        )
        assert tomorrow.missed("digest-weekly", due) is True
        assert tomorrow.missed("digest-weekly", due) is False
        assert len(to_owner(server.mailbox.wait_for(2))) == 2
        assert [cause for cause, _ in claims.sent(database)] == ["missed:digest-weekly"] * 2
        database.dispose()


def test_a_failing_doctor_alerts_once(tmp_path: Path) -> None:
    """The daily doctor against an empty DNS zone: SPF, DMARC... fail; one mail lists them."""
    with SMTPServer() as server, DnsServer() as dns:
        path = alert_config(tmp_path, server.port, f'dns:\n  nameservers: ["{dns.nameserver}"]\n')
        open_database(load_config(path).database_url).dispose()
        run_doctor(str(path))
        run_doctor(str(path))
        mails = [m for m in server.mailbox.messages if m.rcpt_tos == [OWNER]]
    assert len(mails) == 1
    message = mails[0].parsed()
    assert "digest doctor fails: dmarc, web" in message["Subject"]
    body = message.get_content()
    assert "- dmarc: " in body and "→ publish _dmarc.example.com. IN TXT" in body
    assert ("_dmarc.blog.example.com", "TXT") in dns.asked  # DNS went to the test server


def test_a_failed_alert_mail_is_tried_again(tmp_path: Path) -> None:
    """A mail the relay refused releases its claim: the next occurrence sends it."""
    with SMTPServer() as server:
        config = load_config(alert_config(tmp_path, server.port))
        database = open_database(config.database_url)
        settings = alert_settings(config)
        assert settings is not None
        dead = load_config(alert_config(tmp_path / "dead", 1))  # nothing listens on port 1
        failing = Alerts(
            settings,
            database,
            SmtpMailer(smtp_settings(dead), sender_settings(dead), dkim_settings(dead)),
        )
        assert failing.send_failed("weekly", "boom") is False
        assert claims.sent(database) == []
        working = Alerts(
            settings,
            database,
            SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
        )
        assert working.send_failed("weekly", "boom") is True
        assert len(to_owner(server.mailbox.messages)) == 1
        database.dispose()


def test_the_scheduler_runs_the_doctor_daily_when_there_is_an_owner(tmp_path: Path) -> None:
    from digest.issues.schedule import DOCTOR_JOB, install_jobs, make_scheduler

    for owner, expected in ((True, True), (False, False)):
        folder = tmp_path / str(owner)
        path = alert_config(folder, 25)
        if not owner:
            path.write_text(path.read_text("utf-8").replace(f"owner:\n  email: {OWNER}\n", ""))
        config = load_config(path)
        assert (config.owner.email is not None) is owner
        database = open_database(config.database_url)
        scheduler = make_scheduler(config, database, blocking=False)
        install_jobs(scheduler, config, database, path)
        scheduler.start(paused=True)
        job = scheduler.get_job(DOCTOR_JOB)
        assert (job is not None) is expected
        if job is not None:
            assert job.trigger.interval == timedelta(hours=24)
            assert job.next_run_time > datetime.now(UTC) + timedelta(minutes=4)
        scheduler.shutdown(wait=False)
        database.dispose()


def test_processes_noticing_one_cause_at_once_mail_once(tmp_path: Path, database_url: str) -> None:
    """Eight senders (threads, each its own Alerts, as separate processes would have) notice
    the same cause at once: the claim in the database lets one mail go."""
    import threading

    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        path.write_text(path.read_text("utf-8") + f"owner:\n  email: {OWNER}\n", "utf-8")
        config = load_config(path)
        settings = alert_settings(config)
        assert settings is not None
        database = open_database(config.database_url)
        start = threading.Barrier(8)
        results: list[bool] = []

        def notice() -> None:
            alerts = Alerts(
                settings,
                database,
                SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
            )
            start.wait()
            results.append(alerts.send_failed("weekly", "the relay is on fire"))

        threads = [threading.Thread(target=notice) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == [False] * 7 + [True]
        assert len(to_owner(server.mailbox.wait_for(1))) == 1
        database.dispose()
