"""Safe defaults of a real send (issue 12): no plain-http unsubscribe links, no SMTP password
in clear, a Message-ID of its own for every `--to` copy.

Each refusal is one sentence naming the key, exit 2, before anything changed: no issue, no
database, no connection to the SMTP server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.config.presend import check_sending
from digest.delivery.smtp import SMTPConnection, SMTPError, Stage
from digest.links import is_loopback
from digest.store.database import open_database
from digest.store.tables import Issue
from tests.issues.test_send import add_subscribers, write_config
from tests.support.smtp_server import SMTPServer


def configured(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(path), *args])
    return result.exit_code, result.output


def no_issue(path: Path) -> bool:
    database = open_database(load_config(path).database_url)
    with database.session() as session:
        issues = session.scalars(select(Issue)).all()
    database.dispose()
    return issues == []


@pytest.mark.parametrize("args", [("send", "--yes"), ("send", "--to", "me@example.org")])
def test_a_real_send_refuses_a_plain_http_base_url(tmp_path: Path, args: tuple[str, ...]) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", server.port)
        configured(path, "base_url: https://news.example.com", "base_url: http://news.example.com")
        add_subscribers(load_config(path), 2)
        code, output = run(path, *args)
        assert code == 2, output
        assert output == (
            f"digest: error: {path}: web.base_url: http://news.example.com is not https://, "
            "and every unsubscribe link of a real send is built on it (RFC 8058 needs HTTPS; "
            "only a loopback host may use http://).\n"
        )
        assert no_issue(path)
        assert server.mailbox.messages == []
        # the dry run sends nothing: it may show what the links would be
        dry, output = run(path, "send", "--dry-run", "--outbox", str(tmp_path / "out"))
        assert dry == 0, output
        assert len(list((tmp_path / "out").glob("*.eml"))) == 2


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"]
)
def test_plain_http_on_a_loopback_host_is_allowed(tmp_path: Path, base_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", server.port)
        configured(path, "base_url: https://news.example.com", f'base_url: "{base_url}"')
        add_subscribers(load_config(path), 1)
        code, output = run(path, "send", "--yes")
        assert code == 0, output
        assert len(server.mailbox.wait_for(1)) == 1
        assert f"{base_url}/u/" in server.mailbox.messages[0].data.decode()


@pytest.mark.parametrize(
    "args", [("send", "--yes"), ("send", "--to", "me@example.org"), ("schedule",), ("serve",)]
)
def test_auth_in_clear_to_a_remote_server_is_refused_before_anything(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    database = tmp_path / "db.sqlite3"
    path = write_config(
        tmp_path, f"sqlite:///{database}", 587, username="digest", password_file="smtp-pass"
    )
    configured(path, "host: 127.0.0.1", "host: smtp.example.net")
    (tmp_path / "smtp-pass").write_text("s3cret\n", "utf-8")
    code, output = run(path, *args)
    assert code == 2, output
    assert output == (
        f"digest: error: {path}: smtp.security: none would send the SMTP password in clear to "
        "smtp.host smtp.example.net; set smtp.security to starttls or tls (AUTH without "
        "encryption is allowed only to a loopback smtp.host).\n"
    )
    assert not database.exists()  # nothing opened, nothing created
    configured(path, "  timeout: 5", "  security: starttls\n  timeout: 5")
    check_sending(load_config(path))  # encrypted: nothing to say


def test_the_client_itself_never_sends_a_password_in_clear_to_a_remote_host() -> None:
    """The last line of defence, under the configuration check: it raises before a byte."""
    client = SMTPConnection("192.0.2.1", 25, security="none")  # never connected: no socket at all
    with pytest.raises(SMTPError) as caught:
        asyncio.run(client.login("digest", "s3cret"))
    assert caught.value.stage == Stage.AUTH
    assert "refusing to send the password in clear to 192.0.2.1" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("evil.localhost", False),
        ("localhost.example.com", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("smtp.example.com", False),
        ("", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_every_test_copy_has_its_own_message_id(tmp_path: Path) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", server.port)
        add_subscribers(load_config(path), 1)
        for _ in range(3):
            code, output = run(path, "send", "--to", "me@example.org")
            assert code == 0 and "Sent a test copy" in output, output
        arrived = server.mailbox.wait_for(3)
        ids = [m.parsed()["Message-ID"] for m in arrived]
        assert len(ids) == 3 and len(set(ids)) == 3, ids
        assert all(i.startswith("<digest.") and i.endswith("@blog.example.com>") for i in ids)


def test_a_real_send_refuses_a_state_dir_it_cannot_write(tmp_path: Path) -> None:
    """A send keeps each SMTP reply in `state_dir` the moment it reads it: a folder it cannot
    make is named in one sentence before anything is recorded or sent (not found out in the
    middle of the send); the dry run, which keeps nothing, does not need it."""
    with SMTPServer() as server:
        path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", server.port)
        (tmp_path / "taken").write_text("a file, not a folder\n", encoding="utf-8")
        configured(path, "web:\n", "state_dir: taken/state\nweb:\n")
        add_subscribers(load_config(path), 2)
        code, output = run(path, "send", "--yes")
        assert code == 2, output
        assert output.startswith(f"digest: error: {path}: state_dir: cannot make the folder ")
        assert output.count("\n") == 1 and "a send keeps the SMTP replies" in output
        assert no_issue(path) and server.mailbox.messages == []
        dry, output = run(path, "send", "--dry-run", "--outbox", str(tmp_path / "out"))
        assert dry == 0, output
