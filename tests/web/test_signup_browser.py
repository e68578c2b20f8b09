"""Signing up from the blog, in a real browser (Debian's Chromium through Playwright).

A static blog page on one loopback origin holds the snippet `digest form` prints; digest runs
on another (another port of 127.0.0.1), with the blog's origin in `web.return_to`. A reader
signs up there with the snippet's script (the page never changes: the answer is shown in
place) and without JavaScript (digest's one-click page, then back to the blog), confirms from
the mail a real aiosmtpd server received, and receives the welcome. The same form posted by a
script at once, or with the honeypot filled in, creates nobody. Past the threshold the ALTCHA
challenge appears, and the vendored widget solves it in Chromium (its proof of work running
in the browser's workers, under digest's Content-Security-Policy): the sign-up passes, and the
same solution posted again does not.

The app's clock is the test's: the minimum fill time is passed by moving it, not by waiting.
Screenshots go to tests/output/. Only loopback is reachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from playwright.sync_api import Browser, ConsoleMessage, Page
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from digest.cli.base import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.store.database import Database, open_database
from digest.store.events import append
from digest.store.tables import Subscriber
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.browser import loopback_page, loopback_socket, serving
from tests.support.smtp_server import Received, SMTPServer
from tests.web.test_public_web import Clock

OUTPUT = paths.TESTS / "output"
POST = "/posts/hello/"


@dataclass
class Running:
    digest: str  # digest's origin (web.base_url)
    blog: str  # the blog's origin, listed in web.return_to
    config: Config
    database: Database
    smtp: SMTPServer
    clock: Clock
    snippet: str


def blog_app(snippet: str) -> Starlette:
    """The static blog: a post holding the snippet, and the home page readers return to."""

    def post(request: Request) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            "<title>A post</title></head><body><main><h1>A post on the blog</h1>"
            f"<p>Some words.</p>{snippet}</main></body></html>"
        )

    def home(request: Request) -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<title>The blog</title></head><body><h1 class="blog-home">The blog</h1></body></html>'
        )

    return Starlette(routes=[Route(POST, post), Route("/", home)])


@contextmanager
def running(tmp_path: Path, database_url: str, **signup: object) -> Iterator[Running]:
    with ExitStack() as stack:
        smtp = stack.enter_context(SMTPServer())
        digest_socket, blog_socket = loopback_socket(), loopback_socket()
        digest = f"http://127.0.0.1:{digest_socket.getsockname()[1]}"
        blog = f"http://127.0.0.1:{blog_socket.getsockname()[1]}"
        path = write_config(tmp_path, database_url, smtp.port)
        settings = {
            "challenge": "auto",
            "challenge_after": 3,
            "min_fill_seconds": 2,
            "max_form_age_hours": 24,
            **signup,
        }
        text = path.read_text("utf-8")
        text = text.replace(
            "  base_url: https://news.example.com\n",
            f"  base_url: {digest}\n  return_to: [{blog}]\n"
            "  privacy_url: https://blog.example.com/privacy/\n",
        )
        text = (
            text[: text.index("signup:")]
            + "signup:\n"
            + "".join(f"  {key}: {value}\n" for key, value in settings.items())
        )
        path.write_text(text, encoding="utf-8")
        config = load_config(path, environ={})
        printed = CliRunner().invoke(main, ["--config", str(path), "form"])
        assert printed.exit_code == 0, printed.output
        database = open_database(config.database_url)
        stack.callback(database.dispose)
        clock = Clock()
        mailer = SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config))
        app = create_public_app(config, database, clock=clock, mailer=mailer)
        stack.enter_context(serving(app, sock=digest_socket))
        stack.enter_context(serving(blog_app(printed.stdout), sock=blog_socket))
        yield Running(digest, blog, config, database, smtp, clock, printed.stdout)


def screenshot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def people(database: Database) -> list[tuple[str, str]]:
    with database.session() as session:
        rows = session.execute(select(Subscriber.email, Subscriber.status).order_by(Subscriber.id))
        return [(email, str(status)) for email, status in rows]


def confirm_path(received: Received, digest: str) -> str:
    body = received.parsed().get_body(("plain",))
    assert body is not None
    [link] = re.findall(re.escape(digest) + r"/confirm/\S+", body.get_content())
    return str(urlsplit(link).path)


@contextmanager
def page_of(browser: Browser, **options: Any) -> Iterator[tuple[Page, list[str]]]:
    """A loopback-only page and the errors its console and scripts report."""
    with loopback_page(browser, lambda url: False, **options) as page:
        errors: list[str] = []

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors


def stamped(page: Page) -> None:
    """Wait until the snippet's script has fetched its stamp from digest."""
    page.wait_for_function(
        "() => !!document.querySelector('form.digest-signup input[name=stamp]')?.value"
    )


def confirm_and_welcome(page: Page, site: Running, address: str, mails: int) -> Received:
    """Open the confirmation link of the mail `address` received (the `mails`th message to
    arrive), press its button, and return the welcome mail that follows."""
    mail = site.smtp.mailbox.wait_for(mails)[mails - 1]
    assert mail.rcpt_tos == [address]
    page.goto(site.digest + confirm_path(mail, site.digest))
    assert dict(people(site.database))[address] == "pending"  # looking is not yes
    page.locator("button.confirm").click()
    page.wait_for_selector("p.result")
    screenshot(page, "signup-confirmed.png")
    assert dict(people(site.database))[address] == "active"
    welcome = site.smtp.mailbox.wait_for(mails + 1)[mails]  # sent after the answer
    assert welcome.rcpt_tos == [address]
    message = welcome.parsed()
    assert str(message["Subject"]) == "欢迎订阅 Incoming Transmission"
    body = message.get_body(("plain",))
    assert body is not None and f"{site.digest}/archive/" in body.get_content()
    return welcome


def test_sign_up_with_the_script_never_leaves_the_blog(
    browser: Browser, tmp_path: Path, database_url: str
) -> None:
    with running(tmp_path, database_url) as site, page_of(browser) as (page, errors):
        page.goto(site.blog + POST)
        stamped(page)
        site.clock.advance(seconds=3)  # a person takes a few seconds to type
        page.locator("#digest-signup-email").fill("reader@example.org")
        page.locator("form.digest-signup button").click()
        status = page.locator(".digest-signup-status")
        expected = page.locator("form.digest-signup").get_attribute("data-sent")
        page.wait_for_function(
            "() => document.querySelector('.digest-signup-status').textContent.length > 0"
        )
        assert status.inner_text() == expected
        screenshot(page, "signup-blog-script.png")
        assert page.url == site.blog + POST  # never left the blog
        assert people(site.database) == [("reader@example.org", "pending")]
        confirm_and_welcome(page, site, "reader@example.org", 1)
        assert errors == []


def test_sign_up_without_javascript_returns_to_the_blog(
    browser: Browser, tmp_path: Path, database_url: str
) -> None:
    with (
        running(tmp_path, database_url) as site,
        page_of(browser, java_script_enabled=False) as (page, errors),
    ):
        page.goto(site.blog + POST)
        page.locator("#digest-signup-email").fill("no.script@example.org")
        page.locator("form.digest-signup button").click()
        page.wait_for_selector("form.one-click")  # digest's own page: a stamp, one button
        assert page.url.startswith(site.digest + "/subscribe")
        assert "n******t@example.org" in page.locator("p.about").inner_text()
        screenshot(page, "signup-one-click.png")
        assert people(site.database) == []  # nobody before the button
        site.clock.advance(seconds=3)
        page.locator("button.confirm-signup").click()
        page.wait_for_selector("h1.blog-home")
        assert page.url == site.blog + "/"  # back on the blog
        assert people(site.database) == [("no.script@example.org", "pending")]
        confirm_and_welcome(page, site, "no.script@example.org", 1)
        assert errors == []


def test_a_script_at_once_or_the_honeypot_creates_nobody(
    browser: Browser, tmp_path: Path, database_url: str
) -> None:
    with running(tmp_path, database_url) as site, page_of(browser) as (page, errors):
        page.goto(site.blog + POST)
        stamped(page)
        # the form's own script, submitted the moment the stamp arrived
        page.locator("#digest-signup-email").fill("quick@example.org")
        page.locator("form.digest-signup button").click()
        wait = page.locator("form.digest-signup").get_attribute("data-wait")
        page.wait_for_function(
            "() => document.querySelector('.digest-signup-status').textContent.length > 0"
        )
        assert page.locator(".digest-signup-status").inner_text() == wait
        # a script posting the form's fields straight to digest, no stamp
        fields: dict[str, str | float | bool] = {
            "email": "bot@example.org",
            "locale": "zh",
            "website": "",
        }
        bare = page.request.post(site.digest + "/subscribe", form=fields)
        assert bare.status == 200 and 'class="one-click"' in bare.text()
        # a script that fetched a stamp and posts it at once
        start = page.request.get(site.digest + "/subscribe/start").json()
        fast = page.request.post(
            site.digest + "/subscribe",
            form={**fields, "stamp": start["stamp"]},
            headers={"Accept": "application/json"},
        )
        assert fast.status == 202 and fast.json()["status"] == "confirm"
        assert people(site.database) == []
        # the honeypot: a person's timing, the hidden field filled in
        page.goto(site.blog + POST)
        stamped(page)
        site.clock.advance(seconds=3)
        page.locator("#digest-signup-email").fill("honey@example.org")
        page.evaluate("document.querySelector('#digest-signup-website').value = 'https://x.test/'")
        page.locator("form.digest-signup button").click()
        sent = page.locator("form.digest-signup").get_attribute("data-sent")
        page.wait_for_function(
            "() => document.querySelector('.digest-signup-status').textContent.length > 0"
        )
        assert page.locator(".digest-signup-status").inner_text() == sent  # the same answer
        assert people(site.database) == []
        assert site.smtp.mailbox.messages == []
        assert errors == []


def solve_in_page(page: Page, form: str) -> str:
    """Tick the ALTCHA widget in `form` and wait for its proof of work: the payload it puts in
    the form."""
    widget = page.locator(f"{form} altcha-widget")
    widget.wait_for()
    # the label, as a person clicks it (the box itself is drawn over by the widget's tick)
    page.locator(f"{form} altcha-widget label").first.click()
    page.wait_for_function(
        f"() => !!document.querySelector('{form} input[name=altcha]')?.value", timeout=60_000
    )
    value = page.locator(f"{form} input[name=altcha]").input_value()
    assert value
    # configured by its attributes: no "Protected by ALTCHA" footer
    assert page.locator(f"{form} altcha-widget .altcha-footer").count() == 0
    return value


@pytest.mark.slow
def test_the_challenge_after_the_threshold_is_solved_in_the_browser(
    browser: Browser, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    with (
        running(tmp_path, database_url, challenge_after=2) as site,
        page_of(browser) as (
            page,
            errors,
        ),
    ):
        with site.database.session() as session:  # two confirmation mails from here lately
            for _ in range(2):
                append(session, "confirm-mail", "web", ip="127.0.0.1", created_at=site.clock())
        page.goto(site.blog + POST)
        stamped(page)
        screenshot(page, "signup-blog-challenge.png")
        payload = solve_in_page(page, "form.digest-signup")
        screenshot(page, "signup-blog-challenge-solved.png")
        site.clock.advance(seconds=3)
        page.locator("#digest-signup-email").fill("solver@example.org")
        page.locator("form.digest-signup button[type=submit]").click()
        sent = page.locator("form.digest-signup").get_attribute("data-sent")
        page.wait_for_function(
            "() => document.querySelector('.digest-signup-status').textContent.length > 0"
        )
        assert page.locator(".digest-signup-status").inner_text() == sent
        assert people(site.database) == [("solver@example.org", "pending")]

        # the same solution again, by a script: spent
        start = page.request.get(site.digest + "/subscribe/start").json()
        site.clock.advance(seconds=3)
        replay = page.request.post(
            site.digest + "/subscribe",
            form={"email": "again@example.org", "stamp": start["stamp"], "altcha": payload},
            headers={"Accept": "application/json"},
        )
        assert replay.status == 202 and replay.json()["challenge"] is not None
        assert len(people(site.database)) == 1

        # digest's own sign-up page asks too, and its widget works under digest's CSP
        page.goto(site.digest + "/subscribe?locale=en")
        solve_in_page(page, "form")
        screenshot(page, "signup-page-challenge-solved.png")
        site.clock.advance(seconds=3)
        page.get_by_label("Email address").fill("own.page@example.org")
        page.locator("main form button[type=submit]").click()
        page.wait_for_selector("p.sent")
        assert dict(people(site.database))["own.page@example.org"] == "pending"
        assert errors == []

        # a blog page whose copy of the script never arrives: the one-click page asks
        with page_of(browser) as (plain, _):
            plain.route("**/static/signup.js", lambda route: route.abort())
            plain.goto(site.blog + POST)
            plain.locator("#digest-signup-email").fill("one.click@example.org")
            plain.locator("form.digest-signup button").click()
            plain.wait_for_selector("form.one-click")
            solve_in_page(plain, "form.one-click")
            screenshot(plain, "signup-one-click-challenge.png")
            site.clock.advance(seconds=3)
            plain.locator("button.confirm-signup").click()
            plain.wait_for_selector("h1.blog-home")
            assert plain.url == site.blog + "/"
        assert dict(people(site.database))["one.click@example.org"] == "pending"
