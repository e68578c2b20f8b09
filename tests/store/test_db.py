"""The database layer on SQLite and PostgreSQL: migrations, constraints, time zones."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from digest.errors import DigestError
from digest.store.database import (
    Database,
    connect,
    current_revision,
    head_revision,
    identity,
    open_database,
)
from digest.store.tables import Delivery, DeliveryStatus, Issue, Subscriber
from tests.support.postgres import PostgresServer


def test_migrations_create_every_table(database: Database) -> None:
    assert current_revision(database) == head_revision()
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "subscribers",
        "issues",
        "issue_posts",
        "variants",
        "deliveries",
        "event_log",
        "leases",
        "alembic_version",
    } <= tables


def test_the_quick_revision_check_agrees_with_alembic(database: Database) -> None:
    """open_database reads the revisions without Alembic (a second of imports); Alembic's
    own answers must be the same."""
    from alembic.runtime.migration import MigrationContext

    from digest.store.database import alembic_head
    from digest.store.revisions import head_from_files

    assert head_from_files() == alembic_head() == head_revision()
    ours = current_revision(database)
    with database.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == ours


def test_a_database_never_migrated_has_no_revision(tmp_path: object) -> None:
    raw = connect(f"sqlite:///{tmp_path}/empty.sqlite3")
    assert current_revision(raw) is None
    raw.dispose()


def test_sqlite_uses_wal(tmp_path: object) -> None:
    db = open_database(f"sqlite:///{tmp_path}/wal.sqlite3")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


def test_reopening_is_a_no_op(empty_database_url: str) -> None:
    first = open_database(empty_database_url)
    first.dispose()
    second = open_database(empty_database_url)
    assert current_revision(second) == head_revision()
    second.dispose()


def test_a_database_behind_says_run_db_upgrade(empty_database_url: str) -> None:
    raw = connect(empty_database_url)
    with pytest.raises(DigestError, match="run `digest db upgrade` first"):
        open_database(empty_database_url, migrate=False)
    raw.dispose()


def test_timestamps_come_back_aware(database: Database) -> None:
    moment = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    with database.session() as session:
        session.add(Subscriber(email="a@example.com", created_at=moment))
    with database.session() as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert subscriber.created_at == moment
        assert subscriber.created_at.tzinfo is not None


def test_unique_email_issue_key_and_delivery(database: Database) -> None:
    with database.session() as session:
        session.add(Subscriber(email="a@example.com"))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Subscriber(email="a@example.com"))
    with database.session() as session:
        session.add(Issue(key="2026-W47", posts=[]))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Issue(key="2026-W47", posts=[]))
    with database.session() as session:
        issue = session.scalars(select(Issue)).one()
        subscriber = session.scalars(select(Subscriber)).one()
        session.add(Delivery(issue_id=issue.id, subscriber_id=subscriber.id))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(Delivery(issue_id=issue.id, subscriber_id=subscriber.id))


def test_json_columns_round_trip_unicode(database: Database) -> None:
    with database.session() as session:
        session.add(Subscriber(email="b@example.com", name="张伟", categories=["机器学习", "Py"]))
    with database.session() as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert subscriber.categories == ["机器学习", "Py"] and subscriber.name == "张伟"


def test_two_processes_migrating_at_once_both_succeed(empty_database_url: str) -> None:
    script = (
        "import sys; from digest.store.database import open_database, current_revision;"
        "db = open_database(sys.argv[1]); print(current_revision(db))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {head_revision()}


def _open_at(url: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        connect(url).engine.connect().close()
        results.put("")
    except Exception as exc:  # the test prints what a process met
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_file_at_once_all_get_it(tmp_path: Path) -> None:
    """Turning a new file to WAL takes a lock SQLite's busy timeout does not wait for: four
    processes opening one fresh file at once got "database is locked" in about 1 of 35 opens
    (200 rounds: 23 failures). Each round here is a new file and a start line for four."""
    context = multiprocessing.get_context("fork")  # quick: the test starts 200 processes
    failures = []
    for round_ in range(50):
        url = f"sqlite:///{tmp_path / f'{round_}.sqlite3'}"
        start, results = context.Barrier(4), context.Queue()
        openers = [context.Process(target=_open_at, args=(url, start, results)) for _ in "abcd"]
        for opener in openers:
            opener.start()
        failures += [error for error in (results.get(timeout=60) for _ in openers) if error]
        for opener in openers:
            opener.join(60)
    assert failures == []


def test_a_taken_over_worker_never_queues_again_what_its_successor_found_in_flight(
    database: Database,
) -> None:
    """A worker stopped (SIGSTOP) with a group in flight is presumed dead: its successor marks
    the group unknown and may finish the issue. Woken, the old worker reports "not begun,
    queue it" for a message it had not started: that must not turn the unknown row back to
    queued (in a finished issue nobody would send it, and the ledger would call it unsent),
    while an outcome it really had ("sent") is truer than unknown and is kept."""
    from digest.store import deliveries
    from digest.store.deliveries import Result
    from tests.web.test_public_web import add_issue, add_person

    issue = add_issue(database, "2026-W47", datetime(2026, 11, 23, tzinfo=UTC))
    people = [add_person(database, f"p{n}@example.com") for n in range(3)]
    with database.session() as session:
        session.add_all(Delivery(issue_id=issue, subscriber_id=p) for p in people)
    old = "host:1"
    with database.engine.begin() as connection:
        group = deliveries.claim(connection, issue, old, 10)
        assert deliveries.start(connection, group, old) == {r.delivery_id for r in group}
    with database.session() as session:
        assert deliveries.recover(session, issue, [old]) == (0, 3)
    not_begun, sent, still = group
    with database.engine.begin() as connection:
        deliveries.record(
            connection,
            issue,
            old,
            [
                Result(not_begun, DeliveryStatus.QUEUED, 0),
                Result(sent, DeliveryStatus.SENT, 1, "<m@x>"),
            ],
        )
        deliveries.release(connection, [still], old)
    with database.session() as session:
        rows = {i: status for i, status in session.execute(select(Delivery.id, Delivery.status))}
    assert rows == {
        not_begun.delivery_id: DeliveryStatus.UNKNOWN,
        sent.delivery_id: DeliveryStatus.SENT,
        still.delivery_id: DeliveryStatus.UNKNOWN,
    }


def test_a_worker_registering_from_its_threads_at_once_is_one_row(database: Database) -> None:
    """A worker's connections claim from threads of their own; after a database restart their
    first claims, waited out together, register the worker at the same moment. However many
    do so at once, the worker is registered once and none of them fails (an "update, else
    insert" made two inserts of one name: a unique violation that stopped the worker)."""
    import threading

    from digest.store import deliveries
    from digest.store.tables import Worker

    threads_per_worker, workers = 6, 30
    failures: list[BaseException] = []
    for n in range(workers):
        barrier = threading.Barrier(threads_per_worker)

        def register(name: str = f"host:{n}", barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait()
                with database.transaction() as connection:
                    deliveries.register(connection, name, datetime.now(UTC))
            except BaseException as exc:  # collected, asserted below
                failures.append(exc)

        threads = [threading.Thread(target=register) for _ in range(threads_per_worker)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    with database.session() as session:
        names = session.scalars(select(Worker.name)).all()
    assert sorted(names) == sorted(f"host:{n}" for n in range(workers))


def test_unreachable_database_is_one_sentence() -> None:
    # waited for up to outage_seconds first (a database restarting as its senders start)
    with pytest.raises(DigestError) as caught:
        open_database("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", outage_seconds=0.3)
    assert "cannot open the database" in str(caught.value)
    assert "did not answer for 0.3 s" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_models_and_migrations_agree(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from digest.store.database import include_object
    from digest.store.tables import Base

    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": False}
        )
        assert compare_metadata(context, Base.metadata) == []
        tables = set(inspect(connection).get_table_names())
    assert "apscheduler_jobs" in tables


def test_copies_of_the_migrated_template_are_current_and_each_its_own(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """What `database_url` hands out (tests/support/databases.py): copies at the current
    schema, each with an identity of its own, as migrating each would have given."""
    from tests.support.databases import copy_sqlite

    template = tmp_path / "template.sqlite3"
    open_database(f"sqlite:///{template}").dispose()
    urls = [postgres.migrated_database(), postgres.migrated_database()]
    for n in range(2):
        copy_sqlite(template, tmp_path / f"copy{n}.sqlite3")
        urls.append(f"sqlite:///{tmp_path / f'copy{n}.sqlite3'}")
    seen = set()
    for url in [f"sqlite:///{template}", *urls]:
        database = open_database(url, migrate=False)
        try:
            assert current_revision(database) == head_revision()
            seen.add(identity(database))
        finally:
            database.dispose()
    assert len(seen) == 5 and "" not in seen
