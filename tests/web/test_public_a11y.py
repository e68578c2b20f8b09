"""Every public page passes axe-core's WCAG 2.1 A and AA rules with no serious or critical
violation, in Chinese and English, in the light and the dark colour scheme: the sign-up form,
its one-click confirmation page, the check-your-inbox page, the confirmation link's page and
its result, unsubscribe and its result, preferences and a saved notice, the archive, the
error page, an archived issue (the email in its own language, in both schemes), and the
sign-up page with the ALTCHA widget in its form.

axe-core runs inside Chromium (tests/support/axe.py), on the pages as digest serves them
(uvicorn, their own Content-Security-Policy), reached the way a reader reaches them: links
from the mail the real SMTP server received, buttons pressed. Screenshots of the dark pages
(in Chinese) go to tests/output/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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
from digest.issues.plan import plan_send
from digest.issues.send import send_issue
from digest.store.database import Database, open_database
from digest.store.tables import Issue, Status, Subscriber
from digest.tokens import make_token
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.axe import COLOUR_RULES, audit
from tests.support.browser import loopback_page, loopback_socket, serving
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import Clock

OUTPUT = paths.TESTS / "output"
LOCALES = ("zh", "en")
SCHEMES = ("light", "dark")


@dataclass
class Public:
    url: str
    config: Config
    database: Database
    smtp: SMTPServer
    clock: Clock
    issue_key: str


def configure(folder: Path, smtp: SMTPServer, url: str, **signup: object) -> Config:
    path = write_config(folder, f"sqlite:///{folder / 'digest.sqlite3'}", smtp.port)
    text = path.read_text("utf-8").replace(
        "  base_url: https://news.example.com\n",
        f"  base_url: {url}\n  privacy_url: https://blog.example.com/privacy/\n",
    )
    text = (
        text[: text.index("signup:")]
        + "signup:\n"
        + "".join(
            f"  {key}: {value}\n"
            for key, value in {"min_fill_seconds": 2, "max_form_age_hours": 24, **signup}.items()
        )
    )
    path.write_text(text + "tracking:\n  clicks: aggregate\n", encoding="utf-8")
    return load_config(path, environ={})


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Public]:
    """digest's public app on loopback, with one issue sent (the archive has something)."""
    folder = tmp_path_factory.mktemp("a11y")
    with ExitStack() as stack:
        smtp = stack.enter_context(SMTPServer())
        sock = loopback_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = configure(folder, smtp, url, challenge="never")
        database = open_database(config.database_url)
        stack.callback(database.dispose)
        with database.session() as session:
            session.add(Subscriber(email="first@example.com", status=Status.ACTIVE))
        send_issue(config, database, plan_send(config, database))
        with database.session() as session:
            key = session.scalars(select(Issue.key)).one()
        clock = Clock()
        mailer = SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config))
        app = create_public_app(config, database, clock=clock, mailer=mailer)
        stack.enter_context(serving(app, sock=sock))
        yield Public(url, config, database, smtp, clock, key)


def from_blog(url: str) -> bool:
    """The one request that leaves loopback (and is aborted): an archived post's picture."""
    return url.startswith("https://blog.example.com/")


def checked(page: Page, name: str, shots: bool = False) -> None:
    """axe-core on the page as it is now, in each colour scheme: no serious or critical
    violation. The same document is checked in both (axe is injected once): all the rules in
    the light scheme, in the dark one the rules that read colours (the scheme is a media
    query; the pages' dark styles change colours only); `shots` keeps a screenshot of the
    dark one."""
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        found = audit(page, only=COLOUR_RULES if scheme == "dark" else ())
        assert found.serious() == [], f"{scheme}: {found.report()}"
    if shots:
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"a11y-{name}-dark.png"), full_page=True)


def reader(public: Public, email: str, locale: str) -> Subscriber:
    with public.database.session() as session:
        person = Subscriber(email=email, status=Status.ACTIVE, locale=locale, name="读者")
        session.add(person)
        session.flush()
        session.expunge(person)
        return person


@pytest.mark.slow  # a reader's whole way through eleven pages, each audited twice
@pytest.mark.parametrize("locale", LOCALES)
def test_public_pages_pass_wcag_21_aa(public: Public, browser: Browser, locale: str) -> None:
    # `public` first: its send runs asyncio before Playwright's loop starts
    shots = locale == "zh"  # the screenshots of one language are enough to look at
    query = f"?locale={locale}"
    with loopback_page(browser, from_blog) as page:
        # sign-up, the one-click page a stamp-less post lands on, check your inbox
        page.goto(public.url + "/subscribe" + query)
        checked(page, f"subscribe-{locale}", shots)
        address = f"a11y.{locale}@example.org"
        page.locator("#email").fill(address)
        page.evaluate("document.querySelector('input[name=stamp]').value = ''")
        page.locator("main form button[type=submit]").click()
        page.wait_for_selector("form.one-click")
        checked(page, f"subscribe-confirm-{locale}", shots)
        public.clock.advance(seconds=3)
        page.locator("button.confirm-signup").click()
        page.wait_for_selector("p.sent")
        checked(page, f"check-inbox-{locale}", shots)

        # the confirmation link from the mail, and its result
        mails = [m for m in public.smtp.mailbox.wait_for(1) if m.rcpt_tos == [address]]
        while not mails:
            count = len(public.smtp.mailbox.messages) + 1
            mails = [m for m in public.smtp.mailbox.wait_for(count) if m.rcpt_tos == [address]]
        body = mails[0].parsed().get_body(("plain",))
        assert body is not None
        [link] = re.findall(re.escape(public.url) + r"/confirm/\S+", body.get_content())
        page.goto(public.url + urlsplit(link).path + query)
        checked(page, f"confirm-{locale}", shots)
        page.locator("button.confirm").click()
        page.wait_for_selector("p.result")
        checked(page, f"confirmed-{locale}", shots)

        # unsubscribe and preferences, from a reader's links
        person = reader(public, f"links.{locale}@example.org", locale)
        keys = keyring(public.config)
        preferences = make_token(keys, "preferences", person.id, None, person.token_key)
        page.goto(f"{public.url}/p/{preferences}{query}")
        checked(page, f"preferences-{locale}", shots)
        page.locator('button[value="save"]').click()
        page.wait_for_selector(".notice")
        checked(page, f"preferences-saved-{locale}", shots)
        unsubscribe = make_token(keys, "unsubscribe", person.id, None, person.token_key)
        page.goto(f"{public.url}/u/{unsubscribe}{query}")
        checked(page, f"unsubscribe-{locale}", shots)
        page.locator("button.unsubscribe").click()
        page.wait_for_selector("p.result")
        checked(page, f"unsubscribed-{locale}", shots)

        # the archive, a page that is not there
        page.goto(public.url + "/archive/" + query)
        checked(page, f"archive-{locale}", shots)
        page.goto(public.url + "/nothing-here" + query)
        checked(page, f"not-found-{locale}", shots)


def test_archived_issue_passes_wcag_21_aa(public: Public, browser: Browser) -> None:
    """The archived issue is the email itself, in its own language (the issue's, not the
    reader's), served sandboxed: no script runs in it, axe's neither, so `audit` refuses it
    there and it is checked in a context that ignores its policy (markup and styles are the
    same; the only request that policy would have allowed, a picture from the blog, is
    aborted either way)."""
    archived = f"{public.url}/archive/{public.issue_key}/"
    with loopback_page(browser, from_blog) as page:
        page.goto(archived)
        assert page.evaluate("() => window.origin") == "null"
        with pytest.raises(RuntimeError, match="sandboxed"):
            audit(page)
    with loopback_page(browser, from_blog, bypass_csp=True) as page:
        page.goto(archived)
        checked(page, "archived-issue", shots=True)


def test_sign_up_with_the_challenge_passes_wcag_21_aa(
    tmp_path: Path, public: Public, browser: Browser
) -> None:
    """The sign-up page as it is past the threshold (here `challenge: always`): the vendored
    ALTCHA widget in the form (its proof of work is solved in tests/web/test_signup_browser.py;
    here its markup and colours are what counts), in both languages."""
    smtp = public.smtp
    sock = loopback_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = configure(tmp_path, smtp, url, challenge="always")
    database = open_database(config.database_url)
    try:
        with (
            serving(create_public_app(config, database), sock=sock),
            loopback_page(browser, lambda url: False) as page,
        ):
            for locale in LOCALES:
                page.goto(f"{url}/subscribe?locale={locale}")
                page.locator("main form altcha-widget").wait_for()
                checked(page, f"subscribe-challenge-{locale}", locale == "zh")
    finally:
        database.dispose()


def test_audit_finds_what_only_the_dark_scheme_breaks(browser: Browser) -> None:
    """The check can fail: grey text that reads in the light scheme and not in the dark one
    is a serious colour-contrast violation there, and there only."""
    with loopback_page(browser, lambda url: False) as page:
        page.set_content(
            '<!doctype html><html lang="en"><head><title>t</title><style>'
            "body { background: #fff; color: #222 }"
            "@media (prefers-color-scheme: dark) { body { background: #111; color: #333 } }"
            "</style></head><body><main><p>Words</p></main></body></html>"
        )
        page.emulate_media(color_scheme="light")
        assert audit(page).serious() == []
        page.emulate_media(color_scheme="dark")
        assert [v.rule for v in audit(page, only=COLOUR_RULES).serious()] == ["color-contrast"]
