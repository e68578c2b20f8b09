"""`/archive/feed.xml`: an Atom feed feedparser reads without complaint, one entry per
finished issue (an unfinished one is not in it), linked from the archive; each post title in
the archive links to the original post; the favicon is served."""

from __future__ import annotations

from pathlib import Path

import feedparser
from sqlalchemy import update
from starlette.testclient import TestClient

from digest.config.load import load_config
from digest.issues.plan import plan_send
from digest.issues.send import send_issue
from digest.store.database import open_database
from digest.store.tables import Issue, IssueStatus
from digest.web.public import create_public_app
from tests.issues.test_send import add_subscribers, write_config
from tests.support.smtp_server import SMTPServer


def test_feed_has_one_entry_per_finished_issue(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as smtp:
        config = load_config(write_config(tmp_path, database_url, smtp.port), environ={})
        add_subscribers(config, 1, categories=None)
        database = open_database(config.database_url)
        send_issue(config, database, plan_send(config, database))
    with database.session() as session:
        finished = session.query(Issue).filter(Issue.status == IssueStatus.FINISHED).all()
        assert len(finished) == 1
        key = finished[0].key
        post = finished[0].posts[0]
        session.add(Issue(key="unfinished", posts=[], status=IssueStatus.SENDING))
    app = create_public_app(config, database)
    with TestClient(app) as client:
        answer = client.get("/archive/feed.xml")
        archive = client.get("/archive/")
        favicon = client.get("/favicon.svg")
    database.dispose()
    assert answer.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(answer.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.link == f"https://news.example.com/archive/{key}/"
    assert post["title"] in entry.content[0].value and post["url"] in entry.content[0].value
    assert '<link rel="alternate" type="application/atom+xml"' in archive.text
    assert f'href="{post["url"]}"' in archive.text  # the post title links to the original
    assert '<link rel="icon" href="/favicon.svg"' in archive.text
    assert favicon.status_code == 200 and favicon.content.startswith(b"<svg")


def test_feed_of_no_issue_is_valid(tmp_path: Path, database_url: str) -> None:
    config = load_config(write_config(tmp_path, database_url, 25), environ={})
    database = open_database(config.database_url)
    with database.session() as session:
        session.execute(update(Issue).values(status=IssueStatus.FINISHED))
    with TestClient(create_public_app(config, database)) as client:
        parsed = feedparser.parse(client.get("/archive/feed.xml").content)
    database.dispose()
    assert not parsed.bozo and parsed.entries == []
