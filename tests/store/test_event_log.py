"""The event log (issue 23): one table, written with the change it records, read as a feed in
commit order; and migration 0008, which moves the `events` of a database with history into it.

The feed's promise — a reader paging with `after=` sees every committed event exactly once —
is tried where it can break: on PostgreSQL a transaction that took a later id commits first.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from digest.models import Edition, Post
from digest.store import events, ledger
from digest.store import subscribers as people
from digest.store.database import Database, alembic_config, connect, include_object, open_database
from digest.store.tables import Base, Event, IssueStatus, Subscriber, UTCDateTime
from tests.support.postgres import PostgresServer

WHEN = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
POST = Post(
    id="a.md", title="A post", url="https://blog.example.com/posts/a/", date=WHEN, body="Text."
)


# -- migration 0008 ------------------------------------------------------------------------------


def migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Up (or down) to `revision`, with SQLite's foreign keys off as `digest db upgrade` has
    them (revision 0005 rebuilds a table that others reference)."""
    database = connect(url)
    config = alembic_config(url)
    with database.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        if connection.dialect.name == "sqlite" and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
        with connection.begin():
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    database.dispose()


def at_0007(url: str) -> None:
    migrate(url, "0007")


def fill_0007(url: str) -> None:
    """A list with history as revision 0007 kept it: sign-ups, a confirmation mail with its
    IP, an unsubscribe from an issue's link, an import that marked someone bounced (its kind
    written as the status, as 0007's import did), two issues (one finished)."""
    engine = sa.create_engine(url)

    def table(name: str, *columns: str) -> sa.TableClause:
        typed = [
            sa.column(c, UTCDateTime())
            if c.endswith("_at")
            else sa.column(c, sa.JSON())
            if c == "posts"
            else sa.column(c)
            for c in columns
        ]
        return sa.table(name, *typed)

    with engine.begin() as connection:
        connection.execute(
            table(
                "subscribers",
                "email",
                "email_key",
                "name",
                "status",
                "paused",
                "created_at",
                "updated_at",
            ).insert(),
            [
                {
                    "email": f"p{n}@example.com",
                    "email_key": f"p{n}@example.com",
                    "name": "",
                    "status": status,
                    "paused": False,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                }
                for n, status in enumerate(("active", "unsubscribed", "bounced"), start=1)
            ],
        )
        connection.execute(
            table(
                "issues", "key", "frequency", "status", "posts", "created_at", "finished_at"
            ).insert(),
            [
                {
                    "key": "2026-W47",
                    "frequency": "weekly",
                    "status": "finished",
                    "posts": [],
                    "created_at": WHEN.replace(day=16),
                    "finished_at": WHEN.replace(day=16, hour=2),
                },
                {
                    "key": "2026-W48",
                    "frequency": "weekly",
                    "status": "sending",
                    "posts": [],
                    "created_at": WHEN,
                    "finished_at": None,
                },
            ],
        )
        rows = [
            (1, None, "subscribe", "cli", None),
            (2, None, "confirm-mail", "web", "203.0.113.9"),
            (2, None, "confirm", "web", "203.0.113.9"),
            (2, 1, "unsubscribe", "one-click", None),
            (3, None, "subscribe", "import", None),
            (3, None, "bounced", "import", None),
        ]
        connection.execute(
            table(
                "events", "subscriber_id", "issue_id", "kind", "method", "ip", "created_at"
            ).insert(),
            [
                {
                    "subscriber_id": s,
                    "issue_id": i,
                    "kind": k,
                    "method": m,
                    "ip": ip,
                    "created_at": WHEN.replace(hour=n),
                }
                for n, (s, i, k, m, ip) in enumerate(rows)
            ],
        )
    engine.dispose()


def test_migration_0008_moves_the_history_into_the_event_log(empty_database_url: str) -> None:
    at_0007(empty_database_url)
    fill_0007(empty_database_url)
    database = open_database(empty_database_url)  # upgrades to head
    with database.session() as session:
        rows = session.execute(
            select(
                Event.id,
                Event.position,
                Event.subscriber_id,
                Event.issue_id,
                Event.kind,
                Event.method,
                Event.ip,
            ).order_by(Event.id)
        ).all()
        assert rows[:6] == [
            (1, 1, 1, None, "subscribe", "cli", None),
            (2, 2, 2, None, "confirm-mail", "web", "203.0.113.9"),
            (3, 3, 2, None, "confirm", "web", "203.0.113.9"),
            (4, 4, 2, 1, "unsubscribe", "one-click", None),
            (5, 5, 3, None, "subscribe", "import", None),
            (6, 6, 3, None, "bounce", "import", None),  # the kind every path writes now
        ]
        # each issue's creation (and the finished one's end), in the order they happened
        assert [(r.kind, r.issue_id, r.position) for r in rows[6:]] == [
            ("issue-created", 1, None),
            ("issue-finished", 1, None),
            ("issue-created", 2, None),
        ]
        from digest.store.suppressed import reasons

        bounced = session.get_one(Subscriber, 3)
        assert reasons(session, [bounced])[3].method == "import"  # its reason is found now
        # a new event after the copied ones: a new id, and a later position
        people.unsubscribe(session, session.get_one(Subscriber, 1), "cli")
    with database.session() as session:
        fed = events.feed(session, after=0, limit=100)
    assert [e.position for e in fed] == sorted({e.position for e in fed})
    assert [e.kind for e in fed] == [
        "subscribe", "confirm-mail", "confirm", "unsubscribe", "subscribe", "bounce",
        "issue-created", "issue-finished", "issue-created", "unsubscribe",
    ]  # fmt: skip
    assert fed[3].issue == "2026-W47" and fed[-1].position > 6
    with database.engine.connect() as connection:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": False}
        )
        assert compare_metadata(context, Base.metadata) == []
        assert not sa.inspect(connection).has_table("events")
    database.dispose()


def test_migration_0008_goes_back_down(empty_database_url: str) -> None:
    at_0007(empty_database_url)
    fill_0007(empty_database_url)
    open_database(empty_database_url).dispose()
    migrate(empty_database_url, "0007", down=True)
    engine = sa.create_engine(empty_database_url)
    with engine.connect() as connection:
        kinds = connection.exec_driver_sql("SELECT kind FROM events ORDER BY id").scalars()
        assert list(kinds) == [
            "subscribe", "confirm-mail", "confirm", "unsubscribe", "subscribe", "bounce",
        ]  # fmt: skip
    engine.dispose()


# -- written with the change ---------------------------------------------------------------------


def test_an_event_is_written_with_its_change_or_not_at_all(database: Database) -> None:
    with database.session() as session:
        person = people.add(session, "a@example.com")
    with pytest.raises(RuntimeError), database.session() as session:
        people.unsubscribe(session, session.get_one(Subscriber, person.id), "cli")
        session.flush()
        raise RuntimeError("the change fails after the event was written")
    with database.session() as session:
        assert session.get_one(Subscriber, person.id).status == "active"
        assert [e.kind for e in events.feed(session)] == ["subscribe"]


def test_an_issue_is_created_and_finished_once_in_the_log(database: Database) -> None:
    with database.session() as session:
        people.add(session, "a@example.com")
        people.add(session, "b@example.com")
        issue = ledger.create_issue(
            session,
            Edition(key="2026-W48", date=WHEN, posts=(POST,)),
            frequency="weekly",
            default_frequency="weekly",
        )
        issue_id = issue.id
    with database.session() as session:
        ledger.set_status(session, issue_id, IssueStatus.FINISHED, None)
    with database.session() as session:  # finishing again (a resumed run) adds nothing
        ledger.set_status(session, issue_id, IssueStatus.FINISHED, None)
        logged = [(e.kind, e.issue, e.detail) for e in events.feed(session) if e.issue]
    assert logged == [
        ("issue-created", "2026-W48", "2 recipients"),
        ("issue-finished", "2026-W48", "queued 2"),
    ]


# -- commit order on PostgreSQL ------------------------------------------------------------------


def test_a_later_id_committed_first_is_not_passed_over(postgres: PostgresServer) -> None:
    """A takes an id, B takes the next and commits first. A reader paging by id would see B,
    move past A's id and never see A (the contrast below shows it); the feed shows B, then A
    once A commits, each once."""
    database = open_database(postgres.new_database())
    try:
        with database.session() as session:
            person = people.add(session, "a@example.com")
        start = _feed_all(database, 0)[-1].position
        first = database.sessions()
        first.begin()
        a = events.append(first, "preferences", "api", subscriber_id=person.id, detail="A")
        first.flush()
        with database.session() as second:
            b = events.append(second, "preferences", "api", subscriber_id=person.id, detail="B")
            second.flush()
            assert b.id > a.id
        seen = _feed_all(database, start)
        assert [e.detail for e in seen] == ["B"]
        with database.session() as session:  # the contrast: paging by id passes A over
            by_id = select(Event.id).where(Event.id > b.id)
            first.commit()
            assert session.scalars(by_id).all() == []
        first.close()
        later = _feed_all(database, seen[-1].position)
        assert [e.detail for e in later] == ["A"] and later[0].position > seen[-1].position
    finally:
        database.dispose()


def _feed_all(database: Database, after: int, limit: int = 100) -> list[events.LoggedEvent]:
    with database.session() as session:
        return events.feed(session, after=after, limit=limit)


def test_concurrent_writers_and_a_reader_see_every_event_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Six writers commit events in random order (some roll back, some hold their transaction
    open after taking ids) while a reader pages the feed seven at a time: the reader ends with
    every committed event exactly once, in positions that only grow."""
    database = open_database(postgres.new_database())
    with database.session() as session:
        person = people.add(session, "a@example.com")
    committed: list[int] = []
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def writer(seed: int) -> None:
        chance = random.Random(seed)
        for n in range(40):
            session = database.sessions()
            session.begin()
            made = [
                events.append(session, "preferences", "api", subscriber_id=person.id)
                for _ in range(chance.randint(1, 3))
            ]
            session.flush()
            time.sleep(chance.random() * 0.004)  # hold the ids while others commit
            if n % 7 == 3:
                session.rollback()
            else:
                session.commit()
                with lock:
                    committed.extend(e.id for e in made)
            session.close()

    seen: list[tuple[int, int]] = []  # (position, id)
    cursor = 0

    def page() -> int:
        nonlocal cursor
        with database.session() as session:
            fed = events.feed(session, after=cursor, limit=7)
        seen.extend((event.position, event.event_id) for event in fed)
        if fed:
            cursor = fed[-1].position
        return len(fed)

    def reader() -> None:
        while writing.is_set():
            page()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    watcher.join()
    while page():
        pass
    database.dispose()
    positions = [p for p, _ in seen]
    assert positions == sorted(set(positions))  # only growing, never twice
    ids = [i for _, i in seen if i != 1]  # 1: the sign-up before the writers
    assert sorted(ids) == sorted(committed) and len(ids) == len(set(ids))
    assert len(committed) > 100
