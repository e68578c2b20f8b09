"""The public web app in-process (Starlette's TestClient), on SQLite and PostgreSQL: the
unsubscribe link and RFC 8058 one-click POST, preferences, double-opt-in sign-up with its mail
delivered to a real aiosmtpd server, rate limits, the honeypot, bad tokens, and the archive."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from digest.audience.guard import GuardSettings, make_stamp
from digest.config.credentials import keyring
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.config.stages import issue_settings, render_settings
from digest.delivery.mailer import SmtpMailer
from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL
from digest.store.database import Database
from digest.store.tables import Event, Issue, Status, Subscriber, Variant
from digest.tokens import Keyring, Purpose, make_token
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.smtp_server import SMTPServer

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

FORM = "application/x-www-form-urlencoded"
ONE_CLICK = b"List-Unsubscribe=One-Click"
BOUNDARY = "----digestTestBoundary7MA4YWxkTrZu0gW"
MULTIPART = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
    "\r\n"
    "One-Click\r\n"
    f"--{BOUNDARY}--\r\n"
).encode()


class Clock:
    """A settable "now" for the app: rate limits and consent times follow it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def make_config(tmp_path: Path, database_url: str, port: int, **web: int) -> Config:
    path = write_config(tmp_path, database_url, port)
    environ = {f"DIGEST_WEB__{key.upper()}": str(value) for key, value in web.items()}
    return load_config(path, environ=environ)


@pytest.fixture
def config(tmp_path: Path, database_url: str, smtp: SMTPServer) -> Config:
    return make_config(
        tmp_path, database_url, smtp.port, confirm_limit_per_address=2, confirm_limit_per_ip=3
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(config: Config, database: Database, clock: Clock) -> Iterator[TestClient]:
    app = create_public_app(
        config,
        database,
        clock=clock,
        mailer=SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
    )
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def keys(config: Config) -> Keyring:
    return keyring(config)


# -- helpers ------------------------------------------------------------------------------------


def add_person(database: Database, email: str = "zhang.wei@example.com", **values: Any) -> int:
    fields: dict[str, Any] = {"name": "张伟", "status": Status.ACTIVE, "locale": "zh", **values}
    with database.session() as session:
        person = Subscriber(email=email, **fields)
        session.add(person)
        session.flush()
        return person.id


def add_issue(
    database: Database,
    key: str,
    created: datetime,
    categories: list[list[str]] | None = None,
    locale: str = "zh",
) -> int:
    posts = [
        {"id": f"{key}-{n}", "title": f"Post {n}", "url": f"https://b/{n}", "body": "x"}
        | {"categories": cats, "date": None}
        for n, cats in enumerate(categories or [["Python"]])
    ]
    with database.session() as session:
        issue = Issue(key=key, posts=posts, created_at=created, status="finished")
        session.add(issue)
        session.flush()
        session.add(
            Variant(
                issue_id=issue.id,
                locale=locale,
                filter_key="",
                subject=f"Subject of {key}",
                preheader="",
                html=(
                    f"<html><head></head><body><p>{GREETING}</p><h1>Body of {key}</h1>"
                    f'<a href="{UNSUBSCRIBE_URL}">u</a> <a href="{PREFERENCES_URL}">p</a>'
                    "</body></html>"
                ),
                text=f"{GREETING}\nText of {key}\n",
                greeting_named="%(name)s，你好：",
                greeting_anonymous="你好：",
            )
        )
        return issue.id


def person(database: Database, subscriber_id: int) -> Subscriber:
    with database.session() as session:
        found = session.get(Subscriber, subscriber_id)
        assert found is not None
        session.expunge(found)
        return found


def bound(database: Database, subscriber_id: int) -> str | None:
    """The key a subscriber's links carry (every new row has one)."""
    return person(database, subscriber_id).token_key


def events(database: Database, kind: str | None = None) -> list[Event]:
    with database.session() as session:
        query = select(Event).order_by(Event.id)
        if kind is not None:
            query = query.where(Event.kind == kind)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def snapshot(database: Database) -> tuple[list[dict[str, Any]], int]:
    """Every subscriber column and the number of events: to prove a request changed nothing."""
    with database.session() as session:
        people = [
            {c.name: getattr(s, c.name) for c in Subscriber.__table__.columns}
            for s in session.scalars(select(Subscriber).order_by(Subscriber.id))
        ]
        count = len(list(session.scalars(select(Event.id))))
    return people, count


def form_actions(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', html)


def stamp(secret: str = "test-secret") -> str:
    """A form stamp as digest serves it (the test config's secret), issued a minute ago."""
    return make_stamp(GuardSettings(secret=secret), datetime.now(UTC) - timedelta(minutes=1))


def sign_up(client: TestClient, email: str, **extra: str) -> Any:
    data = {
        "email": email,
        "name": extra.pop("name", "李雷"),
        "locale": "en",
        "website": "",
        "stamp": stamp(),
    }
    return client.post("/subscribe", data={**data, **extra})


def confirm_link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    found = re.findall(r"https://news\.example\.com/confirm/\S+", text)
    assert len(found) == 1, text
    return str(found[0])


# -- unsubscribe --------------------------------------------------------------------------------


def test_get_unsubscribe_page_changes_nothing(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    token = make_token(keys, "unsubscribe", subscriber, issue, bound(database, subscriber))
    before = snapshot(database)
    for _ in range(3):  # a mail scanner may follow the link more than once
        response = client.get(f"/u/{token}")
        assert response.status_code == 200
    assert snapshot(database) == before
    html = response.text
    assert "z******i@example.com" in html and "zhang.wei" not in html
    assert form_actions(html) == [f"/u/{token}"]
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert '<input type="hidden" name="source" value="page">' in html
    assert response.headers["Cache-Control"] == "no-store"
    csp = response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in csp and "script-src" not in csp and "<script" not in html
    assert (
        f"/p/{make_token(keys, 'preferences', subscriber, issue, bound(database, subscriber))}"
        in html
    )
    assert client.head(f"/u/{token}").status_code == 200
    assert snapshot(database) == before


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_as_rfc_8058_describes(
    client: TestClient, database: Database, keys: Keyring, encoding: str
) -> None:
    subscriber = add_person(database)
    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    other = add_person(database, "someone.else@example.com")
    token = make_token(keys, "unsubscribe", subscriber, issue, bound(database, subscriber))
    if encoding == "urlencoded":
        body, content_type = ONE_CLICK, FORM
    else:
        body, content_type = MULTIPART, f"multipart/form-data; boundary={BOUNDARY}"
    for attempt in (1, 2):
        response = client.post(
            f"/u/{token}",
            content=body,
            headers={"Content-Type": content_type},
            follow_redirects=False,
        )
        assert "cookie" not in response.request.headers  # nothing but the body itself
        assert not client.cookies
        assert response.status_code == 200, response.text
        assert "location" not in response.headers and "set-cookie" not in response.headers
        assert person(database, subscriber).status == Status.UNSUBSCRIBED
        recorded = events(database, "unsubscribe")
        assert [(e.subscriber_id, e.issue_id, e.method) for e in recorded] == [
            (subscriber, issue, "one-click")
        ], f"attempt {attempt}"
    assert person(database, other).status == Status.ACTIVE
    assert recorded[0].ip == "testclient" and recorded[0].user_agent == "testclient"
    assert "z******i@example.com" in response.text


def test_the_pages_button_posts_the_same_and_counts_as_link(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    token = make_token(keys, "unsubscribe", subscriber, issue, bound(database, subscriber))
    page = client.get(f"/u/{token}").text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page))
    assert fields == {"List-Unsubscribe": "One-Click", "source": "page"}
    response = client.post(form_actions(page)[0], data=fields)
    assert response.status_code == 200
    assert [(e.method, e.issue_id) for e in events(database, "unsubscribe")] == [("link", issue)]
    again = client.get(f"/u/{token}")
    assert "already unsubscribed" not in again.text  # zh by the subscriber's locale
    assert "已退订" in again.text and "<form" not in again.text


def test_post_without_the_one_click_field_is_refused(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    token = make_token(keys, "unsubscribe", subscriber, None, bound(database, subscriber))
    before = snapshot(database)
    for content, content_type in (
        (b"", FORM),
        (b"List-Unsubscribe=Yes", FORM),
        (b"List-Unsubscribe=One-Click", "text/plain"),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
    ):
        response = client.post(
            f"/u/{token}", content=content, headers={"Content-Type": content_type}
        )
        assert response.status_code == 400, content
    assert client.post(f"/u/{token}?List-Unsubscribe=One-Click").status_code == 400
    assert snapshot(database) == before


def test_a_link_from_a_test_send_has_no_issue(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    token = make_token(
        keys, "unsubscribe", subscriber, 0, bound(database, subscriber)
    )  # what `send --to` puts in links
    assert client.post(f"/u/{token}", content=ONE_CLICK, headers={"Content-Type": FORM}).is_success
    [event] = events(database, "unsubscribe")
    assert event.issue_id is None and event.method == "one-click"


def test_bad_tokens_all_get_the_same_plain_400(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    before = snapshot(database)
    bodies: set[str] = set()
    routes: list[tuple[str, Purpose]] = [
        ("u", "unsubscribe"),
        ("p", "preferences"),
        ("confirm", "confirm"),
    ]
    for route, purpose in routes:
        good = make_token(
            keys,
            purpose,
            subscriber,
            issue if purpose != "confirm" else None,
            bound(database, subscriber),
        )
        wrong_purpose: Purpose = "preferences" if purpose != "preferences" else "unsubscribe"
        last = good[-1]
        bad = [
            good[:-1] + ("A" if last != "A" else "B"),  # tampered signature
            good[:-6],  # truncated
            good[: len(good) // 2],
            "zz." + good.split(".", 1)[1],  # another subscriber id, same signature
            make_token(keys, wrong_purpose, subscriber, issue, bound(database, subscriber)),
            make_token(
                Keyring("attacker"), purpose, subscriber, issue, bound(database, subscriber)
            ),
            make_token(keys, purpose, 987_654, issue),  # unknown subscriber
            make_token(keys, purpose, subscriber, issue),  # without the subscriber's binding
            "x",
            "a" * 500,
        ]
        for token in bad:
            for method in ("GET", "POST"):
                response = client.request(
                    method,
                    f"/{route}/{token}",
                    content=ONE_CLICK if method == "POST" else None,
                    headers={"Content-Type": FORM} if method == "POST" else None,
                )
                assert response.status_code == 400, (route, token, method)
                assert len(token) < 10 or token not in response.text
                bodies.add(response.text)
    assert len(bodies) == 1
    [body] = bodies
    assert "z******i" not in body and "2026-W47" not in body
    assert snapshot(database) == before


# -- preferences --------------------------------------------------------------------------------


def test_preferences_change_locale_categories_pause_and_leave(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database, categories=["Rust"])
    add_issue(database, "2026-W46", datetime(2026, 11, 16, tzinfo=UTC), [["Python", "机器学习"]])
    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC), [["数学"], []])
    token = make_token(keys, "preferences", subscriber, issue, bound(database, subscriber))
    url = f"/p/{token}"
    before = snapshot(database)
    page = client.get(url)
    assert page.status_code == 200 and snapshot(database) == before
    offered = re.findall(r'name="category" value="([^"]+)"( checked)?', page.text)
    assert offered == [("Python", ""), ("Rust", " checked"), ("数学", ""), ("机器学习", "")]
    assert "z******i@example.com" in page.text and '<html lang="zh-CN">' in page.text

    saved = client.post(
        url, data={"action": "save", "locale": "en", "category": ["Python", "数学", "Bogus"]}
    )
    assert saved.status_code == 200 and '<html lang="en">' in saved.text
    assert "Your preferences are saved." in saved.text
    after = person(database, subscriber)
    assert after.locale == "en" and after.categories == ["Python", "数学"]
    [change] = events(database, "preferences")
    assert change.method == "preferences" and change.issue_id == issue
    assert change.detail == "locale: zh -> en; categories: Rust -> Python;数学"

    unchanged = client.post(
        url, data={"action": "save", "locale": "en", "category": ["数学", "Python"]}
    )
    assert "Nothing needed changing." in unchanged.text
    assert len(events(database, "preferences")) == 1
    client.post(url, data={"action": "save", "locale": "en"})  # none ticked: everything
    assert person(database, subscriber).categories is None

    client.post(url, data={"action": "pause"})
    assert person(database, subscriber).paused is True
    assert "Resume" in client.get(url).text
    client.post(url, data={"action": "resume"})
    assert person(database, subscriber).paused is False

    left = client.post(url, data={"action": "unsubscribe"})
    assert "You are unsubscribed." in left.text
    assert person(database, subscriber).status == Status.UNSUBSCRIBED
    back = client.post(url, data={"action": "resubscribe"})
    assert "Welcome back" in back.text
    again = person(database, subscriber)
    assert again.status == Status.ACTIVE and again.consent_source == "preferences"
    assert again.consent_ip == "testclient" and again.consent_at is not None
    kinds = [(e.kind, e.method, e.issue_id) for e in events(database) if e.kind != "preferences"]
    assert kinds == [
        ("pause", "preferences", issue),
        ("resume", "preferences", issue),
        ("unsubscribe", "preferences", issue),
        ("resubscribe", "preferences", issue),
    ]
    assert client.post(url, data={"action": "explode"}).status_code == 400


def test_preferences_choose_how_often(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database)
    url = f"/p/{make_token(keys, 'preferences', subscriber, None, bound(database, subscriber))}"
    page = client.get(url)
    assert re.findall(r'name="frequency" value="(\w+)"( checked)?', page.text) == [
        ("weekly", " checked"),
        ("monthly", ""),
    ]
    client.post(url, data={"action": "save", "locale": "zh", "frequency": "monthly"})
    assert person(database, subscriber).frequency == "monthly"
    [change] = events(database, "preferences")
    assert change.detail == "frequency: weekly -> monthly"
    client.post(url, data={"action": "save", "locale": "zh", "frequency": "hourly"})
    assert person(database, subscriber).frequency == "monthly"  # not offered: ignored
    client.post(url, data={"action": "save", "locale": "zh", "frequency": "weekly"})
    assert person(database, subscriber).frequency is None  # the site's own rhythm


def test_preferences_page_follows_locale_override(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    subscriber = add_person(database, locale="zh")
    token = make_token(keys, "preferences", subscriber, None, bound(database, subscriber))
    page = client.get(f"/p/{token}?locale=en")
    assert '<html lang="en">' in page.text and "Your preferences" in page.text
    assert form_actions(page.text)[0] == f"/p/{token}?locale=en"
    assert "你的订阅设置" in client.get(f"/p/{token}").text


# -- sign-up and confirmation -------------------------------------------------------------------


def test_sign_up_confirm_by_mail(
    client: TestClient, database: Database, smtp: SMTPServer, clock: Clock
) -> None:
    form = client.get("/subscribe")
    assert form.status_code == 200
    assert 'class="hp" aria-hidden="true"' in form.text and 'name="website"' in form.text
    assert form_actions(form.text) == ["/subscribe"]
    response = sign_up(client, "Li.Lei@Example.COM")
    assert response.status_code == 200 and "Check your inbox" not in response.text  # zh site
    assert "请查收邮件" in response.text
    [received] = smtp.mailbox.messages
    assert received.rcpt_tos == ["Li.Lei@example.com"]
    assert received.mail_from == "digest@blog.example.com"
    message = received.parsed()
    assert message["Subject"] == "Confirm your subscription to Incoming Transmission"
    assert message["To"].addresses[0].display_name == "李雷"
    assert message["From"] == "Incoming Transmission <digest@blog.example.com>"
    html = message.get_body(("html",))
    link = confirm_link(message)
    assert html is not None and f'href="{link}"' in html.get_content()
    with database.session() as session:
        pending = session.scalar(select(Subscriber))
        assert pending is not None
        assert (pending.email, pending.status, pending.locale) == (
            "Li.Lei@example.com",
            "pending",
            "en",
        )
        assert pending.consent_at is None and pending.consent_ip is None
        subscriber_id = pending.id
    [mail_event] = events(database, "confirm-mail")
    assert (mail_event.subscriber_id, mail_event.ip, mail_event.method) == (
        subscriber_id,
        "testclient",
        "web",
    )

    path = urlsplit(link).path
    before = snapshot(database)
    shown = client.get(path)
    assert shown.status_code == 200 and snapshot(database) == before
    assert form_actions(shown.text) == [path]
    assert "L****i@example.com" in shown.text and '<html lang="en">' in shown.text

    clock.advance(minutes=3)
    done = client.post(path, headers={"User-Agent": "Mozilla/5.0 (X11) Chromium"})
    assert done.status_code == 200 and "is subscribed to Incoming Transmission" in done.text
    confirmed = person(database, subscriber_id)
    assert confirmed.status == Status.ACTIVE
    assert confirmed.consent_at == clock.now
    assert confirmed.consent_ip == "testclient"
    assert confirmed.consent_user_agent == "Mozilla/5.0 (X11) Chromium"
    assert confirmed.consent_source == "web"
    assert client.post(path).status_code == 200  # idempotent
    [confirm] = events(database, "confirm")
    assert (confirm.method, confirm.subscriber_id) == ("web", subscriber_id)
    assert "already subscribed" in client.get(path).text


def test_honeypot_pretends_and_sends_nothing(
    client: TestClient, database: Database, smtp: SMTPServer
) -> None:
    real = sign_up(client, "first@example.com")
    caught = sign_up(client, "bot@example.com", website="https://spam.example.net")
    assert caught.status_code == 200 and caught.text == real.text
    assert smtp.mailbox.recipients() == ["first@example.com"]
    with database.session() as session:
        assert [s.email for s in session.scalars(select(Subscriber))] == ["first@example.com"]


def test_signing_up_reveals_nothing_about_an_address(
    client: TestClient, database: Database, smtp: SMTPServer, keys: Keyring
) -> None:
    add_person(database, "member@example.com")
    gone = add_person(database, "gone@example.com", status=Status.UNSUBSCRIBED)
    fresh = sign_up(client, "fresh@example.com")
    member = sign_up(client, "member@example.com")
    plausible = sign_up(client, "nobody@no-such-domain-4711.example")
    left = sign_up(client, "gone@example.com")
    assert fresh.status_code == member.status_code == plausible.status_code == 200
    assert fresh.text == member.text == plausible.text == left.text
    assert fresh.headers == member.headers  # same length, same everything
    # the active member gets nothing; the one who left may confirm again (their own consent)
    assert sorted(smtp.mailbox.recipients()) == [
        "fresh@example.com",
        "gone@example.com",
        "nobody@no-such-domain-4711.example",
    ]
    assert person(database, gone).status == Status.UNSUBSCRIBED  # until they confirm
    [mail] = [m for m in smtp.mailbox.messages if m.rcpt_tos == ["gone@example.com"]]
    path = urlsplit(confirm_link(mail.parsed())).path
    client.post(path)
    assert person(database, gone).status == Status.ACTIVE
    assert person(database, gone).consent_source == "web"


def test_a_malformed_address_gets_a_form_error(client: TestClient, smtp: SMTPServer) -> None:
    response = sign_up(client, "not an address")
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and 'value="not an address"' in response.text
    assert smtp.mailbox.messages == []


def test_per_address_limit(
    client: TestClient, database: Database, smtp: SMTPServer, clock: Clock
) -> None:
    first = sign_up(client, "target@example.com")
    for _ in range(4):  # limit 2 per address per day
        assert sign_up(client, "target@example.com").text == first.text
        clock.advance(minutes=1)
    assert len(smtp.mailbox.messages) == 2
    clock.advance(hours=23, minutes=50)
    sign_up(client, "target@example.com")
    assert len(smtp.mailbox.messages) == 2
    clock.advance(minutes=10)
    sign_up(client, "target@example.com")
    assert len(smtp.mailbox.messages) == 3
    assert len(events(database, "confirm-mail")) == 3


def test_per_ip_limit(
    config: Config, database: Database, smtp: SMTPServer, clock: Clock, client: TestClient
) -> None:
    app = client.app
    with (
        TestClient(app, client=("203.0.113.7", 40000)) as attacker,
        TestClient(app, client=("198.51.100.2", 40001)) as neighbour,
    ):
        answers = {sign_up(attacker, f"victim{n}@example.com").text for n in range(5)}
        assert len(answers) == 1  # limit 3 per IP per hour, and nobody can tell
        assert len(smtp.mailbox.messages) == 3
        sign_up(neighbour, "neighbour@example.com")
        assert len(smtp.mailbox.messages) == 4
        clock.advance(minutes=61)
        sign_up(attacker, "victim4@example.com")
        assert smtp.mailbox.recipients()[-1] == "victim4@example.com"
    ips = [e.ip for e in events(database, "confirm-mail")]
    assert ips == ["203.0.113.7"] * 3 + ["198.51.100.2", "203.0.113.7"]


def test_an_smtp_failure_still_shows_the_same_page(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    from tests.support.smtp_server import free_port

    config = make_config(tmp_path, database_url, free_port())  # nothing listens there
    app = create_public_app(
        config,
        database,
        mailer=SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
    )
    with TestClient(app) as test_client:
        response = sign_up(test_client, "someone@example.com")
    assert response.status_code == 200 and "请查收邮件" in response.text


# -- archive ------------------------------------------------------------------------------------


def test_archive_lists_and_shows_issues(config: Config, database: Database) -> None:
    start = datetime(2026, 10, 5, 1, tzinfo=UTC)
    for n in range(5):
        add_issue(database, f"2026-W{41 + n}", start + timedelta(weeks=n))
    app = create_public_app(config, database, page_size=2)
    with TestClient(app, follow_redirects=False) as client:
        first = client.get("/archive/")
        assert first.status_code == 200
        assert re.findall(r'<a href="/archive/([^/]+)/">', first.text) == ["2026-W45", "2026-W44"]
        assert "Subject of 2026-W45" in first.text and 'rel="next"' in first.text
        third = client.get("/archive/?page=3")
        assert re.findall(r'<a href="/archive/([^/]+)/">', third.text) == ["2026-W41"]
        assert client.get("/archive/?page=4").status_code == 404
        assert client.get("/archive/?page=x").status_code == 400
        assert client.get("/archive").status_code in (307, 308)

        issue = client.get("/archive/2026-W43/")
        assert issue.status_code == 200
        assert "<h1>Body of 2026-W43</h1>" in issue.text and "<p>你好：</p>" in issue.text
        assert "x-digest:" not in issue.text
        assert issue.headers["Content-Security-Policy"].startswith("sandbox")
        assert client.get("/archive/2026-W01/").status_code == 404


def test_archive_falls_back_to_another_locale(config: Config, database: Database) -> None:
    add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC), locale="en")
    with TestClient(create_public_app(config, database)) as client:
        assert "Body of 2026-W47" in client.get("/archive/2026-W47/").text
        assert "Subject of 2026-W47" in client.get("/archive/").text


def test_the_view_in_browser_link_points_at_the_archive(config: Config) -> None:
    from digest.issues.send import gather, next_edition
    from digest.render.edition import render

    now = datetime(2026, 11, 22, 4, tzinfo=UTC)
    edition = next_edition(gather(issue_settings(config), now=now), issue_settings(config), now)
    html = render(render_settings(config), edition).html
    assert f"https://news.example.com/archive/{edition.key}/" in html


def test_unknown_paths_and_methods(client: TestClient) -> None:
    assert client.get("/nowhere").status_code == 404
    assert client.put("/subscribe").status_code == 405
    assert client.get("/").status_code == 200


def test_preview_shows_the_database_archive(config: Config, database: Database) -> None:
    from digest.web.archive import DatabaseArchive
    from digest.web.preview import create_preview_app

    add_issue(database, "2026-W46", datetime(2026, 11, 16, tzinfo=UTC))
    add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    archive = DatabaseArchive(database, config)
    assert archive.count() == 2 and archive.get("2026-W99") is None
    assert [i.key for i in archive.page(1, 10)] == ["2026-W47", "2026-W46"]
    assert archive.page(0, 10) == [] and archive.page(2, 10) == []
    with TestClient(create_preview_app(config, archive)) as client:
        listing = client.get("/issues")
        assert "Subject of 2026-W47" in listing.text and "Subject of 2026-W46" in listing.text
        email = client.get("/issues/2026-W46/email.html")
        assert "Body of 2026-W46" in email.text and "x-digest:" not in email.text


@pytest.mark.slow
def test_digest_serve_answers(tmp_path: Path, database_url: str) -> None:
    """`digest serve` as a user starts it: a real process on a free port."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.support.smtp_server import free_port

    root = paths.ROOT
    path = write_config(tmp_path, database_url, free_port())
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(path), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/subscribe", timeout=2) as r:
                    assert r.status == 200 and "订阅 Incoming Transmission" in r.read().decode()
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "digest serve did not answer"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/archive/", timeout=5) as r:
            assert r.status == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert f"Serving https://news.example.com at http://127.0.0.1:{port}/" in output


# -- one person, one address, one link (issue 12) -----------------------------------------------


def test_case_variants_of_an_address_are_one_person_for_the_limit(
    client: TestClient, database: Database, smtp: SMTPServer, clock: Clock
) -> None:
    """Before: `Victim@`, `VICTIM@` and `vIctim@` were three subscribers, each with its own
    limit, and one inbox got a confirmation mail for every spelling."""
    spellings = ["Victim@example.com", "VICTIM@example.com", "vIctim@Example.com"]
    spellings.append("victim@EXAMPLE.COM")
    first = sign_up(client, spellings[0])
    for spelling in spellings[1:]:
        clock.advance(minutes=1)
        assert sign_up(client, spelling).text == first.text
    assert len(smtp.mailbox.messages) == 2  # the limit is 2 per address per day
    with database.session() as session:
        rows = [(s.email, s.status) for s in session.scalars(select(Subscriber))]
    assert rows == [("Victim@example.com", "pending")]  # stored as first given


def test_a_member_signing_up_in_another_case_gets_nothing(
    client: TestClient, database: Database, smtp: SMTPServer
) -> None:
    add_person(database, "member@example.com")
    unsubscribed = add_person(database, "Left@example.com", status=Status.UNSUBSCRIBED)
    assert sign_up(client, "MEMBER@Example.com").status_code == 200
    assert smtp.mailbox.messages == []
    sign_up(client, "left@example.com")  # the one who left may confirm again, as before
    [mail] = smtp.mailbox.messages
    assert mail.rcpt_tos == ["Left@example.com"]  # their own row, as stored
    client.post(urlsplit(confirm_link(mail.parsed())).path)
    assert person(database, unsubscribed).status == Status.ACTIVE
    with database.session() as session:
        assert len(list(session.scalars(select(Subscriber)))) == 2


@pytest.mark.slow
def test_an_erased_person_comes_back_only_by_confirming_a_sign_up(
    client: TestClient, database: Database, smtp: SMTPServer, tmp_path: Path
) -> None:
    """Erasure keeps the address's hash so an old list cannot bring the person back; their
    own confirmed sign-up can (fresh consent), as a new row, and then the hash goes."""
    from digest.audience.csvfile import ImportReport, read_csv
    from digest.store.subscribers import erase, import_rows, was_erased

    gone = add_person(database, "Gone@example.com")
    with database.session() as session:
        erase(session, session.get_one(Subscriber, gone))
    fresh = sign_up(client, "fresh@example.com")
    again = sign_up(client, "GONE@example.com")
    assert again.status_code == 200 and again.text == fresh.text  # nothing revealed
    assert smtp.mailbox.recipients() == ["fresh@example.com", "GONE@example.com"]
    with database.session() as session:  # not yet: pending, and the hash still holds
        back = session.scalars(select(Subscriber).where(Subscriber.email == "GONE@example.com"))
        [pending] = list(back)
        assert (pending.status, pending.id > gone) == (Status.PENDING, True)
        assert was_erased(session, "gone@example.com")
    client.post(urlsplit(confirm_link(smtp.mailbox.messages[-1].parsed())).path)
    with database.session() as session:
        assert session.get_one(Subscriber, pending.id).status == Status.ACTIVE
        assert session.get_one(Subscriber, gone).status == Status.ERASED  # the tombstone stays
        assert not was_erased(session, "Gone@example.com")
        csv_file = tmp_path / "list.csv"
        csv_file.write_text("email\ngone@example.com\n", encoding="utf-8")
        rows, problems = read_csv(csv_file)
        report = ImportReport(problems=problems)
        import_rows(session, rows, report, path=csv_file)
        assert (list(report.problems), report.unchanged) == ([], 1)  # a subscriber again
        emails = sorted(s.email for s in session.scalars(select(Subscriber)))
    assert emails == ["GONE@example.com", f"erased.{gone}@invalid", "fresh@example.com"]


def test_an_erased_persons_links_reach_nobody(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    """Before: SQLite gave the erased row's id to the next subscriber, and the erased
    person's old `/u/` link showed and unsubscribed the newcomer."""
    from digest.store.subscribers import erase

    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    gone = add_person(database, "gone@example.com")
    key = bound(database, gone)
    assert key is not None
    old = {
        "u": make_token(keys, "unsubscribe", gone, issue, key),
        "p": make_token(keys, "preferences", gone, issue, key),
    }
    forged = client.get(f"/u/{old['u'][:-2]}xx")
    assert client.get(f"/u/{old['u']}").status_code == 200  # theirs, until erased
    with database.session() as session:
        erase(session, session.get_one(Subscriber, gone))
    newcomer = add_person(database, "newcomer@example.com")
    assert newcomer > gone  # never the erased id again
    for route, token in old.items():
        for method in ("GET", "POST"):
            response = client.request(
                method,
                f"/{route}/{token}",
                content=ONE_CLICK if method == "POST" else None,
                headers={"Content-Type": FORM} if method == "POST" else None,
            )
            assert response.status_code == 400 and response.text == forged.text
    assert person(database, newcomer).status == Status.ACTIVE


def test_a_reused_id_is_still_not_reached_by_an_old_link(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    """Even if an id came back (a row deleted by hand, then reinserted under it; or a SQLite
    database that reused ids before revision 0005), the old link's binding does not match."""
    reader = add_person(database, "first@example.com")
    token = make_token(keys, "unsubscribe", reader, None, bound(database, reader))
    with database.session() as session:
        session.delete(session.get_one(Subscriber, reader))
    with database.session() as session:
        session.add(Subscriber(id=reader, email="second@example.com", status=Status.ACTIVE))
    assert (
        client.post(f"/u/{token}", content=ONE_CLICK, headers={"Content-Type": FORM}).status_code
        == 400
    )
    assert person(database, reader).status == Status.ACTIVE
    assert person(database, reader).email == "second@example.com"


def test_links_sent_before_the_binding_keep_working_for_their_row_only(
    client: TestClient, database: Database, keys: Keyring
) -> None:
    """A row from before revision 0005 has no key: the unbound links already in inboxes still
    unsubscribe (RFC 8058); a row with a key refuses an unbound link."""
    legacy = add_person(database, "old@example.com")
    with database.session() as session:  # as revision 0005 leaves the rows it found
        session.execute(update(Subscriber).where(Subscriber.id == legacy).values(token_key=None))
    modern = add_person(database, "new@example.com")
    for who, code in ((modern, 400), (legacy, 200)):
        unbound = make_token(keys, "unsubscribe", who, None)
        response = client.post(f"/u/{unbound}", content=ONE_CLICK, headers={"Content-Type": FORM})
        assert response.status_code == code
    assert person(database, legacy).status == Status.UNSUBSCRIBED
    assert person(database, modern).status == Status.ACTIVE
    wrong = make_token(keys, "unsubscribe", legacy, None, "AAAAAAAA")
    assert client.get(f"/u/{wrong}").status_code == 400
