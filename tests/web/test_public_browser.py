"""The public pages in a real browser (Debian's Chromium through Playwright) against uvicorn, on
SQLite and PostgreSQL: unsubscribing from the link, the preferences page, and signing up with
the confirmation mail read from a real aiosmtpd server — all clicked as a person would.
Screenshots go to tests/output/. Only loopback is reachable."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from digest.config.credentials import keyring
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.store.database import Database
from digest.store.tables import Event, Issue, Status, Subscriber
from digest.tokens import make_token
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.browser import WIDE, loopback_page, serving
from tests.support.smtp_server import SMTPServer

OUTPUT = paths.TESTS / "output"


@dataclass
class Served:
    url: str
    config: Config
    database: Database
    smtp: SMTPServer


@pytest.fixture
def served(tmp_path: Path, database_url: str, database: Database) -> Iterator[Served]:
    with SMTPServer() as smtp:
        config = load_config(write_config(tmp_path, database_url, smtp.port), environ={})
        app = create_public_app(
            config,
            database,
            mailer=SmtpMailer(
                smtp_settings(config), sender_settings(config), dkim_settings(config)
            ),
        )
        with serving(app) as url:
            yield Served(url, config, database, smtp)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with loopback_page(browser, lambda url: False) as fresh:  # nothing from anywhere else
        yield fresh


def screenshot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def fits(page: Page, width: int) -> None:
    """At `width` px the page does not scroll sideways."""
    page.set_viewport_size({"width": width, "height": 800})
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert int(scroll) <= int(inner) == width


def add_reader(database: Database, **values: object) -> tuple[int, int]:
    """An active subscriber and an issue with categories; their ids."""
    with database.session() as session:
        reader = Subscriber(
            email="wang.fang@example.com", name="王芳", status=Status.ACTIVE, locale="zh"
        )
        for key, value in values.items():
            setattr(reader, key, value)
        issue = Issue(
            key="2026-W47",
            created_at=datetime(2026, 11, 23, 1, tzinfo=UTC),
            status="finished",
            posts=[
                {"id": "a", "title": "A", "url": "https://b/a", "categories": ["Python"]},
                {"id": "b", "title": "B", "url": "https://b/b", "categories": ["数学"]},
            ],
        )
        session.add_all([reader, issue])
        session.flush()
        return reader.id, issue.id


def subscriber(database: Database, subscriber_id: int) -> Subscriber:
    with database.session() as session:
        found = session.get(Subscriber, subscriber_id)
        assert found is not None
        session.expunge(found)
        return found


def events(database: Database) -> list[tuple[str, str, int | None]]:
    with database.session() as session:
        rows = session.execute(select(Event.kind, Event.method, Event.issue_id).order_by(Event.id))
        return [(kind, method, issue) for kind, method, issue in rows]


def test_unsubscribe_from_the_link(page: Page, served: Served) -> None:
    reader, issue = add_reader(served.database)
    key = subscriber(served.database, reader).token_key
    token = make_token(keyring(served.config), "unsubscribe", reader, issue, key)
    response = page.goto(f"{served.url}/u/{token}")
    assert response is not None and response.status == 200
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "w******g@example.com" in page.locator("p.about").inner_text()
    fits(page, 320)
    screenshot(page, "public-unsubscribe-320.png")
    page.set_viewport_size(WIDE)
    assert subscriber(served.database, reader).status == Status.ACTIVE  # looking changed nothing
    page.locator("button.unsubscribe").click()
    page.wait_for_selector("p.result")
    assert "已退订" in page.locator("p.result").inner_text()
    assert urlsplit(page.url).path == f"/u/{token}"  # no redirect
    screenshot(page, "public-unsubscribed.png")
    assert subscriber(served.database, reader).status == Status.UNSUBSCRIBED
    assert events(served.database) == [("unsubscribe", "link", issue)]


def test_preferences_clicked(page: Page, served: Served) -> None:
    reader, issue = add_reader(served.database)
    key = subscriber(served.database, reader).token_key
    token = make_token(keyring(served.config), "preferences", reader, issue, key)
    page.goto(f"{served.url}/p/{token}")
    assert page.locator("h1").inner_text() == "你的订阅设置"
    fits(page, 320)
    page.set_viewport_size(WIDE)
    page.get_by_label("English").check()
    page.get_by_label("数学").check()
    page.locator('button[value="save"]').click()
    page.wait_for_selector(".notice")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator(".notice").inner_text() == "Your preferences are saved."
    assert page.get_by_label("数学").is_checked() and not page.get_by_label("Python").is_checked()
    after = subscriber(served.database, reader)
    assert (after.locale, after.categories) == ("en", ["数学"])
    screenshot(page, "public-preferences.png")

    page.get_by_role("button", name="Pause").click()
    page.wait_for_selector('.notice[data-notice="pause"]')
    assert subscriber(served.database, reader).paused is True
    page.get_by_role("button", name="Resume").click()
    page.wait_for_selector('.notice[data-notice="resume"]')
    assert subscriber(served.database, reader).paused is False

    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector('.notice[data-notice="unsubscribe"]')
    assert subscriber(served.database, reader).status == Status.UNSUBSCRIBED
    screenshot(page, "public-preferences-unsubscribed.png")
    page.get_by_role("button", name="Subscribe again").click()
    page.wait_for_selector('.notice[data-notice="resubscribe"]')
    back = subscriber(served.database, reader)
    assert back.status == Status.ACTIVE and back.consent_source == "preferences"
    assert back.consent_ip == "127.0.0.1" and "Chrome" in (back.consent_user_agent or "")
    assert [e for e in events(served.database) if e[0] != "preferences"] == [
        ("pause", "preferences", issue),
        ("resume", "preferences", issue),
        ("unsubscribe", "preferences", issue),
        ("resubscribe", "preferences", issue),
    ]


def test_sign_up_and_confirm(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/subscribe")
    fits(page, 320)
    screenshot(page, "public-subscribe-320.png")
    page.set_viewport_size(WIDE)
    honeypot = page.locator('input[name="website"]').bounding_box()
    assert honeypot is not None and honeypot["x"] + honeypot["width"] <= 0  # off-screen
    page.get_by_label("邮箱地址").fill("Han.Meimei@example.org")
    page.get_by_label("称呼（可选）").fill("韩梅梅")
    page.get_by_label("摘要邮件的语言").select_option("en")
    page.get_by_role("button", name="订阅").click()
    page.wait_for_selector("p.sent")
    assert page.locator("h1").inner_text() == "请查收邮件"
    screenshot(page, "public-check-inbox.png")

    [received] = served.smtp.mailbox.wait_for(1)  # the mail is sent in the background
    assert received.rcpt_tos == ["Han.Meimei@example.org"]
    message = received.parsed()
    body = message.get_body(("plain",))
    assert body is not None
    [link] = re.findall(r"https://news\.example\.com/confirm/\S+", body.get_content())
    with served.database.session() as session:
        person = session.scalar(select(Subscriber))
        assert person is not None and person.status == Status.PENDING
        person_id = person.id

    page.goto(served.url + urlsplit(link).path)
    assert page.locator("html").get_attribute("lang") == "en"  # the language they chose
    assert subscriber(served.database, person_id).status == Status.PENDING  # looking is not yes
    screenshot(page, "public-confirm.png")
    page.get_by_role("button", name="Yes, subscribe me").click()
    page.wait_for_selector("p.result")
    assert "is subscribed to Incoming Transmission" in page.locator("p.result").inner_text()
    confirmed = subscriber(served.database, person_id)
    assert confirmed.status == Status.ACTIVE and confirmed.consent_source == "web"
    assert confirmed.consent_ip == "127.0.0.1" and confirmed.consent_at is not None
    assert "Chrome" in (confirmed.consent_user_agent or "")
    assert (confirmed.name, confirmed.locale) == ("韩梅梅", "en")
    # the welcome goes out in the background; its event is written once the server took it
    [_, welcome] = served.smtp.mailbox.wait_for(2)
    assert welcome.rcpt_tos == ["Han.Meimei@example.org"]
    expected = [("confirm-mail", "web", None), ("confirm", "web", None), ("welcome", "mail", None)]
    deadline = time.monotonic() + 10
    while events(served.database) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events(served.database) == expected
    screenshot(page, "public-confirmed.png")
