"""The desk in a real browser (Debian's Chromium through Playwright) against uvicorn, with a real
SMTP server on 127.0.0.1, on SQLite (every rule the pages rest on runs on both databases over
HTTP in test_desk.py, and a send started from the desk in e2e/test_desk_send.py; a browser
adds nothing per database but time): logging in (with TOTP too), the overview's
two charts drawn from sent issues, an editor's note and a post left out seen in the preview,
a CSV import naming both bad lines, a subscriber found, their timeline read and
unsubscribed, a test copy arriving, a send started and watched to its end.

Then every desk page, in both languages and both colour schemes: screenshots at 375 and 1280
px (tests/output/desk-*.png) with no sideways scrolling, and axe-core's WCAG 2.1 AA rules with
no serious or critical violation. Only loopback is reachable."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from digest.config.schema import Config
from digest.store import lease
from digest.store.database import Database, open_database
from digest.store.events import append
from digest.store.tables import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueStatus,
    ReturnedMail,
    Status,
    Subscriber,
)
from digest.web.public import create_public_app
from tests.support import paths
from tests.support.axe import COLOUR_RULES, audit
from tests.support.browser import loopback_page, loopback_socket, serving
from tests.support.desk import NAME, PASSWORD, add_admin, desk_config
from tests.support.smtp_server import SMTPServer

OUTPUT = paths.TESTS / "output"


@dataclass
class Served:
    url: str
    config: Config
    database: Database
    smtp: SMTPServer


def serve_desk(tmp_path: Path, database_url: str, database: Database) -> Iterator[Served]:
    with SMTPServer() as smtp:
        sock = loopback_socket()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = desk_config(tmp_path, database_url, smtp.port, base)
        add_admin(database)
        with serving(create_public_app(config, database), sock=sock) as url:
            yield Served(url, config, database, smtp)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    database = open_database(url)
    try:
        yield from serve_desk(tmp_path, url, database)
    finally:
        database.dispose()


def blog_image(url: str) -> bool:
    """What the email preview may ask for beyond loopback: the example blog's images (its
    base URL is not served here, so they are aborted)."""
    return urlsplit(url).hostname == "blog.example.com"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with loopback_page(browser, blog_image) as fresh:
        yield fresh


def log_in(page: Page, served: Served, code: str = "", locale: str = "en") -> None:
    page.goto(f"{served.url}/admin/?locale={locale}")
    assert "/admin/login" in page.url
    page.fill("#name", NAME)
    page.fill("#password", PASSWORD)
    if code:
        page.fill("#code", code)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(re.escape(f"{served.url}/admin/") + r"(\?.*)?$"))


def add_people(database: Database, count: int, prefix: str = "reader") -> list[int]:
    with database.session() as session:
        people = [
            Subscriber(email=f"{prefix}{n}@example.com", name=f"读者{n}", status=Status.ACTIVE)
            for n in range(count)
        ]
        session.add_all(people)
        session.flush()
        for person in people:
            append(session, "subscribe", "cli", subscriber_id=person.id)
        return [p.id for p in people]


def sent_issues(database: Database) -> list[str]:
    """Three sent issues, each with its deliveries, bounces, a complaint and unsubscribes."""
    readers = add_people(database, 40, "past")
    keys = []
    with database.session() as session:
        for n, (bounced, complaints, unsubscribed) in enumerate(((1, 0, 1), (2, 1, 0), (0, 0, 3))):
            key = f"2026-W{40 + n}"
            issue = Issue(
                key=key,
                status=IssueStatus.FINISHED,
                posts=[{"id": f"p{n}", "title": f"Post {n}", "url": f"https://b/p{n}"}],
                created_at=datetime.now(UTC) - timedelta(days=21 - 7 * n),
            )
            session.add(issue)
            session.flush()
            for index, reader in enumerate(readers):
                status = DeliveryStatus.BOUNCED if index < bounced else DeliveryStatus.SENT
                session.add(Delivery(issue_id=issue.id, subscriber_id=reader, status=status))
            for c in range(complaints):
                session.add(
                    ReturnedMail(
                        key=f"c{n}{c}",
                        kind="complaint",
                        source="mail",
                        issue_id=issue.id,
                        subscriber_id=readers[-1 - c],
                    )
                )
            for u in range(unsubscribed):
                append(
                    session,
                    "unsubscribe",
                    "one-click",
                    subscriber_id=readers[10 + u],
                    issue_id=issue.id,
                )
            keys.append(key)
    return keys


# -- the flows ------------------------------------------------------------------------------------


def test_log_in_then_turn_on_totp_and_log_in_with_it(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/admin/login?locale=en")
    page.fill("#name", NAME)
    page.fill("#password", "not the password")
    page.click("form.stack button[type=submit]")
    assert page.inner_text("p.problem") == "Wrong name, password or code."
    log_in(page, served)
    assert page.inner_text("h1") == "Overview"
    page.goto(f"{served.url}/admin/settings")
    page.click("button:has-text('Set up two-factor login')")
    # the click's redirect may still be loading: expect() waits, count() would not
    expect(page.locator("figure.qr svg")).to_have_count(1)  # drawn by the server, no service
    secret = page.inner_text("#totp-secret")
    totp = pyotp.TOTP(secret)
    page.fill("#totp-code", totp.now())
    page.click("button:has-text('Turn it on')")
    expect(page.locator("main")).to_contain_text("Two-factor login is on.")
    page.click("header form button")  # log out
    page.wait_for_url(re.compile(r".*/admin/login.*"))
    page.goto(f"{served.url}/admin/")
    page.fill("#name", NAME)
    page.fill("#password", PASSWORD)
    page.click("form.stack button[type=submit]")
    assert page.inner_text("p.problem") == "Wrong name, password or code."
    log_in(page, served, code=totp.at(datetime.now(UTC) + timedelta(seconds=30)))
    assert page.inner_text("h1") == "Overview"


def test_the_overview_draws_both_charts_from_sent_issues(page: Page, served: Served) -> None:
    keys = sent_issues(served.database)
    log_in(page, served)
    page.wait_for_selector('[data-chart="growth-data"][data-drawn="light"] canvas')
    page.wait_for_selector('[data-chart="issues-data"][data-drawn="light"] canvas')
    # the scheme turns dark while the page is open: both charts are drawn again in its
    # colours (drawn once, their axis labels stayed near-black on the dark cards)
    page.emulate_media(color_scheme="dark")
    page.wait_for_selector('[data-chart="growth-data"][data-drawn="dark"] canvas')
    page.wait_for_selector('[data-chart="issues-data"][data-drawn="dark"] canvas')
    assert page.locator('[data-chart="issues-data"] canvas').count() == 1  # the old one went
    screenshot(page, "desk-overview-charts-dark.png")
    page.emulate_media(color_scheme="light")
    page.wait_for_selector('[data-chart="issues-data"][data-drawn="light"] canvas')
    size = page.eval_on_selector('[data-chart="issues-data"] canvas', "c => [c.width, c.height]")
    assert size[0] > 200 and size[1] > 100
    page.click('section[aria-labelledby="issues-title"] details summary')
    table = page.inner_text('section[aria-labelledby="issues-title"] details table')
    for key in keys:
        assert key in table
    assert "2.50 %" in table  # 2026-W40's bounce rate: 1 bounced of 40
    assert "2.63 %" in table  # 2026-W41's complaint rate: 1 complaint over 38 delivered
    assert "7.50 %" in table  # 2026-W42's unsubscribe rate: 3 over 40 delivered
    readers = page.inner_text("dl.figures >> nth=0")
    assert "40" in readers
    screenshot(page, "desk-overview-charts.png")


def test_a_note_and_a_post_left_out_show_in_the_preview(page: Page, served: Served) -> None:
    log_in(page, served)
    page.goto(f"{served.url}/admin/next")
    titles = page.locator("li.post .post-title a").all_inner_texts()
    assert len(titles) >= 3
    left_out = titles[1]
    page.fill("#note", "A word from the editor: **thank you** for reading.")
    page.click("button:has-text('Save the note')")
    assert "The note is saved." in page.inner_text("main")
    page.locator("li.post").nth(1).locator("button:has-text('Leave out of this issue')").click()
    assert "The post is left out." in page.inner_text("main")
    email = page.frame_locator("iframe.email")
    email.locator("text=A word from the editor").wait_for()
    assert email.locator("strong", has_text="thank you").count() == 1
    body = email.locator("body").inner_text()
    assert left_out not in body and titles[0] in body
    page.goto(f"{served.url}/admin/next?view=text")
    text = page.inner_text("pre.text-part")
    assert "A word from the editor: **thank you** for reading." in text
    assert left_out not in text
    assert "KB of Gmail's 102 KB clip" in page.inner_text("main")


def test_an_import_names_both_bad_lines(page: Page, served: Served, tmp_path: Path) -> None:
    upload = tmp_path / "readers.csv"
    upload.write_text(
        "email,name,locale,categories,status\n"
        "good1@example.com,Good One,en,,active\n"
        "not-an-address,Bad One,en,,active\n"
        "good2@example.com,Good Two,zh,,active\n"
        "bad2@example.com,Bad Two,en,,sleeping\n",
        encoding="utf-8",
    )
    log_in(page, served)
    page.goto(f"{served.url}/admin/subscribers/import")
    page.set_input_files("#file", str(upload))
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("#result-title")
    problems = page.locator("ul.problems li").all_inner_texts()
    assert len(problems) == 2
    assert "line 3" in problems[0] and "not-an-address" in problems[0]
    assert "line 5" in problems[1] and "sleeping" in problems[1]
    assert str(tmp_path) not in page.content()  # the server's temporary path is not shown
    assert "2 added" in page.inner_text("#result-title + p")


def test_find_a_subscriber_read_their_timeline_and_unsubscribe_them(
    page: Page, served: Served
) -> None:
    add_people(served.database, 30)
    [wanted] = add_people(served.database, 1, "wang.fang.")
    log_in(page, served)
    page.goto(f"{served.url}/admin/subscribers")
    page.fill("#q", "WANG.fang")
    page.click("button:has-text('Find')")
    rows = page.locator("table.people tbody tr")
    assert rows.count() == 1
    rows.locator("a").click()
    page.wait_for_url(f"{served.url}/admin/subscribers/{wanted}")
    timeline = page.inner_text("ol.timeline")
    assert "subscribe" in timeline
    page.click("button:has-text('Unsubscribe')")
    assert "The subscriber was unsubscribed." in page.inner_text("main")
    assert "unsubscribed" in page.inner_text("dl.figures")
    first = page.locator("ol.timeline li").first.inner_text()
    assert "unsubscribe" in first and "desk" in first and NAME in first


def test_a_test_copy_arrives_at_the_smtp_server(page: Page, served: Served) -> None:
    add_people(served.database, 1)
    log_in(page, served)
    page.goto(f"{served.url}/admin/next")
    page.fill("#test-address", "owner@example.com")
    page.click("section.grid form button:has-text('Send a test copy')")
    assert "The test copy was sent." in page.inner_text("main")
    [received] = served.smtp.mailbox.wait_for(1)
    assert received.rcpt_tos == ["owner@example.com"]
    assert "Incoming Transmission" in str(received.parsed()["Subject"])
    assert served.smtp.mailbox.recipients() == ["owner@example.com"]  # nobody else


@pytest.mark.slow
def test_start_a_send_and_watch_it_finish(page: Page, served: Served) -> None:
    add_people(served.database, 6)
    log_in(page, served)
    page.goto(f"{served.url}/admin/next/send")
    assert "goes to 6 readers" in page.inner_text("main")
    page.click("button.danger")
    page.wait_for_url(re.compile(r".*/admin/next/progress.*"))
    # the page reads the ledger every second (static/desk.js); no reload by the test
    page.wait_for_selector("#progress-status:text-is('finished')", timeout=120_000)
    assert page.inner_text("#progress-sent") == "6"
    assert sorted(served.smtp.mailbox.recipients()) == sorted(
        f"reader{n}@example.com" for n in range(6)
    )
    # the send was a process of its own: it let the lease go when it finished
    deadline = time.monotonic() + 30
    while lease.current_holder(served.database, lease.SEND_LEASE) is not None:
        assert time.monotonic() < deadline, "the send did not let the lease go"
        time.sleep(0.1)


# -- every page, both languages, both schemes ------------------------------------------------


def screenshot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def fits(page: Page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    # a chart takes its new width in the page's resize handler, a frame or more later
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(
            "w => document.documentElement.scrollWidth <= w", arg=width, timeout=5000
        )
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert int(scroll) <= int(inner) == width, (page.url, width, scroll)


def desk_pages(served: Served) -> list[tuple[str, str]]:
    keys = sent_issues(served.database)
    with served.database.session() as session:
        person = Subscriber(email="zhang.wei@example.com", name="张伟", status=Status.ACTIVE)
        session.add(person)
        session.flush()
        append(session, "subscribe", "cli", subscriber_id=person.id)
        # a followed link (`tracking.clicks: personal`): a long URL in the history must wrap
        long_url = "https://blog.example.com/posts/" + "speculative-decoding-" * 6 + "medusa/"
        append(session, "click", "link", subscriber_id=person.id, detail=long_url)
        person_id = person.id
    return [
        ("overview", "/admin/"),
        ("next", "/admin/next"),
        ("next-text", "/admin/next?view=text"),
        ("send", "/admin/next/send"),
        ("progress", "/admin/next/progress"),
        ("issues", "/admin/issues"),
        ("issue", f"/admin/issues/{keys[1]}"),
        ("subscribers", "/admin/subscribers"),
        ("subscriber", f"/admin/subscribers/{person_id}"),
        ("import", "/admin/subscribers/import"),
        ("returned", "/admin/returned"),
        ("settings", "/admin/settings"),
    ]


@pytest.mark.slow
def test_every_page_fits_both_widths_and_passes_axe(page: Page, served: Served) -> None:
    """Each page in each language, then in each colour scheme (a media query: the desk's dark
    styles change colours only): no sideways scrolling at 375 and 1280 px, a screenshot of
    each, and axe-core's WCAG 2.1 AA rules with no serious or critical violation — all of
    them in the light scheme, in the dark one the rules that read colours."""
    pages = desk_pages(served)
    problems: dict[str, str] = {}
    for locale in ("zh", "en"):
        page.goto(f"{served.url}/admin/login?locale={locale}")
        check(page, "login", locale, problems)
    log_in(page, served)
    for locale in ("zh", "en"):
        for name, path in pages:
            joiner = "&" if "?" in path else "?"
            page.goto(f"{served.url}{path}{joiner}locale={locale}")
            assert "/admin/login" not in page.url
            expected = "zh-CN" if locale == "zh" else "en"
            assert page.locator("html").get_attribute("lang") == expected
            check(page, name, locale, problems)
    assert problems == {}, "\n".join(problems.values())


def check(page: Page, name: str, locale: str, problems: dict[str, str]) -> None:
    if page.locator("iframe.email").count():  # the preview: its email in it, not a blank frame
        page.frame_locator("iframe.email").locator("body *").first.wait_for()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for width in (375, 1280):
            fits(page, width)
            screenshot(page, f"desk-{name}-{locale}-{scheme}-{width}.png")
        found = audit(page, only=COLOUR_RULES if scheme == "dark" else ())
        if found.serious():
            problems[f"{name} {locale} {scheme}"] = found.report()
    page.emulate_media(color_scheme="light")
