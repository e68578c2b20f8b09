"""A real `digest send` killed with SIGKILL mid-send, then resumed: nobody twice, nobody lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.config import load_config
from digest.store import Delivery, Issue, Subscriber, open_database
from tests.smtp_server import SMTPServer
from tests.test_send import add_subscribers, write_config

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIBERS = 3000
KILL_AFTER = (40, 900, 2100)  # messages received before each SIGKILL


def start_send(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(path), "send", "--yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_killed_sends_resume_without_duplicates(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port, connections=2)
        config = load_config(path)
        add_subscribers(config, SUBSCRIBERS)
        kills = 0
        for threshold in KILL_AFTER:
            process = start_send(path)
            deadline = time.monotonic() + 120
            while len(server.mailbox.messages) < threshold and process.poll() is None:
                assert time.monotonic() < deadline, "the send made no progress"
                time.sleep(0.01)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(30)
        assert kills == len(KILL_AFTER), "every kill should land mid-send"
        finished = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert finished.exit_code == 0, finished.output
        assert "Resuming issue" in finished.output
        again = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert "Nothing new" in again.output
        received = Counter(server.mailbox.recipients())
    database = open_database(config.database_url)
    with database.session() as session:
        issues = session.scalars(select(Issue)).all()
        rows = session.execute(select(Subscriber.email, Delivery.status).join(Delivery)).all()
    database.dispose()
    assert len(issues) == 1 and issues[0].status == "finished"
    statuses = dict(rows)
    assert len(rows) == len(statuses) == SUBSCRIBERS  # one delivery row per subscriber
    assert set(statuses.values()) <= {"sent", "unknown"}
    unknown = [email for email, status in statuses.items() if status == "unknown"]
    assert 0 < len(unknown) <= len(KILL_AFTER) * 2 * 20  # at most the claimed chunks in flight
    for email, status in statuses.items():
        if status == "sent":
            assert received[email] == 1, email
        else:
            assert received[email] <= 1, email  # in flight: maybe received, never twice
    assert max(received.values()) == 1
    report = CliRunner().invoke(main, ["--config", str(path), "report", "--json"])
    assert f'"unknown": {len(unknown)}' in report.output
