"""Shared test options and fixtures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from digest.delivery.webhooks import TIMEOUT as WEBHOOK_TIMEOUT
from digest.store.database import Database, open_database
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.databases import copy_sqlite
from tests.support.postgres import PostgresServer

TESTS = Path(__file__).resolve().parent
# Whole folders and modules that need more than Python: slow ones, or ones that start a server
# of another program (the markers are declared in pyproject.toml; `make check` leaves them out).
MODULE_MARKERS = {
    "e2e": ("slow",),
    "e2e/test_bounces_loop.py": ("postfix", "dovecot"),
    "inbound/test_imap.py": ("dovecot",),
    "render/test_mjml_js.py": ("slow",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what needs a browser, PostgreSQL, Postfix or Dovecot, or is slow, from what each
    test uses: a test that asks for the browser or a PostgreSQL database is marked whichever
    folder it sits in, so the fast subset (`make check`) cannot start one by accident."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & {"browser", "page", "playwright"}:
            item.add_marker("browser")
        if "postgres" in names or "postgresql" in (
            params.get("database_url"),
            params.get("empty_database_url"),
        ):
            item.add_marker("postgres")
        relative = item.path.relative_to(TESTS).as_posix()
        for prefix, markers in MODULE_MARKERS.items():
            if relative == prefix or relative.startswith(prefix + "/"):
                for marker in markers:
                    item.add_marker(marker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Wait for the outgoing-webhook threads a test started (digest.delivery.webhooks
    .start_background: daemon threads, one round of posts each) before its fixtures are torn
    down, so that none outlives the test's database and folder and reports a failure that
    belongs to no test."""
    before = set(threading.enumerate())
    yield
    for thread in threading.enumerate():
        if thread.name == "digest-webhooks" and thread not in before:
            thread.join(timeout=2 * WEBHOOK_TIMEOUT)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/ from the current output instead of comparing with it.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once per test process, for `database_url` to copy."""
    path = tmp_path_factory.mktemp("template") / "digest.sqlite3"
    open_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every database test runs on both SQLite and PostgreSQL, each on a database of its own
    at the current schema: a copy of one migrated once per test process, with an identity of
    its own (migrating each one again cost a tenth of the suite). A test of the migrations
    themselves takes `empty_database_url`."""
    if request.param == "sqlite":
        path = tmp_path / "digest.sqlite3"
        copy_sqlite(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.migrated_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that does not exist yet (SQLite) or holds nothing (PostgreSQL), on both:
    for the tests of migrating one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module: while Playwright's sync API is open its event loop counts as running in
    this thread, and the send path's asyncio.run() would refuse to start."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright cannot download browsers here)."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()
