"""Click counting (`tracking.clicks: aggregate`) end to end: a real send over SMTP with DKIM,
people's clicks, a HEAD and a scanner right after delivery counted apart, `digest report
--json` per post, nothing personal in the click table, a changed token refused, and every
message still verifying with dkimpy."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from starlette.requests import Request
from starlette.testclient import TestClient

from digest.cli.base import main
from digest.config.load import load_config
from digest.issues.plan import plan_send
from digest.issues.send import send_issue
from digest.store.database import open_database
from digest.store.tables import Click, Delivery
from digest.web.clicks import is_human
from digest.web.public import create_public_app
from tests.delivery.test_dkim import keygen, resolver, verifies
from tests.issues.test_send import add_subscribers, write_config
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import Clock

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SCANNER = "python-requests/2.31"
CLICK = re.compile(r"https://news\.example\.com/c/([A-Za-z0-9._-]+)")


@pytest.mark.slow
def test_aggregate_clicks_per_post(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        key_file, record = keygen(path, tmp_path / "keys")
        selector = record.split("._domainkey.", 1)[0]
        path.write_text(
            path.read_text("utf-8")
            + f"dkim:\n  domain: blog.example.com\n  selector: {selector}\n"
            + f"  key_file: {key_file}\ntracking:\n  clicks: aggregate\n",
            encoding="utf-8",
        )
        config = load_config(path, environ={})
        add_subscribers(config, 3, categories=None)
        database = open_database(config.database_url)
        outcome = send_issue(config, database, plan_send(config, database)).outcomes[0]
        assert outcome.summary.sent == 3
        messages = server.mailbox.messages
    dns = resolver(record)
    assert len(messages) == 3
    assert all(verifies(m.data, 0, dns) for m in messages)  # DKIM survives the longer links
    first = messages[0].parsed()
    unsubscribe = str(first["List-Unsubscribe"])
    assert "/u/" in unsubscribe and "/c/" not in unsubscribe  # never touched
    html = first.get_body(("html",))
    text = first.get_body(("plain",))
    assert html is not None and text is not None
    tokens = list(dict.fromkeys(CLICK.findall(html.get_content())))
    assert len(tokens) >= 2 and CLICK.search(text.get_content())

    # every recipient got the same links: they name the issue and the post, nobody
    def links(message: object) -> set[str]:
        body = message.parsed().get_body(("html",))  # type: ignore[attr-defined]
        return set(CLICK.findall(body.get_content()))

    assert all(links(m) == set(tokens) for m in messages), [links(m) for m in messages]

    with database.session() as session:
        sent_at = session.scalar(select(func.max(Delivery.sent_at)))
    assert sent_at is not None
    clock = Clock()
    app = create_public_app(config, database, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        clock.now = sent_at + timedelta(seconds=5)  # a scanner, seconds after delivery
        scanned = client.get(f"/c/{tokens[0]}", headers={"user-agent": SCANNER})
        headed = client.head(f"/c/{tokens[0]}", headers={"user-agent": BROWSER})
        clock.now = sent_at + timedelta(minutes=5)  # people
        answers = [
            client.get(f"/c/{token}", headers={"user-agent": BROWSER})
            for token in (tokens[0], tokens[0], tokens[1])
        ]
        issue, link, signature = tokens[1].split(".")
        changed = client.get(f"/c/{issue}.{'0' if link != '0' else '1'}.{signature}")
        foreign = client.get("/c/https%3A%2F%2Fevil.example")
    assert scanned.status_code == headed.status_code == 302
    for answer in answers:
        assert answer.status_code == 302
        assert answer.headers["location"].startswith("https://blog.example.com/")
    assert changed.status_code == 400 and "location" not in changed.headers
    assert foreign.status_code in (400, 404) and "location" not in foreign.headers

    result = CliRunner().invoke(main, ["--config", str(path), "report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)[0]
    by_link = {c["link"]: (c["human"], c["robot"]) for c in report["clicks"]}
    assert by_link[0] == (2, 2) and by_link[1] == (1, 0)
    assert sum(h for h, _ in by_link.values()) == 3

    columns = {c["name"] for c in inspect(database.engine).get_columns("clicks")}
    assert columns == {"id", "issue_id", "link", "human", "delivery_id", "created_at"}
    with database.session() as session:
        rows = session.scalars(select(Click)).all()
    assert len(rows) == 5 and all(row.delivery_id is None for row in rows)
    table = "|".join(str(vars(row)) for row in rows)
    assert "@" not in table and "reader" not in table
    database.dispose()


def request(method: str = "GET", **headers: str) -> Request:
    raw = [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": method, "path": "/c/x", "headers": raw})


SENT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("what", "req", "seconds_after", "human"),
    [
        ("a person, minutes later", request(user_agent=BROWSER), 300, True),
        ("a person, right away", request(user_agent=BROWSER), 5, True),
        ("HEAD, whoever, whenever", request("HEAD", user_agent=BROWSER), 3600, False),
        ("Chromium's prefetch", request(sec_purpose="prefetch", user_agent=BROWSER), 3600, False),
        ("a prefetch", request(purpose="prefetch", user_agent=BROWSER), 3600, False),
        ("Firefox's prefetch", request(x_moz="prefetch", user_agent=BROWSER), 3600, False),
        ("a mail app's preview", request(x_purpose="preview", user_agent=BROWSER), 3600, False),
        ("an HTTP library at once", request(user_agent=SCANNER), 5, False),
        ("no user agent at once", request(), 5, False),
        ("a gateway at the window's end", request(user_agent="Mimecast/1.0"), 60, False),
        ("an HTTP library after the window", request(user_agent=SCANNER), 61, True),
        (
            "Safe Links dressed as a browser",
            request(user_agent="Mozilla/5.0 (compatible; SafeLinks)"),
            10,
            False,
        ),
    ],
)
def test_who_clicked(what: str, req: Request, seconds_after: int, human: bool) -> None:
    """How people are told from robots (digest.web.clicks), with a controlled delivery time
    and `scanner_seconds` 60."""
    now = SENT + timedelta(seconds=seconds_after)
    assert is_human(req, now, SENT, scanner_seconds=60) is human, what
