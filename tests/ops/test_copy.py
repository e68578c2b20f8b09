"""`digest db copy --to URL`: a SQLite instance with history (issues sent for real, deferred,
failed and bounced deliveries, returned mail, unsubscribes, an erasure, preferences) moved to
PostgreSQL and back reports exactly what it did, table by table, id by id."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from digest.cli import main
from digest.config.load import load_config
from digest.store import lease
from digest.store.alerts import claim
from digest.store.copy import tables
from digest.store.database import open_database
from digest.store.subscribers import add, find, set_paused
from digest.store.tables import Click, Delivery, Issue, WebhookCursor, WebhookMessage, Welcome
from tests.issues.test_send import add_subscribers, write_config
from tests.support.bounce_fixtures import KEYS, RETURN_PATH
from tests.support.bounce_store import maildir, seed
from tests.support.postgres import PostgresServer
from tests.support.smtp_server import ScriptedServer

COMMANDS = (
    ("report", "--json"),
    ("subscribers", "list", "--json"),
    ("subscribers", "list", "--status", "bounced", "--json"),
    ("subscribers", "list", "--status", "complained", "--json"),
    ("subscribers", "list", "--status", "unsubscribed", "--json"),
    ("status", "--json"),
)
GAP = 500  # an id given out and gone: the copy's sequences must stay past it


def cli(path: Path, *args: str, url: str | None = None) -> Result:
    env = {"DIGEST_DATABASE__URL": url} if url else None
    return CliRunner().invoke(main, ["--config", str(path), *args], env=env)


def ok(path: Path, *args: str, url: str | None = None) -> str:
    result = cli(path, *args, url=url)
    assert result.exit_code == 0, result.output
    return result.stdout


def outputs(path: Path, url: str | None = None) -> dict[str, str]:
    return {" ".join(command): ok(path, *command, url=url) for command in COMMANDS}


def dump(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in id order, with which JSON values are SQL NULL."""
    database = open_database(url)
    found: dict[str, list[dict[str, Any]]] = {}
    with database.engine.connect() as connection:
        for table in tables():
            nulls = [c.is_(None).label(f"null:{c.name}") for c in table.columns]
            query = select(table, *nulls).order_by(*table.primary_key.columns)
            found[table.name] = [dict(row._mapping) for row in connection.execute(query)]
    database.dispose()
    return found


@pytest.fixture
def history(tmp_path: Path) -> Iterator[Path]:
    """A SQLite instance that has lived: returned mail for an old issue, then a real send with
    a hard failure, a deferral and a bounce, then unsubscribes, an erasure, a pause and
    sign-ups with categories."""
    database_url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"

    def script(count: int, rcpt: str) -> str | None:
        return {
            "reader3@example.com": "rcpt-5xx-user",
            "reader5@example.com": "rcpt-4xx",
            "reader7@example.com": "mail-5xx",
        }.get(rcpt)

    with ScriptedServer(script) as server:
        path = write_config(tmp_path, database_url, server.port)
        path.write_text(
            path.read_text("utf-8") + f"bounces:\n  return_path: {RETURN_PATH}\n", "utf-8"
        )
        (tmp_path / "web-secret").write_text(KEYS.secret + "\n", "utf-8")
        config = load_config(path)
        seed(config, ("wang.lei@mx.example.net",))  # issue 7, delivery 1234 to subscriber 42
        fixtures = ("postfix-dsn-verp.eml", "gmail-delay.eml", "arf-yahoo.eml")
        ok(path, "bounces", "--maildir", str(maildir(tmp_path / "mail", *fixtures)))
        add_subscribers(config, 12)
        ok(path, "send", "--yes")
    ok(path, "subscribers", "remove", "reader1@example.com")
    ok(path, "subscribers", "remove", "--erase", "reader2@example.com")
    ok(path, "subscribers", "add", "cats@example.org", "--categories", "Python;数学")
    ok(path, "admin", "token", "create", "blog-form", "--scope", "write")  # the API's tokens
    database = open_database(config.database_url)
    # an alert the owner was sent (digest.ops.alerts claims its cause and day first)
    sent_at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert claim(database, "send-failed:weekly", "2026-11-30", "the relay refused", sent_at)
    with database.session() as session:
        person = find(session, "reader4@example.com")
        assert person is not None
        set_paused(session, person, True, "web")
        add(session, "late@example.org", name="迟到", locale="en", method="web")
        session.execute(
            text(
                f"INSERT INTO subscribers (id, email, email_key, status, name, paused, "
                f"created_at, updated_at) VALUES ({GAP}, 'gone@x.org', 'gone@x.org', "
                "'pending', '', 0, '2026-01-01', '2026-01-01')"
            )
        )
        session.execute(text(f"DELETE FROM subscribers WHERE id = {GAP}"))
        # what the scheduler and the shared rate limit keep (a pickle: any bytes, NUL too)
        session.execute(
            text("INSERT INTO apscheduler_jobs VALUES ('weekly', 1796000000.25, :state)"),
            {"state": bytes(range(256))},
        )
        session.execute(text("INSERT INTO send_rates VALUES ('smtp', 1796000000.5, 0.125)"))
        # what readers did and what is owed to them and to other services (issue 25)
        issue_id = session.scalar(select(Issue.id).order_by(Issue.id.desc()))
        delivery_id = session.scalar(select(Delivery.id).where(Delivery.issue_id == issue_id))
        session.add(Click(issue_id=issue_id, link=2, human=True, delivery_id=delivery_id))
        session.add(Click(issue_id=issue_id, link=1, human=False))
        session.add(Welcome(subscriber_id=person.id, status="sent", attempts=1, message_id="<w@x>"))
        endpoint = "9f" * 32
        session.add(WebhookCursor(endpoint=endpoint, position=3))
        session.add(
            WebhookMessage(
                endpoint=endpoint,
                url="https://hooks.example.org/digest",
                msg_id="msg_2Lh9",
                event_type="subscriber.confirmed",
                payload='{"type":"subscriber.confirmed","data":{"email":"猫@example.org"}}',
                attempts=2,
                last_error="HTTP 503",
            )
        )
    database.dispose()
    yield path


def test_a_sqlite_instance_moved_to_postgresql_and_back_reports_exactly_what_it_did(
    history: Path, postgres: PostgresServer, tmp_path: Path
) -> None:
    source_url = load_config(history).database_url
    before = outputs(history)
    assert '"failed": 1' in before["report --json"] and '"deferred": 1' in before["report --json"]
    assert '"complaint"' in before["report --json"]
    rows = dump(source_url)
    assert rows["workers"] == [] and rows["leases"] == []  # `status` is then the same later
    empty = {name for name, found in rows.items() if not found}
    assert empty == {"workers", "leases"}, empty  # every other table has rows

    target = postgres.new_database()
    said = ok(history, "db", "copy", "--to", target)
    assert "the counts match" in said and "postgres@127.0.0.1" in said
    assert outputs(history, url=target) == before
    assert dump(target) == rows

    # ids given out before the move are never handed out again
    added = ok(history, "subscribers", "add", "new@example.org", url=target)
    assert "Added" in added
    new_id = (
        psycopg.connect(target.replace("+psycopg", ""))
        .execute("SELECT id FROM subscribers WHERE email = 'new@example.org'")
        .fetchone()
    )
    assert new_id == (GAP + 1,)

    back = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    ok(history, "db", "copy", "--to", back, url=target)
    moved = dump(back)
    assert {name: rows_ for name, rows_ in moved.items() if name != "subscribers"} == {
        name: rows_ for name, rows_ in dump(target).items() if name != "subscribers"
    }
    assert moved["subscribers"] == dump(target)["subscribers"]
    ok(history, "subscribers", "add", "newer@example.org", url=back)
    database = open_database(back)
    with database.session() as session:
        newest = session.scalar(text("SELECT max(id) FROM subscribers"))
    database.dispose()
    assert newest == GAP + 2


def test_a_copy_that_loses_a_row_fails_and_leaves_the_target_empty(
    history: Path, postgres: PostgresServer
) -> None:
    target = postgres.new_database()
    ok(history, "db", "upgrade", url=target)  # the schema, so that a trigger can go on it
    with psycopg.connect(target.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(
            "CREATE FUNCTION lose_some() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.id % 3 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$"
        )
        connection.execute(
            "CREATE TRIGGER lose BEFORE INSERT ON event_log "
            "FOR EACH ROW EXECUTE FUNCTION lose_some()"
        )
    result = cli(history, "db", "copy", "--to", target)
    assert result.exit_code == 1
    assert "the copy's counts differ: event_log has" in result.output
    assert "the target was left empty" in result.output
    with psycopg.connect(target.replace("+psycopg", "")) as connection:
        for table in ("subscribers", "issues", "deliveries", "event_log"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_copy_refuses_a_target_with_data_itself_and_a_running_send(
    history: Path, postgres: PostgresServer
) -> None:
    target = postgres.new_database()
    ok(history, "db", "copy", "--to", target)
    again = cli(history, "db", "copy", "--to", target)
    assert again.exit_code == 1 and "the target database is not empty" in again.output

    source_url = load_config(history).database_url
    itself = cli(history, "db", "copy", "--to", source_url)
    assert itself.exit_code == 1 and "is the configured database itself" in itself.output

    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        database = open_database(source_url)
        holder = f"{lease.worker_name().rpartition(':')[0]}:{sleeper.pid}"
        assert lease.acquire(database, lease.SEND_LEASE, holder, timedelta(minutes=5)) is None
        database.dispose()
        busy = cli(history, "db", "copy", "--to", postgres.new_database())
        assert busy.exit_code == 1 and f"a send is running ({holder}" in busy.output
    finally:
        sleeper.kill()
        sleeper.wait()
