"""The outcome journal (digest.delivery.journal): what a sender learnt while the database was
away is on disk before it goes on, replayed once its writer is gone into its own database only,
and replaying twice changes nothing. (The journal met by real senders and a real database
restart: tests/e2e/test_outage.py.)"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.delivery import journal
from digest.delivery.journal import Journal, replay
from digest.models import Recipient
from digest.store import deliveries
from digest.store.database import Database, identity, open_database
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus

# -- the journal ----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    yield database
    database.dispose()


def _issue_with(database: Database, count: int) -> tuple[int, list[Recipient]]:
    """An issue of `count` deliveries, claimed and in flight for worker `old:1`."""
    from digest.store.tables import Delivery
    from tests.web.test_public_web import add_issue, add_person

    issue = add_issue(database, "2026-W01", datetime(2026, 1, 1, tzinfo=UTC))
    people = [add_person(database, f"r{n}@example.com") for n in range(count)]
    with database.session() as session:
        session.add_all(Delivery(issue_id=issue, subscriber_id=p) for p in people)
    with database.transaction() as connection:
        deliveries.register(connection, "old:1", datetime.now(UTC))
        taken = deliveries.claim(connection, issue, "old:1", count)
        deliveries.start(connection, taken, "old:1")
    return issue, taken


def _statuses(database: Database) -> dict[int, str]:
    from sqlalchemy import select

    from digest.store.tables import Delivery

    with database.session() as session:
        return dict(session.execute(select(Delivery.id, Delivery.status)).all())


def test_a_journal_replaces_an_unknown_and_replaying_twice_changes_nothing(
    tmp_path: Path, sqlite_database: Database
) -> None:
    issue_id, taken = _issue_with(sqlite_database, 3)
    # a successor found the dead worker's rows in flight and recorded them unknown
    with sqlite_database.session() as session:
        deliveries.recover(session, issue_id, ["old:1"])
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    results = [
        Result(taken[0], DeliveryStatus.SENT, 1, "<a@x>"),
        Result(taken[1], DeliveryStatus.BOUNCED, 1, error="550 5.1.1 no such user"),
    ]
    writer.keep(issue_id, results)
    assert writer.path is not None and writer.path.exists()
    # its writer holds the lock: a replay leaves it alone
    assert replay(tmp_path, sqlite_database).recorded == {}
    writer._file.close()  # type: ignore[union-attr]  # the writer dies (its lock goes)
    path = writer.path
    copy = path.read_bytes()
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 2} and not path.exists()
    first = _statuses(sqlite_database)
    assert first == {
        taken[0].delivery_id: "sent",
        taken[1].delivery_id: "bounced",
        taken[2].delivery_id: "unknown",  # nothing known of it: it stays unknown
    }
    path.write_bytes(copy + b'{"issue": 1, "delivery": 3, "torn')  # and a torn last line
    assert replay(tmp_path, sqlite_database).recorded == {"old:1": 2}
    assert _statuses(sqlite_database) == first


def test_a_journal_of_another_database_is_left_alone_with_a_warning(
    tmp_path: Path, sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    issue_id, taken = _issue_with(sqlite_database, 1)
    writer = Journal(tmp_path, "another-database", "old:1")
    writer.keep(issue_id, [Result(taken[0], DeliveryStatus.SENT, 1)])
    writer._file.close()  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, "digest"):
        done = replay(tmp_path, sqlite_database)
    assert done.recorded == {} and done.foreign == [writer.path]
    assert writer.path is not None and writer.path.exists()
    assert "belongs to another database" in caplog.text
    assert _statuses(sqlite_database) == {taken[0].delivery_id: "in_flight"}


def test_each_journal_line_is_on_disk_before_keep_returns(tmp_path: Path) -> None:
    """What `keep` returned from is in the file as whole lines (flushed and fsynced; a crash
    after it loses none), under the header naming the database and the writer."""
    recipient = Recipient(7, 3, "a@example.com", "", None, None, 2)
    writer = Journal(tmp_path, "db-id", f"host:{os.getpid()}")
    writer.keep(1, [Result(recipient, DeliveryStatus.DEFERRED, 1, error="451 later")])
    assert writer.path is not None
    header, *lines = writer.path.read_text("utf-8").splitlines()
    assert json.loads(header) == {
        "journal": 1,
        "database": "db-id",
        "worker": f"host:{os.getpid()}",
    }
    assert [json.loads(line)["status"] for line in lines] == ["deferred"]
    writer.keep(1, [Result(recipient, DeliveryStatus.DEFERRED, 1, error="451 later")])
    assert len(writer.path.read_text("utf-8").splitlines()) == 2  # kept once
    writer.committed(1, [Result(recipient, DeliveryStatus.DEFERRED, 1)])
    assert not list(tmp_path.glob("*.journal"))  # everything committed: it goes
    assert journal.SUFFIX == ".journal"
