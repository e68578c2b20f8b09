"""Who the web apps believe: the preview's Host names, and the public app's proxy headers.

Before: the preview checked Host only when bound to 127.0.0.1 (bound to another address it
answered to any name, so DNS rebinding reached it), and `digest serve` left X-Forwarded-For to
uvicorn, which trusts 127.0.0.1 or whatever $FORWARDED_ALLOW_IPS says, whatever the
configuration: the sign-up's per-IP limit counted the wrong address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import dkim_settings, sender_settings, smtp_settings
from digest.delivery.mailer import SmtpMailer
from digest.errors import ConfigError
from digest.store.database import Database
from digest.web.hosts import preview_hosts
from digest.web.preview import create_preview_app
from digest.web.public import create_public_app
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.smtp_server import SMTPServer, free_port
from tests.web.test_public_web import Clock, events, stamp

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ROOT = paths.ROOT


@pytest.mark.parametrize(
    ("bind", "allowed", "accepted", "refused"),
    [
        ("127.0.0.1", (), ["127.0.0.1:8000", "localhost", "[::1]:8000"], ["evil.example"]),
        ("192.0.2.10", (), ["192.0.2.10:8000", "localhost:8000"], ["evil.example", "127.0.0.1"]),
        ("192.0.2.10", ("preview.lan",), ["preview.lan:8000"], ["other.lan", "lan"]),
        ("0.0.0.0", (), ["0.0.0.0:8000", "127.0.0.1", "localhost"], ["attacker.example"]),
        ("::", (), ["[::1]:8000", "localhost"], ["rebind.example"]),
        ("2001:db8::5", (), ["[2001:db8::5]:8000"], ["[2001:db8::6]:8000", "127.0.0.1"]),
    ],
)
def test_the_preview_answers_only_to_its_own_names(
    bind: str, allowed: tuple[str, ...], accepted: list[str], refused: list[str]
) -> None:
    config = load_config(ROOT / "config.yaml", environ={})
    app = create_preview_app(config, allowed_hosts=preview_hosts(bind, allowed))
    with TestClient(app) as client:
        for host in accepted:
            assert client.get("/issues", headers={"Host": host}).status_code == 200, host
        for host in refused:
            answer = client.get("/issues", headers={"Host": host})
            assert answer.status_code == 400 and answer.text == "Invalid host header", host


def test_preview_allowed_hosts_is_a_config_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("allowed_hosts: []", "allowed_hosts: [preview.lan]"), "utf-8")
    config = load_config(path, environ={})
    assert config.preview.allowed_hosts == ["preview.lan"]
    assert "preview.lan" in preview_hosts("192.0.2.1", config.preview.allowed_hosts)


# -- the public app's proxy headers ---------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def public(
    tmp_path: Path, database_url: str, smtp: SMTPServer, trusted: str | None = None
) -> Config:
    environ = {"DIGEST_WEB__CONFIRM_LIMIT_PER_IP": "3"}
    if trusted is not None:
        environ["DIGEST_WEB__TRUSTED_PROXIES"] = trusted
    return load_config(write_config(tmp_path, database_url, smtp.port), environ=environ)


def client_for(config: Config, database: Database, peer: str) -> TestClient:
    """The app as a connection from `peer` sees it."""
    app = create_public_app(
        config,
        database,
        clock=Clock(),
        mailer=SmtpMailer(smtp_settings(config), sender_settings(config), dkim_settings(config)),
    )
    return TestClient(app, client=(peer, 40000))


def subscribe(client: TestClient, email: str, forwarded: str | None = None) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    data = {"email": email, "name": "Reader", "locale": "en", "website": "", "stamp": stamp()}
    assert client.post("/subscribe", data=data, headers=headers).status_code == 200


def test_behind_the_local_proxy_each_reader_has_their_own_limit(
    tmp_path: Path, database_url: str, database: Database, smtp: SMTPServer
) -> None:
    config = public(tmp_path, database_url, smtp)
    with client_for(config, database, "127.0.0.1") as proxy:
        for n in range(5):  # limit 3 per IP
            subscribe(proxy, f"a{n}@example.com", "198.51.100.9")
        # what the client sent is on the left, what the proxy saw on the right
        subscribe(proxy, "b@example.com", "203.0.113.50, 192.0.2.77")
    ips = [e.ip for e in events(database, "confirm-mail")]
    assert ips == ["198.51.100.9"] * 3 + ["192.0.2.77"]
    assert len(smtp.mailbox.messages) == 4


def test_a_client_cannot_choose_its_address(
    tmp_path: Path, database_url: str, database: Database, smtp: SMTPServer
) -> None:
    config = public(tmp_path, database_url, smtp)
    with client_for(config, database, "203.0.113.7") as attacker:
        for n in range(6):
            subscribe(attacker, f"v{n}@example.com", f"10.0.0.{n}")
    assert [e.ip for e in events(database, "confirm-mail")] == ["203.0.113.7"] * 3
    assert len(smtp.mailbox.messages) == 3


def test_with_no_trusted_proxy_the_headers_are_never_read(
    tmp_path: Path, database_url: str, database: Database, smtp: SMTPServer
) -> None:
    config = public(tmp_path, database_url, smtp, trusted="[]")
    assert config.web.trusted_proxies == []
    with client_for(config, database, "127.0.0.1") as local:
        subscribe(local, "x@example.com")
        subscribe(local, "y@example.com", "198.51.100.9")
    assert [e.ip for e in events(database, "confirm-mail")] == ["127.0.0.1"] * 2


def test_a_trusted_network(
    tmp_path: Path, database_url: str, database: Database, smtp: SMTPServer
) -> None:
    config = public(tmp_path, database_url, smtp, trusted='["10.0.0.0/8"]')
    with client_for(config, database, "10.1.2.3") as proxy:
        subscribe(proxy, "z@example.com", "198.51.100.20")
    assert [e.ip for e in events(database, "confirm-mail")] == ["198.51.100.20"]


@pytest.mark.parametrize("entry", ["*", "proxy.example", "10.0.0.0/33"])
def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path, entry: str) -> None:
    path = write_config(tmp_path, "sqlite://", 25)
    with pytest.raises(ConfigError, match=r"web.trusted_proxies: .* is not an IP address"):
        load_config(path, environ={"DIGEST_WEB__TRUSTED_PROXIES": f'["{entry}"]'})


@pytest.mark.slow
def test_digest_serve_ignores_uvicorns_own_forwarded_allow_ips(
    tmp_path: Path, smtp: SMTPServer
) -> None:
    """uvicorn trusts $FORWARDED_ALLOW_IPS (here: everyone); `digest serve` must not."""
    database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    path = write_config(tmp_path, database_url, smtp.port)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FORWARDED_ALLOW_IPS": "*",
        "DIGEST_WEB__TRUSTED_PROXIES": "[]",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(path), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/subscribe",
            data={
                "email": "w@example.com",
                "name": "W",
                "locale": "en",
                "website": "",
                "stamp": stamp(),
            },
            headers={"X-Forwarded-For": "198.51.100.99"},
            timeout=60,
        )
        assert answer.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=60)
    from digest.store.database import open_database

    database = open_database(database_url)
    try:
        assert [e.ip for e in events(database, "confirm-mail")] == ["127.0.0.1"]
    finally:
        database.dispose()


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until the server accepts connections (it has printed nothing reliable to wait on)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("digest serve did not start listening")
