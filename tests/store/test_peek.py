"""digest.store.peek reads the posts already sent from a SQLite database without the database
layer: the same set as digest.store.ledger.sent_post_ids in every state an issue can be in,
nothing created where there is no database, and None (open it the usual way) whenever it
cannot be sure."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.models import Edition, Post
from digest.store import ledger, peek
from digest.store.database import Database, open_database
from digest.store.subscribers import insert_many
from digest.store.tables import Delivery, DeliveryStatus, IssueStatus

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def post(name: str) -> Post:
    return Post(id=name, title=name, url=f"https://b.example.com/{name}/", date=NOW, body="x")


def issue(database: Database, key: str, names: list[str], frequency: str = "weekly") -> int:
    edition = Edition(key, NOW, tuple(post(name) for name in names))
    with database.session() as session:
        created = ledger.create_issue(
            session, edition, frequency=frequency, default_frequency=frequency
        )
        return created.id


def deliver_one(database: Database, issue_id: int, status: DeliveryStatus) -> None:
    with database.session() as session:
        row = session.query(Delivery).filter_by(issue_id=issue_id).first()
        assert row is not None
        row.status = status


@pytest.fixture
def populated(tmp_path: Path) -> tuple[str, Database]:
    url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    database = open_database(url)
    with database.transaction() as connection:
        insert_many(connection, [(f"r{n}@example.com", "", "zh") for n in range(3)])
    finished = issue(database, "2026-W40", ["a", "b"])
    with database.session() as session:
        ledger.set_status(session, finished, IssueStatus.FINISHED, None)
    delivered = issue(database, "2026-W41", ["c"])
    deliver_one(database, delivered, DeliveryStatus.SENT)
    issue(database, "2026-W42", ["d"])  # sending, nothing delivered yet: its posts stay new
    failed = issue(database, "2026-W43", ["e"])
    deliver_one(database, failed, DeliveryStatus.FAILED)
    monthly = issue(database, "2026-10", ["f"], frequency="monthly")
    deliver_one(database, monthly, DeliveryStatus.SENT)
    return url, database


def test_the_statuses_are_the_tables_own() -> None:
    assert IssueStatus.FINISHED.value == peek.FINISHED
    assert DeliveryStatus.SENT.value == peek.SENT


@pytest.mark.parametrize("frequency", ["weekly", "monthly", "daily"])
def test_the_same_posts_as_the_ledger(populated: tuple[str, Database], frequency: str) -> None:
    url, database = populated
    with database.session() as session:
        expected = ledger.sent_post_ids(session, frequency)
    assert peek.sent_post_ids(url, frequency) == expected
    assert expected == {"weekly": {"a", "b", "c"}, "monthly": {"f"}, "daily": set()}[frequency]
    database.dispose()


def test_no_database_yet_means_nothing_sent_and_nothing_created(tmp_path: Path) -> None:
    file = tmp_path / "var" / "digest.sqlite3"
    assert peek.sent_post_ids(f"sqlite:///{file}", "weekly") == set()
    assert not file.exists() and not file.parent.exists()


def test_another_schema_revision_is_left_to_the_database_layer(
    populated: tuple[str, Database],
) -> None:
    url, database = populated
    with database.transaction() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    database.dispose()
    assert peek.sent_post_ids(url, "weekly") is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://digest@127.0.0.1/digest",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file.db?timeout=3",
        "mysql://x/y",
    ],
)
def test_other_databases_are_left_to_the_database_layer(url: str) -> None:
    assert peek.sent_post_ids(url, "weekly") is None


def test_a_file_that_is_not_a_database_is_left_to_the_database_layer(tmp_path: Path) -> None:
    file = tmp_path / "digest.sqlite3"
    file.write_bytes(b"not a database" * 100)
    assert peek.sent_post_ids(f"sqlite:///{file}", "weekly") is None
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    assert peek.sent_post_ids(f"sqlite:///{empty}", "weekly") is None


def test_reading_writes_nothing(populated: tuple[str, Database]) -> None:
    url, database = populated
    database.dispose()
    file = peek.sqlite_file(url)
    assert file is not None
    before = file.read_bytes()
    assert peek.sent_post_ids(url, "weekly")
    assert file.read_bytes() == before


def test_the_peek_loads_no_database_layer(populated: tuple[str, Database]) -> None:
    url, database = populated
    database.dispose()
    code = (
        "import sys; from digest.store.peek import sent_post_ids\n"
        f"print(sorted(sent_post_ids({url!r}, 'weekly')))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == ["['a', 'b', 'c']", "[]"]
