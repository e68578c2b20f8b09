"""VERP on the way out: each delivery's envelope sender names it, the List-Unsubscribe mailto
is the bounce mailbox, and an in-session bare 550 suppresses only when it names a dead user."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from digest.config.credentials import keyring
from digest.config.load import load_config
from digest.inbound.verp import find_verp, read_verp_token
from digest.store.database import open_database
from digest.store.tables import Delivery, Event, Subscriber
from tests.issues.test_send import add_subscribers, run_with_script, send, statuses, write_config
from tests.support.smtp_server import CountingServer, SMTPServer


def with_bounces(path: Path, **settings: Any) -> Path:
    """Append a `bounces:` section to a test config."""
    lines = "".join(f"  {key}: {value}\n" for key, value in settings.items())
    path.write_text(path.read_text("utf-8") + f"bounces:\n{lines}", "utf-8")
    return path


def test_each_message_has_its_own_verp_envelope_sender(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = with_bounces(
            write_config(tmp_path, database_url, server.port), return_path="bounces@example.net"
        )
        config = load_config(path)
        add_subscribers(config, 6)
        result = send(path, "--yes")
        assert result.exit_code == 0, result.output
        test_copy = send(path, "--to", "me@example.org")
        assert test_copy.exit_code == 0, test_copy.output
    keys = keyring(config)
    database = open_database(config.database_url)
    with database.session() as session:
        ledger = {
            email: (delivery_id, subscriber_id, issue_id)
            for email, delivery_id, subscriber_id, issue_id in session.execute(
                select(
                    Subscriber.email, Delivery.id, Delivery.subscriber_id, Delivery.issue_id
                ).join(Delivery)
            )
        }
    database.dispose()
    senders = set()
    for received in server.mailbox.messages:
        rcpt = received.rcpt_tos[0]
        if rcpt == "me@example.org":  # a test copy names no delivery: the From address
            assert received.mail_from == "digest@blog.example.com"
            continue
        local, _, domain = received.mail_from.partition("@")
        assert domain == "example.net" and local.startswith("bounces+")
        assert len(local) <= 64
        token = read_verp_token(keys, local.removeprefix("bounces+").upper())  # case-insensitive
        delivery_id, subscriber_id, issue_id = ledger[rcpt]
        assert (token.delivery_id, token.subscriber_id, token.issue_id) == (
            delivery_id,
            subscriber_id,
            issue_id,
        )
        senders.add(received.mail_from)
        mailto = re.findall(r"<(mailto:[^>]+)>", received.parsed()["List-Unsubscribe"])[0]
        found = find_verp([mailto], "bounces@example.net", keys, purpose="unsubscribe")
        assert found is not None and found.subscriber_id == subscriber_id
        assert found.issue_id == issue_id and "subject=unsubscribe%20" in mailto
    assert len(senders) == 6  # one address per delivery


def test_an_explicit_unsubscribe_mailto_wins(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        text = path.read_text("utf-8").replace(
            "sender:\n", "sender:\n  unsubscribe_mailto: leave@blog.example.com\n"
        )
        path.write_text(text, "utf-8")
        config = load_config(with_bounces(path, return_path="bounces@example.net"))
        add_subscribers(config, 1)
        assert send(path, "--yes").exit_code == 0
    (received,) = server.mailbox.messages
    assert "<mailto:leave@blog.example.com?subject=unsubscribe" in received.parsed()[
        "List-Unsubscribe"
    ].replace("\n", "")
    assert received.mail_from.startswith("bounces+")


def test_a_bare_550_bounces_only_an_unknown_user(tmp_path: Path, database_url: str) -> None:
    faults = {
        1: "rcpt-550-policy",
        2: "rcpt-550-unknown",
        3: "rcpt-5xx-user",
        4: "mail-5xx",
    }

    def script(count: int, rcpt: str) -> str | None:
        return faults.get(int(rcpt.removeprefix("reader").split("@")[0]))

    config, _server, _summary = run_with_script(tmp_path, database_url, script, count=8, retries=0)
    result = statuses(config)
    assert result["reader1@example.com"] == "failed"  # a policy refusal says nothing of the user
    assert result["reader2@example.com"] == "bounced"  # "User unknown": the text says so
    assert result["reader3@example.com"] == "bounced"  # 5.1.1
    assert result["reader4@example.com"] == "failed"  # 5.7.1 sender rejected
    database = open_database(config.database_url)
    with database.session() as session:
        bounce_events = session.execute(
            select(Subscriber.email, Event.method, Event.issue_id, Event.delivery_id, Delivery.id)
            .join(Subscriber, Subscriber.id == Event.subscriber_id)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Event.kind == "bounce")
            .order_by(Subscriber.email)
        ).all()
        standing = {e: s for e, s in session.execute(select(Subscriber.email, Subscriber.status))}
    database.dispose()
    assert standing["reader1@example.com"] == "active"
    assert standing["reader2@example.com"] == "bounced"
    # each in-session bounce is an event naming its issue and delivery
    assert [(e, m) for e, m, *_ in bounce_events] == [
        ("reader2@example.com", "smtp"),
        ("reader3@example.com", "smtp"),
    ]
    assert all(issue is not None and delivery == own for *_, issue, delivery, own in bounce_events)


def test_failures_after_deferral_count_towards_the_soft_limit(
    tmp_path: Path, database_url: str
) -> None:
    from tests.issues.test_outcomes import _time_passes, blog, cli, config_for, statuses

    with CountingServer() as server:
        server.greylist = "451 4.2.2 mailbox full"
        path = config_for(
            tmp_path, database_url, server.port, blog(tmp_path, "one"), retries=0, retry_hours=1
        )
        config = load_config(with_bounces(path, soft_limit=1))
        add_subscribers(config, 2)
        assert cli(path, "send", "--yes").exit_code == 1
        _time_passes(config, timedelta(hours=2))
        cli(path, "send", "--yes")
        assert statuses(config) == {"failed": 2}
    database = open_database(config.database_url)
    with database.session() as session:
        standing = set(session.scalars(select(Subscriber.status)))
        methods = set(session.scalars(select(Event.method).where(Event.kind == "bounce")))
    database.dispose()
    assert standing == {"bounced"} and methods == {"soft-limit"}
