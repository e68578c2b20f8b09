"""The whole loop with real parts: `digest send` through Debian's Postfix, which delivers one
subscriber's digest and bounces an unknown user's with a DSN to the VERP address, into a
Maildir that `digest bounces` reads; and `digest bounces` over IMAP from a real Dovecot."""

from __future__ import annotations

import email
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config.load import load_config
from digest.store.database import open_database
from digest.store.tables import Delivery, Subscriber
from tests.inbound.test_imap import flags_and_counts, reset
from tests.issues.test_send import write_config as send_config
from tests.support.bounce_store import VERP_EMAIL, cli, events, load, seed, standing, write_config
from tests.support.dovecot import DovecotServer
from tests.support.postfix import DOMAIN, PostfixServer

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="Postfix's master needs root (CI runs as root, so there it runs)"
)


@pytest.fixture
def postfix() -> Iterator[PostfixServer]:
    server = PostfixServer(("bounces", "reader"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_dsn_from_postfix_bounces_the_subscriber_with_its_issue(
    tmp_path: Path, database_url: str, postfix: PostfixServer
) -> None:
    path = send_config(tmp_path, database_url, postfix.port)
    path.write_text(path.read_text("utf-8") + f"bounces:\n  return_path: bounces@{DOMAIN}\n")
    config = load_config(path)
    database = open_database(config.database_url)
    with database.session() as session:
        for address in (f"reader@{DOMAIN}", f"ghost@{DOMAIN}"):
            session.add(Subscriber(email=address, status="active", locale="en"))
    sent = cli(path, "send", "--yes")
    assert sent.exit_code == 0, sent.output
    # Postfix accepted both (smtpd_reject_unlisted_recipient = no), then bounced the ghost's
    (delivered,) = postfix.wait_for_mail("reader")
    (dsn,) = postfix.wait_for_mail("bounces")
    message = email.message_from_bytes(delivered.read_bytes())
    assert message["Return-Path"].startswith("<bounces+")
    assert "status=bounced" in postfix.log() and "dsn=5.1.1" in postfix.log()

    result = cli(path, "bounces", "--maildir", str(postfix.maildir("bounces")), "--json")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (row["kind"], row["action"], row["subscribers"]) == (
        "hard",
        "bounced",
        [f"ghost@{DOMAIN}"],
    )
    with database.session() as session:
        status = {e: s for e, s in session.execute(select(Subscriber.email, Subscriber.status))}
        ghost = session.execute(
            select(Delivery.id, Delivery.issue_id)
            .join(Subscriber)
            .where(Subscriber.email == f"ghost@{DOMAIN}")
        ).one()
    database.dispose()
    assert status == {f"reader@{DOMAIN}": "active", f"ghost@{DOMAIN}": "bounced"}
    assert row["delivery_id"] == ghost[0] and row["issue"] is not None
    bounce_events = [e for e in events(config) if e[1] == "bounce"]
    assert bounce_events == [(f"ghost@{DOMAIN}", "bounce", "mail", ghost[1], ghost[0])]
    assert os.listdir(postfix.maildir("bounces") / "new") == []
    assert os.listdir(postfix.maildir("bounces") / "cur") == [f"{dsn.name}:2,S"]
    again = cli(path, "bounces", "--maildir", str(postfix.maildir("bounces")), "--json")
    assert again.exit_code == 0 and again.stdout == ""  # nothing unseen is left


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_digest_bounces_reads_the_configured_imap_mailbox(
    tmp_path: Path, database_url: str, dovecot: DovecotServer
) -> None:
    (tmp_path / "imap-secret").write_text(dovecot.password + "\n", "utf-8")
    path = write_config(tmp_path, database_url)
    path.write_text(
        path.read_text("utf-8")
        + f"""  imap:
    host: 127.0.0.1
    port: {dovecot.tls_port}
    security: tls
    username: {dovecot.user}
    password_file: imap-secret
    ca_file: {dovecot.cert}
    processed_folder: Processed
""",
        "utf-8",
    )
    config = load(path)
    seed(config)
    reset(dovecot, "postfix-dsn-verp.eml", "unknown-bounce.eml", "autoreply-vacation.eml")
    result = cli(path, "bounces", "--json")
    assert result.exit_code == 0, result.output
    actions = [json.loads(line)["action"] for line in result.stdout.splitlines()]
    assert actions == ["bounced", "unknown", "discarded"]
    assert standing(config)[VERP_EMAIL] == "bounced"
    flags, processed = flags_and_counts(dovecot)
    assert len(flags) == 1 and "\\Seen" not in flags[0]  # the unknown one, left for a human
    assert processed == 2
    summary = cli(path, "bounces")
    assert "1 messages" in summary.output and "stay unseen" in summary.output
