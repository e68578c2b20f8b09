"""End to end: a real `digest send` to aiosmtpd, then the List-Unsubscribe URL of one received
message POSTed exactly as a mail client's one-click button does (RFC 8058), then `digest report`
counts that unsubscribe against the issue — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.store.database import open_database
from digest.store.tables import Event, Issue, Status, Subscriber
from digest.web.public import create_public_app
from tests.issues.test_send import add_subscribers, send, write_config
from tests.support.smtp_server import SMTPServer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def test_one_click_from_a_sent_message_is_counted_against_its_issue(
    tmp_path: Path, database_url: str
) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        config = load_config(path, environ={})
        add_subscribers(config, 6)
        result = send(path, "--yes")
        assert result.exit_code == 0, result.output
    assert len(server.mailbox.messages) == 6
    received = next(m for m in server.mailbox.messages if m.rcpt_tos == ["reader4@example.com"])
    message = received.parsed()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [https] = [u for u in re.findall(r"<([^>]+)>", message["List-Unsubscribe"]) if "://" in u]
    url = urlsplit(https)
    assert (url.scheme, url.netloc) == ("https", "news.example.com")
    assert url.path.startswith("/u/") and not url.query

    database = open_database(config.database_url)
    try:
        with TestClient(create_public_app(config, database), follow_redirects=False) as client:
            response = client.post(
                url.path,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 200 and "location" not in response.headers
            assert "cookie" not in response.request.headers
        with database.session() as session:
            issue = session.scalars(select(Issue)).one()
            issue_id, issue_key = issue.id, issue.key
            statuses = dict(session.execute(select(Subscriber.email, Subscriber.status)).all())
            unsubscribes = session.execute(
                select(Event.subscriber_id, Event.issue_id, Event.method).where(
                    Event.kind == "unsubscribe"
                )
            ).all()
            reader4 = session.scalar(
                select(Subscriber.id).where(Subscriber.email == "reader4@example.com")
            )
    finally:
        database.dispose()
    assert statuses.pop("reader4@example.com") == Status.UNSUBSCRIBED
    assert set(statuses.values()) == {Status.ACTIVE}
    assert [tuple(row) for row in unsubscribes] == [(reader4, issue_id, "one-click")]

    report = CliRunner().invoke(main, ["--config", str(path), "report", issue_key, "--json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.output)
    assert data["key"] == issue_key
    assert data["unsubscribes"] == {"one-click": 1} and data["unsubscribes_total"] == 1
    assert data["recipients"] == 6 and data["deliveries"] == {"sent": 6}
