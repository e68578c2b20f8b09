"""Click counting end to end. `tracking.clicks: aggregate`: a real send over SMTP with DKIM,
people's clicks, a HEAD and a scanner right after delivery counted apart, `digest report
--json` per post, nothing personal in the click table, a changed token refused, and every
message still verifying with dkimpy. `personal`: the same send with each reader's links
naming their delivery, clicks counted against it and in their history on the desk, tokens
with another delivery, link or issue refused; erased readers and aggregate mode name nobody;
the sign-up page's notice only in this mode."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, inspect, select
from starlette.requests import Request
from starlette.testclient import TestClient

from digest.cli.base import main
from digest.config.credentials import keyring
from digest.config.load import load_config
from digest.config.schema import Config
from digest.issues.plan import plan_send
from digest.issues.send import send_issue
from digest.store import ledger, subscribers
from digest.store.database import Database, open_database
from digest.store.desk import timeline
from digest.store.tables import Click, Delivery, Event, Issue, Subscriber
from digest.tokens import ClickData, make_click_token, read_click_token
from digest.web.clicks import is_human
from digest.web.public import create_public_app
from tests.delivery.test_dkim import keygen, resolver, verifies
from tests.issues.test_send import add_subscribers, write_config
from tests.support.desk import add_admin
from tests.support.desk import client as desk_client
from tests.support.smtp_server import Received, SMTPServer
from tests.web.test_public_web import Clock

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SCANNER = "python-requests/2.31"
CLICK = re.compile(r"https://news\.example\.com/c/([A-Za-z0-9._-]+)")


def signed_send(
    tmp_path: Path, database_url: str, clicks: str
) -> tuple[Path, Config, Database, list[Received], object]:
    """A real send of an issue to 3 readers over SMTP, DKIM-signed, with `tracking.clicks`
    set to `clicks`: the config file, the configuration, the database, the messages the
    server received and a resolver holding the DKIM key's record."""
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        key_file, record = keygen(path, tmp_path / "keys")
        selector = record.split("._domainkey.", 1)[0]
        path.write_text(
            path.read_text("utf-8")
            + f"dkim:\n  domain: blog.example.com\n  selector: {selector}\n"
            + f"  key_file: {key_file}\ntracking:\n  clicks: {clicks}\n",
            encoding="utf-8",
        )
        config = load_config(path, environ={})
        add_subscribers(config, 3, categories=None)
        database = open_database(config.database_url)
        outcome = send_issue(config, database, plan_send(config, database)).outcomes[0]
        assert outcome.summary.sent == 3
        messages = server.mailbox.messages
    return path, config, database, messages, resolver(record)


@pytest.mark.slow
def test_aggregate_clicks_per_post(tmp_path: Path, database_url: str) -> None:
    path, config, database, messages, dns = signed_send(tmp_path, database_url, "aggregate")
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


@pytest.mark.slow
def test_personal_clicks_name_the_delivery(tmp_path: Path, database_url: str) -> None:
    """`tracking.clicks: personal` end to end: a real send over SMTP with DKIM; each
    message's post links (HTML and text) name its own delivery; a person's click is counted
    against it and shows in their history on the desk, robots' are counted apart and stay
    out of it; a token with another delivery, another link or another issue's delivery is
    refused; the unsubscribe links are untouched and every message verifies."""
    path, config, database, messages, dns = signed_send(tmp_path, database_url, "personal")
    assert len(messages) == 3
    assert all(verifies(m.data, 0, dns) for m in messages)  # DKIM survives per-reader links
    keys = keyring(config)
    with database.session() as session:
        rows = session.execute(
            select(Subscriber.email, Delivery.id, Delivery.subscriber_id, Delivery.issue_id).join(
                Delivery, Delivery.subscriber_id == Subscriber.id
            )
        ).all()
    delivery_of = {email: (delivery, person) for email, delivery, person, _ in rows}
    issue_id = rows[0].issue_id

    tokens: dict[str, list[str]] = {}  # each reader's click tokens, in the HTML's order
    for received in messages:
        message = received.parsed()
        address = str(message["To"]).rsplit("<", 1)[-1].rstrip(">")
        delivery, _ = delivery_of[address]
        unsubscribe = str(message["List-Unsubscribe"])
        assert "/u/" in unsubscribe and "/c/" not in unsubscribe  # never touched
        html = message.get_body(("html",))
        text = message.get_body(("plain",))
        assert html is not None and text is not None
        for part in (html.get_content(), text.get_content()):
            assert "x-digest:" not in part
            assert re.search(r"https://news\.example\.com/u/[A-Za-z0-9._-]+", part)  # footer
            assert re.search(r"https://news\.example\.com/p/[A-Za-z0-9._-]+", part)
            named = {read_click_token(keys, token) for token in CLICK.findall(part)}
            links = {click.link for click in named}
            assert len(links) >= 2  # every post, in both parts
            assert named == {ClickData(issue_id, link, delivery) for link in links}
        tokens[address] = list(dict.fromkeys(CLICK.findall(html.get_content())))
    ada, bob, cyd = sorted(tokens)  # reader0, reader1, reader2
    assert not set(tokens[ada]) & set(tokens[bob])  # nobody's links are anyone else's

    with database.session() as session:
        sent_at = session.scalar(select(func.max(Delivery.sent_at)))
        other = ledger.create_issue(  # another issue, with a delivery for each reader
            session,
            replace(ledger.edition_of(session.get(Issue, issue_id)), key="2099-W01"),  # type: ignore[arg-type]
            frequency="weekly",
            default_frequency="weekly",
        )
        foreign_delivery = session.scalar(
            select(Delivery.id).where(Delivery.issue_id == other.id).limit(1)
        )
        issue = session.get(Issue, issue_id)
        assert issue is not None
        key, post_urls = issue.key, [str(post["url"]) for post in issue.posts]
    assert sent_at is not None and foreign_delivery is not None
    clock = Clock()
    app = create_public_app(config, database, clock=clock)
    issue36, link36, ada36, signature = tokens[ada][0].split(".")
    _, _, bob36, _ = tokens[bob][0].split(".")
    with TestClient(app, follow_redirects=False) as client:
        clock.now = sent_at + timedelta(seconds=5)  # a scanner, seconds after delivery
        scanned = client.get(f"/c/{tokens[ada][0]}", headers={"user-agent": SCANNER})
        headed = client.head(f"/c/{tokens[ada][1]}", headers={"user-agent": BROWSER})
        clock.now = sent_at + timedelta(minutes=5)  # people
        answers = [
            client.get(f"/c/{token}", headers={"user-agent": BROWSER})
            for token in (tokens[ada][0], tokens[ada][1], tokens[bob][0])
        ]
        refused = [
            client.get(f"/c/{issue36}.{link36}.{bob36}.{signature}"),  # Bob's delivery
            client.get(f"/c/{issue36}.{'1' if link36 == '0' else '0'}.{ada36}.{signature}"),
            client.get(f"/c/{issue36}.{link36}.{signature}"),  # the delivery left out
            # signed with the real key, but naming a delivery of another issue
            client.get(f"/c/{make_click_token(keys, issue_id, 0, foreign_delivery)}"),
            client.get(f"/c/{make_click_token(keys, issue_id, 0, 2**63 - 1)}"),  # none
        ]
        archived = client.get(f"/archive/{key}/")  # the stored variant, placeholders and all
    assert scanned.status_code == headed.status_code == 302
    for answer in answers:
        assert answer.status_code == 302
        assert answer.headers["location"].startswith("https://blog.example.com/")
    for answer in refused:
        assert answer.status_code == 400 and "location" not in answer.headers
    # the archive names no one: each post links to the post itself
    assert archived.status_code == 200
    assert "x-digest:" not in archived.text and "/c/" not in archived.text
    assert all(f'href="{url}"' in archived.text for url in post_urls[:2])

    with database.session() as session:
        clicks = session.execute(select(Click.delivery_id, Click.link, Click.human)).all()
        history = session.execute(
            select(Event.subscriber_id, Event.delivery_id, Event.issue_id, Event.detail).where(
                Event.kind == "click"
            )
        ).all()
        moments = timeline(session, delivery_of[ada][1])
    ada_delivery, ada_id = delivery_of[ada]
    bob_delivery, bob_id = delivery_of[bob]
    first, second = (read_click_token(keys, t).link for t in tokens[ada][:2])
    assert sorted(clicks, key=str) == sorted(
        [
            (ada_delivery, first, False),  # the scanner
            (ada_delivery, second, False),  # the HEAD
            (ada_delivery, first, True),
            (ada_delivery, second, True),
            (bob_delivery, read_click_token(keys, tokens[bob][0]).link, True),
        ],
        key=str,
    )
    # only people's clicks are in the readers' histories, each with the post it opened
    assert sorted(row[:3] for row in history) == sorted(
        [(ada_id, ada_delivery, issue_id)] * 2 + [(bob_id, bob_delivery, issue_id)]
    )
    assert all(row.detail and row.detail.startswith("https://blog.example.com/") for row in history)
    assert [m.kind for m in moments].count("click") == 2

    # the desk's page of the reader shows the clicks in their history
    add_admin(database)
    desk = desk_client(app, "https://news.example.com")
    assert desk.login().status_code == 303
    page = desk.get(f"/admin/subscribers/{ada_id}").text
    assert page.count("点击链接") == 2  # the desk speaks the site's language, zh
    assert str(history[0].detail) in page
    assert "点击链接" not in desk.get(f"/admin/subscribers/{delivery_of[cyd][1]}").text

    result = CliRunner().invoke(main, ["--config", str(path), "report", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_link = {c["link"]: (c["human"], c["robot"]) for c in report[-1]["clicks"]}
    assert sum(h for h, _ in by_link.values()) == 3 and sum(r for _, r in by_link.values()) == 2
    database.dispose()


NOTICE = {
    "en": "Each issue counts which of its links you follow",
    "zh": "每期邮件会记录你点开了其中哪些链接",
}


@pytest.mark.parametrize("mode", ["off", "aggregate", "personal"])
def test_the_sign_up_page_says_so_only_with_personal(
    tmp_path: Path, database_url: str, mode: str
) -> None:
    """The sign-up page and its one-click page (a form posted without a stamp) tell the
    reader, in their language, that their clicks are recorded, only with `personal`."""
    path = write_config(tmp_path, database_url, 25)
    path.write_text(path.read_text("utf-8") + f"tracking:\n  clicks: {mode}\n", encoding="utf-8")
    config = load_config(path, environ={})
    assert config.tracking.clicks == mode
    database = open_database(config.database_url)
    with TestClient(create_public_app(config, database)) as client:
        for locale, notice in NOTICE.items():
            form = client.get(f"/subscribe?locale={locale}")
            one_click = client.post(
                f"/subscribe?locale={locale}", data={"email": "new@example.com", "website": ""}
            )
            assert form.status_code == one_click.status_code == 200
            assert 'name="stamp"' in one_click.text  # the one-click page, not an error
            for page in (form.text, one_click.text):
                assert (notice in page) is (mode == "personal"), (locale, mode)
                other = NOTICE["zh" if locale == "en" else "en"]
                assert other not in page  # in the page's own language only
    database.dispose()


def test_erased_readers_and_aggregate_mode_name_nobody(tmp_path: Path, database_url: str) -> None:
    """A personal link of a reader since erased still leads to the post but is counted as
    an aggregate click (no delivery, no history); in aggregate mode a link naming a delivery
    (one sent while `personal` was on) is counted without it too. A living reader's click
    with `personal` is the control: it names them."""
    path = write_config(tmp_path, database_url, 25)
    path.write_text(path.read_text("utf-8") + "tracking:\n  clicks: personal\n", "utf-8")
    personal = load_config(path, environ={})
    aggregate = personal.model_copy(
        update={"tracking": personal.tracking.model_copy(update={"clicks": "aggregate"})}
    )
    add_subscribers(personal, 3, categories=None)
    database = open_database(personal.database_url)
    edition = plan_send(personal, database).edition
    assert edition is not None
    sent = datetime.now(UTC) - timedelta(hours=1)
    with database.session() as session:
        issue = ledger.create_issue(
            session, edition, frequency="weekly", default_frequency="weekly"
        )
        rows = session.scalars(select(Delivery).where(Delivery.issue_id == issue.id)).all()
        for row in rows:
            row.sent_at = sent
        deliveries = [(row.id, row.subscriber_id) for row in rows]
        issue_id = issue.id
        (living, living_id), (erased, erased_id), (later, _) = deliveries
        subscribers.erase(session, session.get(Subscriber, erased_id))  # type: ignore[arg-type]
    keys = keyring(personal)
    with TestClient(create_public_app(personal, database), follow_redirects=False) as client:
        for delivery in (living, erased):
            answer = client.get(
                f"/c/{make_click_token(keys, issue_id, 0, delivery)}",
                headers={"user-agent": BROWSER},
            )
            assert answer.status_code == 302
    with TestClient(create_public_app(aggregate, database), follow_redirects=False) as client:
        answer = client.get(
            f"/c/{make_click_token(keys, issue_id, 1, later)}", headers={"user-agent": BROWSER}
        )
        assert answer.status_code == 302
        assert answer.headers["location"] == edition.posts[1].url
    with database.session() as session:
        clicks = session.execute(select(Click.link, Click.delivery_id, Click.human)).all()
        history = session.execute(
            select(Event.subscriber_id, Event.delivery_id).where(Event.kind == "click")
        ).all()
    assert sorted(clicks, key=str) == sorted(
        [(0, living, True), (0, None, True), (1, None, True)], key=str
    )
    assert history == [(living_id, living)]
    database.dispose()
