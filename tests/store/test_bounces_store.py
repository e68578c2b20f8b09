"""What comes back, recorded: each fixture shape changes the right subscriber's standing, with
the issue and delivery attached when a token named them; a second run changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config.sending import inbound_settings
from digest.inbound.mailbox import Maildir
from digest.inbound.process import process
from digest.store.database import open_database
from digest.store.tables import ReturnedMail, Subscriber
from tests.inbound.test_classify import EXPECTED
from tests.support.bounce_fixtures import CONTEXT, DELIVERY, ISSUE, fixture_bytes
from tests.support.bounce_store import (
    VERP_EMAIL,
    cli,
    events,
    load,
    maildir,
    returned,
    seed,
    standing,
    write_config,
)

ADDRESSES = tuple(a for _kind, addresses, _d, _s in EXPECTED.values() for a in addresses)
# kind -> (status afterwards, event kind, action reported)
OUTCOME = {
    "hard": ("bounced", "bounce", "bounced"),
    "complaint": ("complained", "complaint", "complained"),
    "unsubscribe": ("unsubscribed", "unsubscribe", "unsubscribed"),
    "soft": ("active", "soft-bounce", "soft"),
    "notice": ("active", None, "discarded"),
    "auto_reply": ("active", None, "discarded"),
    "not_ours": ("active", None, "discarded"),
    "unknown": ("active", None, "unknown"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_shape_records_its_outcome(tmp_path: Path, name: str) -> None:
    kind, addresses, delivery, subscriber = EXPECTED[name]
    config = load(write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    seed(config, ADDRESSES)
    box = maildir(tmp_path / "mail", name)
    database = open_database(config.database_url)
    run = process(inbound_settings(config), database, Maildir(box), context=CONTEXT)
    database.dispose()
    status, event, action = OUTCOME[kind]
    (row,) = run.rows
    assert row.applied.action == action, row.as_dict()
    target = VERP_EMAIL if subscriber is not None else (addresses[0] if addresses else None)
    after = standing(config)
    if target is not None:
        assert after[target] == status
    changed = {email for email, s in after.items() if s != "active"}
    assert changed == ({target} if status != "active" else set())
    recorded = [e for e in events(config) if e[1] != "subscribe"]
    if event is None:
        assert recorded == []
    else:
        assert [(e[0], e[1]) for e in recorded] == [(target, event)]
        _email, _kind, method, issue_id, delivery_id = recorded[0]
        assert method == ("mailto" if kind == "unsubscribe" else "mail")
        # a VERP token names issue and delivery; a web token the issue; an address alone neither
        assert delivery_id == (DELIVERY if delivery is not None else None)
        assert issue_id == (ISSUE if subscriber is not None else None)
    unseen = os.listdir(box / "new")
    handled = [n for n in os.listdir(box / "cur") if n.endswith(":2,S")]
    assert (unseen, len(handled)) == (([], 1) if kind != "unknown" else ([unseen[0]], 0))
    assert returned(config) == (0 if kind == "unknown" else 1)


def test_a_second_run_changes_nothing(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path, database_url)
    config = load(path)
    seed(config, ADDRESSES)
    names = ("postfix-dsn-verp.eml", "postfix-dsn-no-verp.eml", "postfix-mailbox-full.eml")
    box = maildir(tmp_path / "mail", *names, "unknown-bounce.eml")
    first = cli(path, "bounces", "--maildir", str(box), "--json")
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert sorted(r["action"] for r in rows) == ["bounced", "bounced", "soft", "unknown"]
    before = (standing(config), events(config), returned(config))
    # the same messages again, as a copy would bring them (or a crash before marking them)
    for name in os.listdir(box / "cur"):
        os.rename(box / "cur" / name, box / "new" / name.partition(":")[0])
    second = cli(path, "bounces", "--maildir", str(box), "--json")
    assert second.exit_code == 0, second.output
    again = [json.loads(line) for line in second.stdout.splitlines()]
    assert sorted(r["action"] for r in again) == ["duplicate", "duplicate", "duplicate", "unknown"]
    assert (standing(config), events(config), returned(config)) == before
    assert len(os.listdir(box / "new")) == 1  # the unknown one stays unseen, both times


def test_a_dsn_without_verp_finds_the_subscriber_by_address(
    tmp_path: Path, database_url: str
) -> None:
    path = write_config(tmp_path, database_url)
    config = load(path)
    seed(config, ("Alice.Smith@example.org",))  # stored with capitals: compared case-insensitively
    box = maildir(tmp_path / "mail", "postfix-dsn-no-verp.eml")
    result = cli(path, "bounces", "--maildir", str(box), "--json")
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["action"] == "bounced" and row["issue"] is None and row["delivery_id"] is None
    assert standing(config)["Alice.Smith@example.org"] == "bounced"
    assert [e[1:] for e in events(config)] == [("bounce", "mail", None, None)]
    erased = cli(path, "subscribers", "remove", "--erase", "Alice.Smith@example.org")
    assert erased.exit_code == 0, erased.output
    database = open_database(config.database_url)
    with database.session() as session:
        kept = session.execute(select(ReturnedMail.subscriber_id, ReturnedMail.address)).all()
        # the record stays, her address not: it points at her anonymous tombstone (issue 12)
        assert [row.address for row in kept] == [None]
        tomb = session.get(Subscriber, kept[0].subscriber_id)
        assert tomb is not None and tomb.status == "erased" and "alice" not in tomb.email.lower()
    database.dispose()


def test_dry_run_records_and_marks_nothing(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path, database_url)
    config = load(path)
    seed(config, ADDRESSES)
    box = maildir(tmp_path / "mail", "postfix-dsn-verp.eml", "arf-yahoo.eml")
    result = cli(path, "bounces", "--maildir", str(box), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run, nothing recorded: 2 messages" in result.output
    assert "bounced 1" in result.output  # what a real run would do, both messages in one view
    assert set(standing(config).values()) == {"active"} and returned(config) == 0
    assert len(os.listdir(box / "new")) == 2 and os.listdir(box / "cur") == []


def test_an_mbox_is_left_untouched(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    config = load(path)
    seed(config, ADDRESSES)

    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(
        b"".join(
            b"From MAILER-DAEMON Tue Dec  1 10:00:00 2026\n" + fixture_bytes(n) + b"\n"
            for n in ("postfix-dsn-verp.eml", "mailto-unsubscribe.eml")
        )
    )
    before = mbox.read_bytes()
    result = cli(path, "bounces", "--mbox", str(mbox), "--json")
    assert result.exit_code == 0, result.output
    actions = [json.loads(line)["action"] for line in result.stdout.splitlines()]
    # subscriber 42 bounced, then asked to leave: their own request is what stays on record
    assert actions == ["bounced", "unsubscribed"]
    assert standing(config)["reader42@example.net"] == "unsubscribed"
    assert mbox.read_bytes() == before
    again = cli(path, "bounces", "--mbox", str(mbox), "--json")
    assert [json.loads(line)["action"] for line in again.stdout.splitlines()] == [
        "duplicate",
        "duplicate",
    ]


def test_bad_usage_is_one_sentence(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    nothing = cli(path, "bounces")
    assert nothing.exit_code == 2 and "nothing to read" in nothing.output
    assert "Traceback" not in nothing.output
    missing = cli(path, "bounces", "--maildir", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "is not a Maildir" in missing.output
    both = cli(path, "bounces", "--maildir", "a", "--mbox", "b")
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.slow
def test_two_runs_at_once_apply_each_message_once(tmp_path: Path, database_url: str) -> None:
    import subprocess
    import sys

    path = write_config(tmp_path, database_url)
    config = load(path)
    seed(config, ADDRESSES)
    names = (
        "postfix-dsn-no-verp.eml",
        "qmail-remote-550.eml",
        "exchange-prose-no-verp.eml",
        "netease-prose-zh.eml",
        "arf-microsoft-jmrp.eml",
        "mailto-unsubscribe-no-token.eml",
        "autoreply-zh-precedence.eml",
    )
    box = maildir(tmp_path / "mail", *names)
    command = [sys.executable, "-m", "digest.cli", "--config", str(path), "bounces"]
    runs = [
        subprocess.Popen([*command, "--maildir", str(box)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    changes = [e for e in events(config) if e[1] != "subscribe"]
    assert sorted((e[0], e[1]) for e in changes) == sorted(
        [
            ("alice.smith@example.org", "bounce"),
            ("hong.xu@remote.example.org", "bounce"),
            ("maria.garcia@corp.example", "bounce"),
            ("zhou.qiang@163.example", "bounce"),
            ("kim.lee@outlook.example", "complaint"),
            ("carol@example.net", "unsubscribe"),
        ]
    )  # once each, whichever run got there first
    assert returned(config) == len(names)
    assert os.listdir(box / "new") == [] and len(os.listdir(box / "cur")) == len(names)
