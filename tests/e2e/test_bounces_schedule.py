"""`digest schedule` reads the configured Maildir every `bounces.poll_minutes`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.bounce_fixtures import fixture_bytes
from tests.support.bounce_store import VERP_EMAIL, load, maildir, seed, standing, write_config
from tests.support.processes import running
from tests.support.smtp_server import SMTPServer

SCHEDULE = "schedule:\n  cron: '0 0 1 1 *'\n  offer: []\n"


def test_the_scheduler_polls_the_maildir(tmp_path: Path, database_url: str) -> None:
    box = maildir(tmp_path / "mail")
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, maildir=box, poll_minutes=0.02)
        path.write_text(
            path.read_text("utf-8")
            + SCHEDULE
            + f"smtp:\n  host: 127.0.0.1\n  port: {server.port}\n",
            "utf-8",
        )
        config = load(path)
        seed(config)
        with running(path, "schedule") as scheduler:
            scheduler.wait_for_line("bounces: 0 messages in Maildir", stdout=False)
            # delivered the way an MTA does: written in tmp/, then renamed into new/
            (box / "tmp" / "dsn.1").write_bytes(fixture_bytes("postfix-dsn-verp.eml"))
            os.rename(box / "tmp" / "dsn.1", box / "new" / "dsn.1")
            line = scheduler.wait_for_line("bounces: 1 messages", stdout=False)
            assert "bounced 1" in line
            scheduler.signal(signal.SIGTERM)
            assert scheduler.finish() == 0, scheduler.output
    assert standing(config)[VERP_EMAIL] == "bounced"
    assert os.listdir(box / "new") == [] and os.listdir(box / "cur") == ["dsn.1:2,S"]
