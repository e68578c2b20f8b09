"""`digest db backup` and `digest db restore`: a backup taken while a real `digest send`
delivers 20,000 messages and people sign up is the database at one instant; a restore
refuses what it should and brings back exactly what was backed up, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from digest.cli import main
from digest.config.load import load_config
from digest.store import lease
from digest.store.database import alembic_config, head_revision, open_database
from digest.store.subscribers import add, insert_many
from digest.store.tables import Delivery, Issue
from tests.delivery.test_dkim import keygen
from tests.issues.test_send import BLOG, add_subscribers, write_config
from tests.support.processes import running
from tests.support.smtp_server import CountingServer, SMTPServer

MESSAGES = 20_000
CONNECTIONS = 4


def cli(path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(path), *args], env=env)


def ok(path: Path, *args: str) -> str:
    result = cli(path, *args)
    assert result.exit_code == 0, result.output
    return result.output


def sqlite_rows(file: Path, query: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(file)
    try:
        return list(connection.execute(query).fetchall())
    finally:
        connection.close()


def one_post(path: Path) -> None:
    """Point the test config at a blog of one short post."""
    posts = path.parent / "posts"
    posts.mkdir()
    (posts / "2026-11-30-one.md").write_text(
        "---\ntitle: 一篇\ndate: 2026-11-30\n---\n短短的一段。\n", "utf-8"
    )
    path.write_text(path.read_text("utf-8").replace(str(BLOG), str(posts)), "utf-8")


class SignUps:
    """People signing up through the library, one after another, until stopped; `count()`
    is how many sign-ups had committed."""

    def __init__(self, database_url: str) -> None:
        self.database = open_database(database_url)
        self.committed = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            with self.database.session() as session:
                add(session, f"signup{n}@example.org", name=f"新读者{n}", method="web")
            n += 1
            with self.lock:
                self.committed = n
            self.stop.wait(0.02)

    def count(self) -> int:
        with self.lock:
            return self.committed

    def __enter__(self) -> SignUps:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.database.dispose()


@pytest.mark.slow
def test_a_backup_during_a_send_of_20000_messages_and_sign_ups_is_one_instant(
    tmp_path: Path,
) -> None:
    """The send and the sign-ups go on while the backup is taken; the restored copy is whole
    and holds no delivery as sent that the SMTP server had not received by the end of the
    backup, and every message it had received by the start as sent or in flight."""
    live = tmp_path / "live"
    live.mkdir()
    with CountingServer() as server:
        path = write_config(
            live, f"sqlite:///{live / 'digest.sqlite3'}", server.port, connections=CONNECTIONS
        )
        one_post(path)  # small messages: the 20,000 are about the ledger, not the rendering
        config = load_config(path)
        database = open_database(config.database_url)
        with database.transaction() as connection:
            people = ((f"reader{n}@example.com", f"读者{n}", "zh") for n in range(MESSAGES))
            assert insert_many(connection, people) == MESSAGES
        database.dispose()
        backup = tmp_path / "backup.sqlite3"
        with running(path, "send", "--yes") as sender, SignUps(config.database_url) as signups:
            server.wait(lambda s: s.accepted() >= 2000, timeout=600)
            signups_before, received_before = signups.count(), server.accepted()
            result = cli(path, "db", "backup", str(backup))
            received_after, signups_after = server.accepted(), signups.count()
            assert result.exit_code == 0, result.output
            assert received_after < MESSAGES, "the send had ended before the backup did"
            # what is left of the 20,000 would only take time: the send stops as on SIGTERM
            sender.signal(signal.SIGTERM)
            assert sender.finish(120) == 143, sender.output
            signups_at_the_end = signups.count()
        live_rows = sqlite_rows(
            live / "digest.sqlite3", "SELECT status, count(*) FROM deliveries GROUP BY status"
        )
        ledger = sum(count for _, count in live_rows)
        assert ledger >= MESSAGES and set(server.received.values()) == {1}  # nobody twice
        assert dict(live_rows).get("sent") == server.accepted() < MESSAGES
    assert "integrity check ok" in result.output and "web.secret_file" in result.output
    assert sqlite_rows(backup, "PRAGMA integrity_check") == [("ok",)]
    assert sqlite_rows(backup, "PRAGMA foreign_key_check") == []
    assert sqlite_rows(backup, "PRAGMA journal_mode") == [("delete",)]  # one file, no -wal

    restored = tmp_path / "restored"
    restored.mkdir()
    other = write_config(restored, f"sqlite:///{restored / 'digest.sqlite3'}", server.port)
    assert "Restored" in ok(other, "db", "restore", str(backup))
    database = open_database(load_config(other).database_url)
    with database.session() as session:
        statuses = Counter(session.scalars(select(Delivery.status)))
        orphans = session.execute(
            text(
                "SELECT count(*) FROM deliveries d "
                "LEFT JOIN subscribers s ON s.id = d.subscriber_id "
                "LEFT JOIN issues i ON i.id = d.issue_id WHERE s.id IS NULL OR i.id IS NULL"
            )
        ).scalar_one()
        signed_up = session.scalar(
            text("SELECT count(*) FROM subscribers WHERE email LIKE 'signup%'")
        )
        issues = session.scalars(select(Issue.status)).all()
    database.dispose()
    assert orphans == 0 and issues == ["sending"]
    assert sum(statuses.values()) == ledger  # the issue's ledger was whole
    assert set(statuses) <= {"sent", "in_flight", "claimed", "queued"}, statuses
    assert statuses["sent"] <= received_after
    assert statuses["sent"] + statuses["in_flight"] >= received_before
    assert 0 < signups_before <= (signed_up or 0) <= signups_after < signups_at_the_end


def test_the_backup_names_the_secrets_it_does_not_hold(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    key_file, _ = keygen(path, tmp_path / "keys", "--selector", "s1")
    path.write_text(
        path.read_text("utf-8")
        + f"dkim:\n  domain: blog.example.com\n  selector: s1\n  key_file: {key_file}\n",
        "utf-8",
    )
    config = load_config(path)
    add_subscribers(config, 3)
    result = cli(path, "db", "backup", str(tmp_path / "b.sqlite3"))
    assert result.exit_code == 0, result.output
    secret_file = config.path(config.web.secret_file)
    assert config.dkim is not None
    key_file = config.path(config.dkim.key_file)
    assert f"web.secret_file: {secret_file}" in result.output
    assert f"dkim.key_file: {key_file}" in result.output
    held = (tmp_path / "b.sqlite3").read_bytes()
    assert secret_file.read_text("utf-8").strip().encode() not in held
    key_body = b"".join(key_file.read_bytes().splitlines()[1:-1])
    assert key_body[:40] not in held


@pytest.mark.slow
def test_restore_brings_back_exactly_what_was_backed_up(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
        config = load_config(path)
        add_subscribers(config, 12)
        ok(path, "send", "--yes")
    before = {q: ok(path, *q.split()) for q in ("report --json", "subscribers list --json")}
    ok(path, "db", "backup", str(tmp_path / "backup"))
    ok(path, "subscribers", "add", "later@example.org")
    ok(path, "subscribers", "remove", "reader1@example.com")

    refused = cli(path, "db", "restore", str(tmp_path / "backup"))
    assert refused.exit_code == 1
    assert "holds 1 issues and 12 deliveries" in refused.output and "--force" in refused.output

    later = subscriber_id(path, "later@example.org")
    ok(path, "db", "restore", "--force", str(tmp_path / "backup"))
    after = {q: ok(path, *q.split()) for q in before}
    assert after == before
    assert "later@example.org" not in after["subscribers list --json"]
    # the id the restore took away is not given to anyone else
    ok(path, "subscribers", "add", "after@example.org")
    assert subscriber_id(path, "after@example.org") == later + 1


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    """Whether `condition` came true within `timeout` seconds (a hang guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def subscriber_id(path: Path, email: str) -> int:
    rows = json.loads(ok(path, "subscribers", "list", "--json"))
    return int(next(row["id"] for row in rows if row["email"] == email))


@pytest.fixture
def sleeper() -> Any:
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def test_restore_refuses_while_a_send_holds_the_lease(
    tmp_path: Path, database_url: str, sleeper: subprocess.Popen[bytes]
) -> None:
    """The lease of a live process on this host (another `digest send`) stops a restore, even
    with --force; the database is left as it was."""
    from datetime import timedelta

    path = write_config(tmp_path, database_url, 25)
    config = load_config(path)
    add_subscribers(config, 2)
    ok(path, "db", "backup", str(tmp_path / "backup"))
    ok(path, "subscribers", "add", "kept@example.org")
    database = open_database(config.database_url)
    holder = f"{lease.worker_name().rpartition(':')[0]}:{sleeper.pid}"
    assert lease.acquire(database, lease.SEND_LEASE, holder, timedelta(minutes=5)) is None
    refused = cli(path, "db", "restore", "--force", str(tmp_path / "backup"))
    assert refused.exit_code == 1
    assert f"a send is running ({holder} since" in refused.output
    assert "kept@example.org" in ok(path, "subscribers", "list", "--json")
    holding = lease.current_holder(database, lease.SEND_LEASE)
    assert holding is not None and holding.name == holder
    # once that process is gone the lease is free, and the restore goes through
    sleeper.kill()
    sleeper.wait()
    ok(path, "db", "restore", "--force", str(tmp_path / "backup"))
    assert "kept@example.org" not in ok(path, "subscribers", "list", "--json")
    assert lease.current_holder(database, lease.SEND_LEASE) is None
    database.dispose()


def test_a_backup_taken_mid_send_restores_without_the_senders_lease(tmp_path: Path) -> None:
    """The send lease held when the backup was taken came along in it; the restore drops it
    (nothing runs on the restored database), so a send can resume at once."""
    from datetime import timedelta

    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    config = load_config(path)
    add_subscribers(config, 2)
    database = open_database(config.database_url)
    holder = f"{lease.worker_name().rpartition(':')[0]}:1"  # pid 1 runs for ever
    assert lease.acquire(database, lease.SEND_LEASE, holder, timedelta(hours=1)) is None
    ok(path, "db", "backup", str(tmp_path / "backup"))
    lease.release(database, lease.SEND_LEASE, holder)
    ok(path, "db", "restore", str(tmp_path / "backup"))
    assert lease.current_holder(database, lease.SEND_LEASE) is None
    database.dispose()


def test_restore_refuses_what_is_not_a_backup_of_this_digest(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    add_subscribers(load_config(path), 1)
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n", "utf-8")
    result = cli(path, "db", "restore", str(junk))
    assert result.exit_code == 1 and "not a backup made by `digest db backup`" in result.output

    newer = tmp_path / "newer.sqlite3"
    ok(path, "db", "backup", str(newer))
    connection = sqlite3.connect(newer)
    connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.commit()
    connection.close()
    result = cli(path, "db", "restore", "--force", str(newer))
    assert (
        result.exit_code == 1 and "made by a newer digest (schema revision 9999)" in result.output
    )

    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = cli(path, "db", "restore", str(other))
    assert result.exit_code == 1 and "not a digest database" in result.output

    result = cli(path, "db", "restore", str(tmp_path / "digest.sqlite3"))
    assert result.exit_code == 1 and "is the database itself" in result.output

    result = cli(path, "db", "backup", str(newer))
    assert result.exit_code == 1 and "already exists" in result.output


def test_a_backup_of_an_older_schema_is_migrated_after_the_restore(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    config = load_config(path)
    add_subscribers(config, 3)
    backup = tmp_path / "old.sqlite3"
    ok(path, "db", "backup", str(backup))
    # make it an older schema: the migrations' own downgrades take it back to 0006
    from alembic import command

    command.downgrade(alembic_config(f"sqlite:///{backup}"), "0006")
    connection = sqlite3.connect(backup)
    assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0006",)]
    connection.close()
    output = ok(path, "db", "restore", "--force", str(backup))
    assert f"migrated from revision 0006 to {head_revision()}" in output
    assert "3 subscribers" in output
    assert ok(path, "send", "--dry-run", "--outbox", str(tmp_path / "out"))


def test_a_sqlite_backup_meets_a_postgresql_database_with_a_way_forward(
    tmp_path: Path, postgres: Any
) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    add_subscribers(load_config(path), 1)
    ok(path, "db", "backup", str(tmp_path / "b.sqlite3"))
    url = postgres.new_database()
    result = cli(
        path, "db", "restore", str(tmp_path / "b.sqlite3"), env={"DIGEST_DATABASE__URL": url}
    )
    assert result.exit_code == 1
    assert "is a SQLite backup and the configured database is PostgreSQL" in result.output
    assert "`digest db copy --to URL`" in result.output


def test_without_pg_dump_the_backup_says_so_in_one_sentence(
    tmp_path: Path, postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, postgres.new_database(), 25)
    add_subscribers(load_config(path), 1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = cli(path, "db", "backup", str(tmp_path / "b.dump"))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("digest: error: pg_dump is not installed (or not on PATH)")
    assert "postgresql-client" in line and "Traceback" not in result.output
    assert not (tmp_path / "b.dump").exists()


@pytest.mark.slow
def test_a_postgresql_backup_during_a_send_is_one_instant(tmp_path: Path, postgres: Any) -> None:
    """pg_dump reads one snapshot: the same bounds as SQLite's, on a smaller send."""
    count = 3000
    with CountingServer() as server:
        path = write_config(tmp_path, postgres.new_database(), server.port, connections=4)
        one_post(path)
        config = load_config(path)
        database = open_database(config.database_url)
        with database.transaction() as connection:
            insert_many(connection, ((f"r{n}@example.com", "", None) for n in range(count)))
        with running(path, "send", "--yes") as sender:
            server.wait(lambda s: s.accepted() >= 300, timeout=300)
            received_before = server.accepted()
            ok(path, "db", "backup", str(tmp_path / "pg.dump"))
            received_after = server.accepted()
            assert sender.finish(600) == 0, sender.output
        assert received_after < count, "the send had ended before the backup did"
        assert server.accepted() == count
    target = postgres.new_database()
    (tmp_path / "restored").mkdir()
    restored = write_config(tmp_path / "restored", target, 25)
    ok(restored, "db", "restore", str(tmp_path / "pg.dump"))
    other = open_database(target)
    with other.session() as session:
        statuses = Counter(session.scalars(select(Delivery.status)))
        subscribers = session.scalar(text("SELECT count(*) FROM subscribers"))
    other.dispose()
    database.dispose()
    assert subscribers == count and sum(statuses.values()) == count
    assert statuses["sent"] <= received_after
    assert statuses["sent"] + statuses["in_flight"] >= received_before


def test_the_backup_commands_are_listed(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "--help"])
    assert result.exit_code == 0
    for command in ("backup", "restore", "copy", "upgrade"):
        assert command in result.output


def test_a_reader_during_a_sqlite_restore_sees_the_old_database_or_the_new_one(
    tmp_path: Path,
) -> None:
    """`digest serve` keeps its connections open across a restore: every read it makes sees
    the database before or after, never a mixture (the restore is one write transaction)."""
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 25)
    config = load_config(path)
    database = open_database(config.database_url)
    with database.transaction() as connection:
        insert_many(connection, ((f"b{n}@example.com", "", None) for n in range(3000)))
    ok(path, "db", "backup", str(tmp_path / "backup"))  # 3,000 subscribers
    with database.transaction() as connection:
        connection.execute(text("DELETE FROM subscribers WHERE id > 1000"))  # now 1,000
    seen: set[tuple[int, ...]] = set()
    stop = threading.Event()

    def read() -> None:  # as serve reads: its own connection, a read transaction each time
        reader = sqlite3.connect(tmp_path / "digest.sqlite3", timeout=30, isolation_level=None)
        while not stop.is_set():
            reader.execute("BEGIN")
            seen.add(tuple(reader.execute("SELECT count(*), max(id) FROM subscribers").fetchone()))
            reader.execute("COMMIT")
            stop.wait(0.001)
        reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert wait_until(lambda: len(seen) >= 1)
        ok(path, "db", "restore", "--force", str(tmp_path / "backup"))
        assert wait_until(lambda: (3000, 3000) in seen)
    finally:
        stop.set()
        thread.join(60)
    database.dispose()
    assert seen == {(1000, 1000), (3000, 3000)}
