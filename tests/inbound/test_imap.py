"""Reading returned mail over IMAP from a real Dovecot: unseen only, \\Seen, processed folder."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.inbound.classify import classify
from digest.inbound.mailbox import Imap, MailboxError
from digest.inbound.settings import ImapSettings
from tests.support.bounce_fixtures import CONTEXT, fixture_bytes
from tests.support.dovecot import DovecotServer


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def client(server: DovecotServer) -> imaplib.IMAP4:
    connection = imaplib.IMAP4("127.0.0.1", server.port)
    connection.login(server.user, server.password)
    return connection


def reset(server: DovecotServer, *names: str) -> None:
    """An INBOX holding exactly the named fixtures, unseen, and no other folders' mail."""
    connection = client(server)
    for folder in ("INBOX", "Processed"):
        status, count = connection.select(folder)
        if status == "OK" and count[0] != b"0":
            connection.store("1:*", "+FLAGS", "\\Deleted")
            connection.expunge()
    for name in names:
        connection.append("INBOX", None, None, fixture_bytes(name).replace(b"\n", b"\r\n"))
    connection.logout()


def flags_and_counts(server: DovecotServer) -> tuple[list[str], int]:
    connection = client(server)
    connection.select("INBOX", readonly=True)
    _, data = connection.fetch("1:*", "(FLAGS)")
    flags = [item.decode() for item in data if isinstance(item, bytes)]
    processed = 0
    if connection.select("Processed", readonly=True)[0] == "OK":
        _, found = connection.search(None, "ALL")
        processed = len(found[0].split())
    connection.logout()
    return flags, processed


def settings(server: DovecotServer, **overrides: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.tls_port,
        "security": "tls",
        "username": server.user,
        "password": server.password,
        "ca_file": Path(server.cert),
    }
    values.update(overrides)
    return ImapSettings(**values)


def handle_all(config: ImapSettings) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    with Imap(config) as box:
        for incoming in box:
            result = classify(incoming.message, CONTEXT, raw=incoming.raw)
            seen.append((result.kind, result.key))
            if result.kind != "unknown":
                incoming.mark_handled()
    return seen


def test_handled_messages_are_seen_and_unknown_ones_stay_unseen(dovecot: DovecotServer) -> None:
    reset(dovecot, "postfix-dsn-verp.eml", "unknown-bounce.eml", "arf-yahoo.eml")
    kinds = [kind for kind, _ in handle_all(settings(dovecot))]
    assert kinds == ["hard", "unknown", "complaint"]
    flags, processed = flags_and_counts(dovecot)
    assert ["\\Seen" in f for f in flags] == [True, False, True]
    assert processed == 0
    # the second run reads only the unknown one again
    assert [k for k, _ in handle_all(settings(dovecot))] == ["unknown"]


def test_processed_folder_receives_handled_messages(dovecot: DovecotServer) -> None:
    reset(dovecot, "gmail-dsn.eml", "not-ours.eml", "unknown-bounce.eml")
    config = settings(dovecot, processed_folder="Processed", security="starttls", port=dovecot.port)
    kinds = [kind for kind, _ in handle_all(config)]
    assert kinds == ["hard", "not_ours", "unknown"]
    flags, processed = flags_and_counts(dovecot)
    assert len(flags) == 1 and "\\Seen" not in flags[0]
    assert processed == 2


def test_reading_does_not_mark_seen(dovecot: DovecotServer) -> None:
    reset(dovecot, "postfix-dsn-verp.eml")
    with Imap(settings(dovecot, security="none", port=dovecot.port)) as box:
        assert len(list(box)) == 1
    flags, _ = flags_and_counts(dovecot)
    assert "\\Seen" not in flags[0]


def test_oversize_messages_are_skipped_and_reported(dovecot: DovecotServer) -> None:
    reset(dovecot, "not-ours.eml", "gmail-dsn.eml")
    with Imap(settings(dovecot), max_bytes=1000) as box:
        kinds = [classify(i.message, CONTEXT).kind for i in box]
        skipped = list(box.skipped)
    assert kinds == ["not_ours"]
    assert len(skipped) == 1 and "over the 1000 bytes limit" in skipped[0].reason


def test_wrong_password_is_one_sentence(dovecot: DovecotServer) -> None:
    with pytest.raises(MailboxError, match=r"^bounces.imap: 127.0.0.1:\d+ refused us: ") as caught:
        Imap(settings(dovecot, password="wrong"))
    assert "\n" not in str(caught.value)


def test_untrusted_certificate_is_refused(dovecot: DovecotServer, tmp_path: Path) -> None:
    with pytest.raises(
        MailboxError, match=r"cannot connect to 127\.0\.0\.1:.*CERTIFICATE_VERIFY_FAILED"
    ):
        Imap(settings(dovecot, ca_file=None))


def test_nothing_listening(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ImapSettings(
        host="127.0.0.1", port=port, security="none", username="u", password="p", timeout=5
    )
    with pytest.raises(MailboxError, match=f"cannot connect to 127.0.0.1:{port}"):
        Imap(config)
    assert ssl  # imported for the TLS variants above
