"""What the desk's tests share: a configuration whose `web.base_url` is where the desk is
served, an administrator, a settable clock, logging in, and the CSRF token of a page."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.access.admins import add_user
from digest.config.load import load_config
from digest.config.schema import Config
from digest.store.database import Database
from tests.issues.test_send import write_config

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

NAME = "alice"
PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """A settable "now": sessions, throttling and TOTP steps follow it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def desk_config(tmp_path: Path, database_url: str, smtp_port: int, base_url: str) -> Config:
    """The send tests' configuration (examples/blog, a real SMTP server) served at
    `base_url`."""
    path = write_config(tmp_path, database_url, smtp_port)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("https://news.example.com", base_url), encoding="utf-8")
    return load_config(path, environ={})


def add_admin(database: Database, name: str = NAME, password: str = PASSWORD) -> None:
    with database.session() as session:
        add_user(session, name, password, datetime.now(UTC))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Browser:
    """A TestClient that speaks as the desk's own pages do (its Origin, the page's token)."""

    client: TestClient
    origin: str

    def get(self, path: str, **options: Any) -> Any:
        return self.client.get(path, **options)

    def post(self, path: str, data: dict[str, Any] | None = None, **options: Any) -> Any:
        headers = {"Origin": self.origin, **options.pop("headers", {})}
        return self.client.post(path, data=data, headers=headers, **options)

    def csrf(self, page: str = "/admin/settings") -> str:
        return csrf_of(self.get(page).text)

    def login(self, name: str = NAME, password: str = PASSWORD, code: str = "") -> Any:
        return self.post(
            "/admin/login",
            {"name": name, "password": password, "code": code, "next": "/"},
            follow_redirects=False,
        )


def client(app: Any, base_url: str, address: str = "127.0.0.1") -> Browser:
    return Browser(
        TestClient(app, base_url=base_url, follow_redirects=False, client=(address, 50000)),
        base_url,
    )
